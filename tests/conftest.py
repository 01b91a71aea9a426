"""
Shared fixtures.

Tests marked ``kafka`` use the real broker and schema registry started by ``make stack-up``;
tests marked ``redis`` use its Redis (a Celery worker). When they are not reachable, the tests
skip with a loud reason -- except under ``CI=true``, where a missing service is a failure,
never a skip.

A test that uses ``kafka_stack`` or ``redis_stack`` (directly or through another fixture, such
as ``topic``) is given its marker at collection, so it cannot go unmarked. ``make test-unit``
(``OUTBOX_TEST_UNIT=1``) leaves every such test out, and a stack fixture that is still asked
for there fails the test instead of skipping it.
"""

import os
import socket
import uuid
from typing import NamedTuple
from urllib.parse import urlparse

import pytest
from django.conf import settings
from openedx_events.apps import general_signal_handler
from openedx_events.tooling import OpenEdxPublicSignal

from tests import kafka_tools

# Seconds a test that stops or restarts a stack service may take (setup.cfg bounds the others):
# a broker restart alone can take a minute on a loaded CI machine.
STACK_RESTART_TIMEOUT = 600


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def _missing_services():
    missing = []
    servers = settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS
    if not servers or not _reachable(servers.split(",")[0]):
        missing.append(f"Kafka broker ({servers or 'EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS unset'})")
    registry = settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL
    if not registry or not _reachable(urlparse(registry).netloc):
        missing.append(f"schema registry ({registry or 'EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL unset'})")
    return missing


# The fixtures that stand for the stack, and the marker each gives the tests that use them.
STACK_FIXTURES = {"kafka_stack": "kafka", "redis_stack": "redis"}


def refuse_in_unit_run(fixture):
    """Called by each stack fixture: under ``make test-unit`` no test may reach the stack."""
    if settings.UNIT:
        pytest.fail(
            f"{fixture} was requested under OUTBOX_TEST_UNIT=1 (make test-unit), which must not "
            f"use the stack; mark the test {STACK_FIXTURES[fixture]!r}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def kafka_stack():
    """The real broker and registry, or a skip (outside CI) / failure (in CI) naming what is missing."""
    refuse_in_unit_run("kafka_stack")
    missing = _missing_services()
    if missing:
        message = f"{' and '.join(missing)} not reachable; run `make stack-up`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(f"!!! SKIPPED, NOT TESTED: {message}")
    return kafka_tools.StackClients(
        settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS, settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL
    )


@pytest.fixture(scope="session")
def redis_stack():
    """The stack's Redis URL (Celery's broker, the Redis Streams sink), or a skip / failure like ``kafka_stack``."""
    refuse_in_unit_run("redis_stack")
    url = os.environ.get("OUTBOX_TEST_REDIS_URL")
    parsed = urlparse(url or "")
    if not url or not _reachable(f"{parsed.hostname}:{parsed.port or 6379}"):
        message = f"Redis ({url or 'OUTBOX_TEST_REDIS_URL unset'}) not reachable; run `make stack-up`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(f"!!! SKIPPED, NOT TESTED: {message}")
    return url


# What `make stack-up` writes to .stack/env about Kafka's SASL_SSL listener and the registry's HTTPS port.
SECURED_VARIABLES = (
    "OUTBOX_TEST_KAFKA_SASL_BOOTSTRAP_SERVERS",
    "OUTBOX_TEST_KAFKA_SASL_USERNAME",
    "OUTBOX_TEST_KAFKA_SASL_PASSWORD",
    "OUTBOX_TEST_KAFKA_CA_LOCATION",
    "OUTBOX_TEST_REGISTRY_TLS_URL",
)


class SecuredStack(NamedTuple):
    """
    Kafka's second listener (SASL_SSL, SCRAM-SHA-512) and the registry's HTTPS port, both with a
    certificate from the stack's own CA.
    """

    bootstrap_servers: str
    username: str
    password: str
    ca_location: str
    registry_url: str

    def kafka_config(self, password=None) -> dict:
        """What an operator puts in EVENT_BUS_OUTBOX_KAFKA_CONFIG for this listener."""
        return {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": self.username,
            "sasl.password": self.password if password is None else password,
            "ssl.ca.location": self.ca_location,
        }

    def use(self, settings, password=None):
        """Point every client the package builds at the secured listener and port (and only at them)."""
        settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS = self.bootstrap_servers
        settings.EVENT_BUS_OUTBOX_KAFKA_CONFIG = self.kafka_config(password)
        settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = self.registry_url
        settings.EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG = {"ssl.ca.location": self.ca_location}


@pytest.fixture(scope="session")
def secured_stack(kafka_stack):
    """
    The SASL_SSL listener and the registry's HTTPS port. A stack whose .stack/env does not describe
    them predates them: that is a failure, never a skip, or the secured-cluster tests would
    silently stop testing anything.
    """
    values = {name: os.environ.get(name) for name in SECURED_VARIABLES}
    missing = [name for name, value in values.items() if not value]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing from .stack/env: this stack has no SASL_SSL listener or HTTPS "
            "registry port; run `make stack-up` (stack/stack.sh up) again to open them",
            pytrace=False,
        )
    return SecuredStack(*values.values())


