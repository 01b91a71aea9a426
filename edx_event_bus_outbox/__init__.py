"""
A transactional outbox for the Open edX event bus on Kafka.

Public API:

* ``create_producer`` -- the value for ``EVENT_BUS_PRODUCER``.
* ``OutboxEventProducer`` -- the producer it returns.
* ``KafkaEventConsumer`` -- the value for ``EVENT_BUS_CONSUMER``.

Names are imported lazily so that importing the package does not need Django configured.
"""

__version__ = "0.1.0"

_LAZY = {
    "create_producer": "edx_event_bus_outbox.outbox.producer",
    "OutboxEventProducer": "edx_event_bus_outbox.outbox.producer",
    "KafkaEventConsumer": "edx_event_bus_outbox.consumer.consumer",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
