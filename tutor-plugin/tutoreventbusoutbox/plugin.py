"""
Tutor plugin ``event-bus-outbox``: the Open edX event bus through edx-event-bus-outbox.

It installs the package into the Open edX image, points the LMS and CMS producer at the
outbox, and adds the processes the outbox needs: one relay per service (LMS, CMS), one
consumer per configured (topic, group), and a daily purge. Kafka is the default sink;
``OUTBOX_SINK: redis`` relays to Tutor's own Redis instead, for sites without Kafka.
"""

from __future__ import annotations

import json
import re
import shlex
from importlib import resources

import click
import jinja2
from tutor import hooks
from tutor.exceptions import TutorError

from .__about__ import __version__

SINKS = ("kafka", "redis")
SERVICES = ("lms", "cms")
# Kubernetes object names are DNS labels: at most 63 lowercase letters, digits and dashes.
NAME_MAX = 63
CONSUMER_PREFIX = "outbox-consumer-"

DEFAULTS = {
    "VERSION": __version__,
    # What `pip install` gets in the image: a version on PyPI, a wheel URL or a git URL.
    "PIP_REQUIREMENT": "edx-event-bus-outbox==0.1.0",
    # "kafka", or "redis" for Tutor's own Redis and no Kafka at all.
    "SINK": "kafka",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
    "SCHEMA_REGISTRY_URL": "http://schema-registry:8081",
    "KAFKA_API_KEY": "",
    "KAFKA_API_SECRET": "",
    "SCHEMA_REGISTRY_API_KEY": "",
    "SCHEMA_REGISTRY_API_SECRET": "",
    # librdkafka properties for every client (EVENT_BUS_OUTBOX_KAFKA_CONFIG), e.g. SASL/SCRAM.
    "KAFKA_CONFIG": {},
    # SchemaRegistryClient settings (EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG), e.g. a TLS CA.
    "SCHEMA_REGISTRY_CONFIG": {},
    # Tutor's own prefix for its Redis event bus: its streams keep their names.
    "TOPIC_PREFIX": "dev",
    # The Redis that Tutor runs, as Tutor's settings reach it; used in Redis mode.
    "REDIS_URL": (
        "redis://{% if REDIS_USERNAME and REDIS_PASSWORD %}{{ REDIS_USERNAME }}:{{ REDIS_PASSWORD }}{% endif %}"
        "@{{ REDIS_HOST }}:{{ REDIS_PORT }}/"
    ),
    "REDIS_STREAM_MAX_LEN": 10000,
    # Merged into EVENT_BUS_PRODUCER_CONFIG with openedx-events' merge_producer_configs:
    # {event_type: {topic: {"event_key_field": ..., "enabled": true}}}.
    "PRODUCER_CONFIG": {},
    # {topic: "outbox" | "on-commit"} (EVENT_BUS_OUTBOX_TOPIC_MODES); a "mode" inside
    # PRODUCER_CONFIG would be dropped by merge_producer_configs.
    "TOPIC_MODES": {},
    # Any other Django setting, e.g. {"EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE": 1000}.
    "SETTINGS": {},
    # Name of a Kubernetes Secret whose keys are credential setting names; see the README.
    "K8S_SECRET": "",
    "RELAY_SERVICES": list(SERVICES),
    "RELAY_REPLICAS": 1,
    "RELAY_METRICS_PORT": 9100,
    "CONSUMER_METRICS_PORT": 9101,
    # [{"topic": ..., "group": ..., "service": "lms", "extra": {...}, "replicas": 1, "name": ...}]
    "CONSUMERS": [],
    "PURGE_SERVICE": "lms",
    "PURGE_SCHEDULE": "17 3 * * *",
    "PURGE_INTERVAL_SECONDS": 86400,
}

hooks.Filters.CONFIG_DEFAULTS.add_items([(f"OUTBOX_{key}", value) for key, value in DEFAULTS.items()])


def python_literal(value):
    """``value`` as Python source for the rendered settings (strings quoted and escaped)."""
    return repr(value)


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def _service(value, what):
    if value not in SERVICES:
        raise TutorError(f"{what} must be one of {', '.join(SERVICES)}, not {value!r}.")
    return value