@pytest.fixture(autouse=True)
def _edx_event_bus_kafka_registry_client_times_out(monkeypatch):
    """Compatibility tests run edx-event-bus-kafka; its registry client must time out too."""
    kafka_tools.give_edx_event_bus_kafka_our_registry_client(monkeypatch.setattr)


@pytest.fixture
def topic(kafka_stack, settings, monkeypatch):
    """
    A fresh three-partition topic, so that per-key partition placement is really exercised; and a
    transactions topic of the test's own (ADR 20), in this process and in the relays it starts
    (tests/settings.py). A takeover reads the lane's last marker with ``read_committed``, which
    waits for every transaction open on that topic: one that an earlier test's SIGKILLed relay
    left open would hold this test's relays up until the broker aborts it, a lease later.
    """
    name = f"test-{uuid.uuid4().hex[:12]}"
    kafka_stack.create_topic(name, partitions=3)
    settings.EVENT_BUS_OUTBOX_RELAY_TRANSACTIONS_TOPIC = f"{name}-transactions"
    monkeypatch.setenv("OUTBOX_TEST_TRANSACTIONS_TOPIC", f"{name}-transactions")
    return name


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects, so that it sees the markers added here
def pytest_collection_modifyitems(config, items):
    """
    Mark every test that uses the stack and require the stack for ``kafka`` tests; leave out
    tests that do not apply to this database, and, under ``make test-unit``, every stack test.
    """
    kind = settings.DATABASE_KIND
    not_applicable = {
        "server_database": kind == "sqlite",
        "postgres_only": kind != "postgres",
        "sqlite_only": kind != "sqlite",
        "kafka": settings.UNIT,
        "redis": settings.UNIT,
        "stack_restart": settings.UNIT,
        "packaging": settings.UNIT,  # builds and installs from PyPI: not a fast check
    }
    kept, dropped = [], []
    for item in items:
        for fixture, marker in STACK_FIXTURES.items():
            if fixture in item.fixturenames and not item.get_closest_marker(marker):
                item.add_marker(marker)
        if item.get_closest_marker("kafka") and "kafka_stack" not in item.fixturenames:
            item.fixturenames.append("kafka_stack")
        # Markers, not ``item.keywords``: keywords hold the names of the test's directories too, and a
        # checkout in a directory named "redis" or "kafka" would leave out every test.
        if any(flag and item.get_closest_marker(marker) for marker, flag in not_applicable.items()):
            dropped.append(item)
            continue
        if item.get_closest_marker("stack_restart") and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(STACK_RESTART_TIMEOUT))
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def bus(settings):
    """
    ``bus(event_type, topics)`` routes a signal to the event bus, as openedx-events' ready()
    would for ``EVENT_BUS_PRODUCER_CONFIG``.
    """
    connected = []

    def configure(event_type, topics):
        config = dict(settings.EVENT_BUS_PRODUCER_CONFIG)
        config[event_type] = topics
        settings.EVENT_BUS_PRODUCER_CONFIG = config
        signal = OpenEdxPublicSignal.get_signal_by_type(event_type)
        signal.connect(general_signal_handler)
        connected.append(signal)

    yield configure
    for signal in connected:
        signal.disconnect(general_signal_handler)
