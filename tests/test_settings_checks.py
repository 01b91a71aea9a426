"""
Requirement: every setting and option is checked at startup, and every error the package
raises is an ``OutboxError``.

A bad value must fail where an operator sees it (``manage.py check``, the relay's or the
consumer's start), with an error that names the setting and says what it needs, never later
as a ``TypeError`` in the middle of a batch or as a silently wrong behaviour.
"""

import ast
import builtins
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError

import edx_event_bus_outbox
from edx_event_bus_outbox import KafkaEventConsumer, conf, tasks
from edx_event_bus_outbox.exceptions import OutboxConfigurationError, OutboxError
from edx_event_bus_outbox.relay.sink import KafkaSink

PACKAGE_DIR = Path(edx_event_bus_outbox.__file__).parent


def package_modules():
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="edx_event_bus_outbox."):
        yield importlib.import_module(info.name)


# ---------------------------------------------------------------- every error is an OutboxError


def test_every_exception_class_of_the_package_derives_from_outbox_error():
    defined = {
        cls
        for module in package_modules()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__.startswith("edx_event_bus_outbox")
    }
    assert len(defined) > 10, "the scan found the package's exception classes"
    assert sorted(c.__qualname__ for c in defined if not issubclass(c, OutboxError)) == []


# Raised on purpose, and rightly not an OutboxError: the protocol the caller speaks requires them.
FOREIGN_RAISES_ALLOWED = {
    "CommandError": "management commands report errors to Django's command runner this way",
    "AttributeError": "a module's __getattr__ must raise it for a missing name",
}