def _consumer(entry, consumer_port):
    """One OUTBOX_CONSUMERS entry as a process; refuses an entry it cannot run."""
    if not isinstance(entry, dict) or not entry.get("topic") or not entry.get("group"):
        raise TutorError(f"Each OUTBOX_CONSUMERS entry needs a 'topic' and a 'group', not {entry!r}.")
    service = _service(entry.get("service", "lms"), "The 'service' of an OUTBOX_CONSUMERS entry")
    name = CONSUMER_PREFIX + _slug(entry.get("name") or f"{service}-{entry['topic']}-{entry['group']}")
    if len(name) > NAME_MAX:
        raise TutorError(f"Consumer name {name!r} is longer than {NAME_MAX} characters; give the entry a short 'name'.")
    command = ["./manage.py", service, "consume_events", "-t", entry["topic"], "-g", entry["group"]]
    if entry.get("extra"):
        command += ["--extra", json.dumps(entry["extra"], sort_keys=True)]
    return {
        "name": name,
        "kind": "consumer",
        "service": service,
        "command": command,
        "replicas": int(entry.get("replicas", 1)),
        "metrics_port": consumer_port,
    }


@jinja2.pass_context
def outbox_processes(context):
    """
    Every long-running process of the plugin, from the config: the relays, then the consumers.

    docker-compose services and Kubernetes Deployments are both rendered from this one list.
    """
    sink = context["OUTBOX_SINK"]
    if sink not in SINKS:
        raise TutorError(f"OUTBOX_SINK must be one of {', '.join(SINKS)}, not {sink!r}.")
    relay_port = int(context["OUTBOX_RELAY_METRICS_PORT"])
    processes = [
        {
            "name": f"outbox-relay-{service}",
            "kind": "relay",
            "service": _service(service, "Each OUTBOX_RELAY_SERVICES entry"),
            "command": ["./manage.py", service, "run_outbox_relay", "--metrics-port", str(relay_port)],
            "replicas": int(context["OUTBOX_RELAY_REPLICAS"]),
            "metrics_port": relay_port,
        }
        for service in context["OUTBOX_RELAY_SERVICES"]
    ]
    # In Redis mode the consumers are edx-event-bus-redis's, which serve no health endpoint.
    consumer_port = int(context["OUTBOX_CONSUMER_METRICS_PORT"]) if sink == "kafka" else None
    processes += [_consumer(entry, consumer_port) for entry in context["OUTBOX_CONSUMERS"]]
    names = [process["name"] for process in processes]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TutorError(f"Two outbox processes would be named {duplicates}; give OUTBOX_CONSUMERS entries a 'name'.")
    return processes


@jinja2.pass_context
def outbox_purge_script(context):
    """
    The purge, as a shell line, in the service whose database holds the outbox (on Tutor the LMS
    and the CMS share one). The Kafka consumers' deduplication inbox is purged with it.
    """
    service = _service(context["OUTBOX_PURGE_SERVICE"], "OUTBOX_PURGE_SERVICE")
    commands = [f"./manage.py {service} purge_outbox"]
    if context["OUTBOX_SINK"] == "kafka":
        commands.append(f"./manage.py {service} purge_consumer_inbox")
    return " && ".join(commands)


hooks.Filters.ENV_TEMPLATE_FILTERS.add_items([("outbox_python", python_literal), ("outbox_shell", shlex.quote)])
hooks.Filters.ENV_TEMPLATE_VARIABLES.add_items(
    [("outbox_processes", outbox_processes), ("outbox_purge_script", outbox_purge_script)]
)

# Tutor's own init already runs every migration; naming the outbox's app shows its migrations in
# the init output, and outbox_status then proves the tables and settings work before relays start.
for _service_name in SERVICES:
    hooks.Filters.CLI_DO_INIT_TASKS.add_item(
        (
            _service_name,
            f"./manage.py {_service_name} migrate edx_event_bus_outbox\n./manage.py {_service_name} outbox_status",
        )
    )


@click.command(name="outbox-status", help="Print the outbox's state per lane (manage.py outbox_status).")
@click.option("--service", type=click.Choice(SERVICES), default="lms", show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 when a threshold is exceeded (pending age, dead or held rows).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def outbox_status(service, check, as_json):
    options = (" --check" if check else "") + (" --json" if as_json else "")
    yield (service, f"./manage.py {service} outbox_status{options}")


hooks.Filters.CLI_DO_COMMANDS.add_item(outbox_status)

for _patch in (resources.files("tutoreventbusoutbox") / "patches").iterdir():
    hooks.Filters.ENV_PATCHES.add_item((_patch.name, _patch.read_text(encoding="utf-8")))
