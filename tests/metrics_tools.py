"""Scraping the ``/metrics`` and ``/healthz`` endpoints of relay and consumer processes."""

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def get(port, path):
    """``(status, body)`` of ``GET http://127.0.0.1:port/path``; ``(None, reason)`` if nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return None, str(error)


def scrape(port) -> dict:
    """``{(sample name, ((label, value), ...)): value}`` of every sample, parsed by prometheus-client's parser."""
    status, body = get(port, "/metrics")
    assert status == 200, (status, body)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def sample(samples, name, **labels):
    """One sample's value, or None when the process does not expose it (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))))


def healthz(port):
    return get(port, "/healthz")