def test_every_raise_statement_raises_an_outbox_error():
    """``raise ValueError(...)`` somewhere would escape every ``except OutboxError`` an operator wrote."""
    found = []
    for path in PACKAGE_DIR.rglob("*.py"):
        module_name = ".".join(("edx_event_bus_outbox", *path.relative_to(PACKAGE_DIR).with_suffix("").parts))
        module = importlib.import_module(module_name.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = target.id if isinstance(target, ast.Name) else None
            cls = getattr(module, name, getattr(builtins, name, None)) if name else None
            if isinstance(cls, type) and cls.__name__ not in FOREIGN_RAISES_ALLOWED:
                found.append((f"{module_name}:{node.lineno}", cls))
    assert len(found) > 20, "the scan found the package's raise statements"
    assert [(where, cls.__name__) for where, cls in found if not issubclass(cls, OutboxError)] == []


# ---------------------------------------------------------------- every setting

ANNOTATED = re.findall(r"# \.\. setting_name: (\S+)", (PACKAGE_DIR / "conf.py").read_text())


def test_the_test_settings_are_valid():
    assert len(ANNOTATED) > 30
    assert conf.configuration_errors() == []


@pytest.mark.parametrize("name", ANNOTATED)
def test_every_setting_refuses_a_value_of_the_wrong_type(settings, name):
    """No setting takes just anything: an ``object()`` is wrong for each, and the error names it."""
    setattr(settings, name, object())
    errors = [str(error) for error in conf.configuration_errors()]
    assert [error for error in errors if error.startswith(name)], errors
    with pytest.raises(OutboxConfigurationError, match=re.escape(name)):
        conf.check_settings()


INVALID = [
    # setting, value, what the error must say
    ("EVENT_BUS_OUTBOX_RELAY_LANES", "user-login", "a non-empty list of topic or lane names"),
    ("EVENT_BUS_OUTBOX_RELAY_LANES", [], "a non-empty list of topic or lane names"),
    ("EVENT_BUS_OUTBOX_RELAY_LANES", ["user-login,user-logout"], "lane names such as 'my-topic#0/4'"),
    ("EVENT_BUS_OUTBOX_RELAY_LANES", ["user-login#4/4"], "lane names such as 'my-topic#0/4'"),
    ("EVENT_BUS_OUTBOX_RELAY_LANES", ["user-login#0/1"], "lane names such as 'my-topic#0/4'"),
    ("EVENT_BUS_OUTBOX_TOPIC_LANES", {"user-login": 0}, "an integer above 0"),
    ("EVENT_BUS_OUTBOX_TOPIC_LANES", {"user-login": 257}, "at most 256"),
    ("EVENT_BUS_OUTBOX_TOPIC_LANES", {"user login": 2}, "a Kafka topic name"),
    ("EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE", 0, "an integer above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE", -5, "an integer above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE", 2.5, "an integer above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE", "500", "an integer above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE", True, "an integer above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL", 0, "a number above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL", float("nan"), "a number above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL", 31, "must not be longer than EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS"),
    ("EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS", -1, "a number above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS", 2, "at least 3 seconds"),
    ("EVENT_BUS_OUTBOX_RELAY_MAX_ATTEMPTS", 0, "an integer above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_BACKOFF_SECONDS", (5, 1), "first <= cap"),
    ("EVENT_BUS_OUTBOX_RELAY_BACKOFF_SECONDS", (0, 1), "a number above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_BACKOFF_SECONDS", 5, "a pair (first, cap)"),
    ("EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE", "/no/such/directory/alive", "an existing directory"),
    ("EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED", "false", "True or False"),
    ("EVENT_BUS_OUTBOX_DELETE_ON_ACK", 1, "True or False"),
    ("EVENT_BUS_OUTBOX_DATABASE", "replica", "an alias in DATABASES ('default', 'other')"),
    ("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", "localhost:8081", "an http:// or https:// URL"),
    ("EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_TIMEOUT_SECONDS", 0, "a number above 0"),
    ("EVENT_BUS_TOPIC_PREFIX", "stage prod", "a Kafka topic name"),
    ("EVENT_BUS_PRODUCER_MODE", "fire-and-forget", "one of 'outbox', 'on-commit'"),
    ("EVENT_BUS_PRODUCER_CONFIG", {"org.openedx.x.v1": {"a topic": {}}}, "a Kafka topic name"),
    ("EVENT_BUS_PRODUCER_CONFIG", {"org.openedx.x.v1": {"t": {"enabled": "no"}}}, "True or False"),
    ("EVENT_BUS_PRODUCER_CONFIG", {"org.openedx.x.v1": ["t"]}, "a dict of topic -> options"),
    ("EVENT_BUS_PRODUCER_CONFIG", {"org.openedx.x.v1": {"t": {"mode": "later"}}}, "one of 'outbox', 'on-commit'"),
    ("EVENT_BUS_OUTBOX_TOPIC_MODES", ["user-login"], "a dict of topic -> mode"),
    ("EVENT_BUS_OUTBOX_TOPIC_MODES", {"user login": "outbox"}, "each key must be a Kafka topic name"),
    ("EVENT_BUS_OUTBOX_TOPIC_MODES", {"user-login": "later"}, "['user-login'] must be one of 'outbox', 'on-commit'"),
    ("EVENT_BUS_OUTBOX_TOPIC_MODES", {"user-login": None}, "one of 'outbox', 'on-commit'"),
    ("EVENT_BUS_OUTBOX_STATUS_MAX_DEAD", -1, "an integer of 0 or more"),
    ("EVENT_BUS_OUTBOX_RETENTION_DAYS", -1, "a number of 0 or more"),
    ("EVENT_BUS_OUTBOX_PURGE_BATCH_SIZE", 0, "an integer above 0"),
    ("EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT", 0, "a number above 0"),
    ("EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP", 0, "a number above 0"),
    ("EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT", -1, "an integer of 0 or more"),
    ("EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES", -1, "an integer of 0 or more"),
    ("EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS", -0.5, "a number of 0 or more"),
    ("EVENT_BUS_OUTBOX_CONSUMER_COMMIT_INTERVAL_SECONDS", -1, "a number of 0 or more"),
    ("EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG", [("auto.offset.reset", "earliest")], "a dict of librdkafka"),
    ("EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC", "dead letters", "a Kafka topic name"),
    ("EVENT_BUS_OUTBOX_SINK", "redis-streams", "one of 'kafka', 'redis'"),
    ("EVENT_BUS_OUTBOX_TOPIC_SINKS", {"user-login": "Redis"}, "one of 'kafka', 'redis'"),
    ("EVENT_BUS_OUTBOX_TOPIC_SINKS", {"user login": "redis"}, "a Kafka topic name"),
    ("EVENT_BUS_OUTBOX_TOPIC_SINKS", ["user-login"], 'a dict of topic -> "kafka" or "redis"'),
    ("EVENT_BUS_REDIS_CONNECTION_URL", "localhost:6379", "a redis://, rediss:// or unix:// URL"),
    ("EVENT_BUS_REDIS_STREAM_MAX_LEN", "10000", "an integer above 0"),
    ("EVENT_BUS_REDIS_STREAM_MAX_LEN", 0, "an integer above 0"),
    ("EVENT_BUS_OUTBOX_RELAY_METRICS_PORT", 0, "a TCP port number from 1 to 65535"),
    ("EVENT_BUS_OUTBOX_RELAY_METRICS_PORT", "9100", "a TCP port number from 1 to 65535"),
    ("EVENT_BUS_OUTBOX_CONSUMER_METRICS_PORT", 65536, "a TCP port number from 1 to 65535"),
    ("EVENT_BUS_OUTBOX_METRICS_ADDRESS", None, "a string"),
]


@pytest.mark.parametrize("name, value, needs", INVALID, ids=[f"{n}={v!r}" for n, v, _ in INVALID])
def test_an_invalid_setting_is_refused_by_name_with_what_it_needs(settings, name, value, needs):
    setattr(settings, name, value)
    with pytest.raises(OutboxConfigurationError) as raised:
        conf.check_settings()
    assert name in str(raised.value) and needs in str(raised.value)


def test_valid_edge_values_are_accepted(settings, tmp_path):
    settings.EVENT_BUS_OUTBOX_RELAY_LANES = ("user-login", "course.v1_x")
    settings.EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS = 3
    settings.EVENT_BUS_OUTBOX_RELAY_POLL_INTERVAL = 3
    settings.EVENT_BUS_OUTBOX_RELAY_HEARTBEAT_FILE = tmp_path / "alive"
    settings.EVENT_BUS_OUTBOX_RETENTION_DAYS = 0
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = 0
    settings.EVENT_BUS_KAFKA_CONSUMER_CONSECUTIVE_ERRORS_LIMIT = 0
    settings.EVENT_BUS_TOPIC_PREFIX = ""
    assert conf.configuration_errors() == []
    assert conf.relay_lanes() == ["user-login", "course.v1_x"]
    assert conf.consumer_consecutive_errors_limit() is None  # 0 is "no limit", as in edx-event-bus-kafka


def test_all_invalid_settings_are_reported_at_once(settings):
    settings.EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE = 0
    settings.EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES = -1
    with pytest.raises(OutboxConfigurationError, match="2 settings are invalid") as raised:
        conf.check_settings()
    assert "EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE" in str(raised.value)
    assert "EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES" in str(raised.value)


def test_credentials_are_checked_without_being_echoed(settings):
    settings.EVENT_BUS_KAFKA_API_KEY = "key"
    settings.EVENT_BUS_KAFKA_API_SECRET = 98765
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_KAFKA_API_SECRET must be a string") as raised:
        conf.check_settings()
    assert "98765" not in str(raised.value)
    settings.EVENT_BUS_KAFKA_API_SECRET = None
    with pytest.raises(OutboxConfigurationError, match="must be set together"):
        conf.check_settings()


def test_a_redis_sink_needs_the_redis_url_which_errors_never_echo(settings):
    settings.EVENT_BUS_OUTBOX_TOPIC_SINKS = {"user-login": "redis"}
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_REDIS_CONNECTION_URL must be set"):
        conf.check_settings()
    settings.EVENT_BUS_REDIS_CONNECTION_URL = "redis-host:6379 password=hunter2"
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_REDIS_CONNECTION_URL must be") as raised:
        conf.check_settings()
    assert "hunter2" not in str(raised.value)
    settings.EVENT_BUS_REDIS_CONNECTION_URL = "redis://:hunter2@redis-host:6379/0"
    assert conf.configuration_errors() == []
    assert (conf.sink_for("user-login"), conf.sink_for("other")) == ("redis", "kafka")


def test_the_on_commit_mode_is_refused_for_a_topic_sent_to_redis(settings):
    settings.EVENT_BUS_REDIS_CONNECTION_URL = "redis://redis:6379/0"
    settings.EVENT_BUS_OUTBOX_SINK = "redis"
    settings.EVENT_BUS_PRODUCER_CONFIG = {"org.openedx.x.v1": {"user-login": {"mode": "on-commit"}}}
    with pytest.raises(OutboxConfigurationError, match="publishes to Kafka only"):
        conf.check_settings()
    settings.EVENT_BUS_OUTBOX_TOPIC_SINKS = {"user-login": "kafka"}
    assert conf.configuration_errors() == []


# The accessors send() reads once per process (conf._read_once), with a value to change each to.
READ_ONCE = {
    "producer_config": ("EVENT_BUS_PRODUCER_CONFIG", {"org.openedx.test.v1": {"t": {"event_key_field": "a"}}}),
    "default_mode": ("EVENT_BUS_PRODUCER_MODE", conf.MODE_ON_COMMIT),
    "topic_modes": ("EVENT_BUS_OUTBOX_TOPIC_MODES", {"t": conf.MODE_ON_COMMIT}),
    "topic_lanes": ("EVENT_BUS_OUTBOX_TOPIC_LANES", {"t": 4}),
    "database_alias": ("EVENT_BUS_OUTBOX_DATABASE", "other"),
    "max_event_bytes": ("EVENT_BUS_OUTBOX_MAX_EVENT_BYTES", 12345),
}


@pytest.mark.parametrize("accessor", READ_ONCE)
def test_a_setting_read_once_is_read_again_after_it_changes(settings, accessor):
    name, value = READ_ONCE[accessor]
    read = getattr(conf, accessor)
    before = read()
    assert read() is before  # read once
    setattr(settings, name, value)  # sends setting_changed, as override_settings does
    assert read() == value != before
    setattr(settings, name, before)
    assert read() == before


def test_the_minimum_lease_leaves_the_relays_delivery_timeout_a_third_of_it():
    """``RELAY_MIN_LEASE_SECONDS`` restates relay/sink.py's rule; the real sink must agree with it."""
    for lease in (conf.RELAY_MIN_LEASE_SECONDS, 4.0, 30.0, 120.0):
        sink = KafkaSink(lease)
        assert sink.delivery_timeout <= lease / 3 and sink.delivery_timeout < lease
        sink.producer.flush(0)
    assert KafkaSink(conf.RELAY_MIN_LEASE_SECONDS - 0.5).delivery_timeout > (conf.RELAY_MIN_LEASE_SECONDS - 0.5) / 3


# ---------------------------------------------------------------- where they are checked


def test_manage_py_check_reports_each_invalid_setting(settings):
    settings.EVENT_BUS_OUTBOX_RELAY_LANES = "user-login"
    settings.EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT = "1"
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    report = str(raised.value)
    assert "edx_event_bus_outbox.E001" in report
    assert "EVENT_BUS_OUTBOX_RELAY_LANES must be a non-empty list of topic or lane names" in report
    assert "EVENT_BUS_KAFKA_CONSUMER_POLL_TIMEOUT must be a number above 0, not '1'" in report


def test_the_app_refuses_to_start_with_an_invalid_write_path_setting(settings):
    settings.EVENT_BUS_OUTBOX_DATABASE = "replica"
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_OUTBOX_DATABASE must be an alias in DATABASES"):
        apps.get_app_config("edx_event_bus_outbox").ready()


def test_the_app_refuses_to_start_with_an_unknown_topic_mode(settings):
    settings.EVENT_BUS_OUTBOX_TOPIC_MODES = {"user-login": "fire-and-forget"}
    with pytest.raises(OutboxConfigurationError, match=r"EVENT_BUS_OUTBOX_TOPIC_MODES\['user-login'\] must be one of"):
        apps.get_app_config("edx_event_bus_outbox").ready()


RELAY_OPTIONS = [
    (["--batch-size", "0"], "--batch-size must be an integer above 0, not 0"),
    (["--lane", "user-login,user-logout"], "--lane must be a list of topic names, or lane names"),
    (["--lane", "ok", "--lane", ""], "--lane must be a list of topic names, or lane names"),
    (["--poll-interval", "-1"], "--poll-interval must be a number above 0"),
    (["--lease-seconds", "2"], "--lease-seconds must be at least 3 seconds"),
    (["--poll-interval", "45"], "--poll-interval (45.0) must not be longer than EVENT_BUS_OUTBOX_RELAY_LEASE_SECONDS"),
    (["--lease-seconds", "5", "--poll-interval", "6"], "--poll-interval (6.0) must not be longer than --lease-seconds"),
    (["--heartbeat-file", "/no/such/directory/alive"], "--heartbeat-file must be a file path in an existing"),
    (["--metrics-port", "0"], "--metrics-port must be a TCP port number from 1 to 65535"),
]


@pytest.mark.parametrize("args, message", RELAY_OPTIONS, ids=[" ".join(a) for a, _ in RELAY_OPTIONS])
def test_run_outbox_relay_refuses_invalid_options_before_starting(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("run_outbox_relay", *args)


def test_run_outbox_relay_refuses_invalid_settings_before_starting(settings):
    settings.EVENT_BUS_OUTBOX_RELAY_LANES = "user-login"
    with pytest.raises(CommandError, match="EVENT_BUS_OUTBOX_RELAY_LANES must be a non-empty list"):
        call_command("run_outbox_relay", "--until-empty")


def test_an_operator_running_the_relay_with_a_bad_option_sees_why_and_exit_1():
    result = subprocess.run(
        [sys.executable, "manage.py", "run_outbox_relay", "--batch-size", "-3"],
        cwd=PACKAGE_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        check=False,
    )
    assert result.returncode == 1
    assert "CommandError: --batch-size must be an integer above 0, not -3. The relay did not start." in result.stderr


@pytest.mark.parametrize(
    "options, message",
    [
        ({"offset_tme": "2026-01-01T00:00:00Z"}, "Unknown consumer option(s) ['offset_tme']"),
        ({"offset_time": 1767225600}, "offset_time 1767225600 is not an ISO-8601 timestamp"),
        ({"offset_time": "yesterday"}, "offset_time 'yesterday' is not an ISO-8601 timestamp"),
        ({"topic": "user login"}, "the topic (consume_events -t) must be a Kafka topic name"),
        ({"group_id": None}, "the consumer group (consume_events -g) must be a string"),
    ],
)
def test_the_consumer_refuses_invalid_extra_options(options, message):
    """What ``consume_events --extra '{...}'`` passes to the constructor (with -t and -g)."""
    with pytest.raises(OutboxConfigurationError, match=re.escape(message)):
        KafkaEventConsumer(**{"topic": "t", "group_id": "g", **options})


def test_the_consumer_refuses_invalid_settings_when_constructed(settings):
    settings.EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP = 0
    with pytest.raises(OutboxConfigurationError, match="EVENT_BUS_KAFKA_CONSUMER_POLL_FAILURE_SLEEP"):
        KafkaEventConsumer(topic="t", group_id="g")


def test_an_operator_running_consume_events_with_a_bad_extra_sees_why():
    """openedx-events swallows the constructor's error into a warning; the warning must say what to fix."""
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "consume_events",
            "-t",
            "t",
            "-g",
            "g",
            "--extra",
            '{"offset_tme": "2026-01-01T00:00:00Z"}',
        ],
        cwd=PACKAGE_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        check=False,
    )
    assert "ConsumerConfigurationError(\"Unknown consumer option(s) ['offset_tme'] in --extra" in result.stderr
    assert "Cannot consume events; no consumer configured." in result.stderr


@pytest.mark.parametrize(
    "task, arguments, message",
    [
        (tasks.relay_outbox_batch, {"lanes": "user-login"}, "relay_outbox_batch(lanes=...) must be a non-empty list"),
        (tasks.relay_outbox_batch, {"batch_size": 0}, "relay_outbox_batch(batch_size=...) must be an integer above 0"),
        (tasks.purge_outbox, {"days": -1}, "purge_outbox(days=...) must be a number of 0 or more"),
        (tasks.purge_outbox, {"batch_size": "10"}, "purge_outbox(batch_size=...) must be an integer above 0"),
    ],
)
def test_the_celery_tasks_refuse_invalid_arguments(task, arguments, message):
    """The tasks' arguments are options like the relay's: a string of lanes would be read letter by letter."""
    with pytest.raises(OutboxConfigurationError, match=re.escape(message)):
        task(**arguments)
