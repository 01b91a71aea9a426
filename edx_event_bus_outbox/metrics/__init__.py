"""
Prometheus metrics and a health endpoint for the long-running processes (the relay, the consumer).

Each process that is given a port serves ``/metrics`` (the Prometheus text format) and
``/healthz`` (200 or 503, with a one-line reason) from a thread of its own. The metrics live
in a registry of the process's own, never in prometheus-client's global one (see
docs/decisions/0015-metrics-and-health-endpoints.rst). This package knows nothing of the
database or of Kafka: ``relay/`` and ``consumer/`` call it with what they observed.
"""
