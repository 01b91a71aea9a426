"""
The settings as edx-platform builds them.

edx-platform's ``lms/envs/production.py`` (and ``cms/envs/production.py``) makes every key of the
YAML file named by ``LMS_CFG`` a Django setting, except ``EVENT_BUS_PRODUCER_CONFIG``, which it
combines with ``common.py``'s through openedx-events' ``merge_producer_configs``. That merge keeps
only ``event_key_field`` and ``enabled`` from the YAML's entries: a ``"mode"`` there is dropped,
without a word. ``EVENT_BUS_OUTBOX_TOPIC_MODES`` is an ordinary key, and arrives as written.
"""

import pytest
import yaml
from django.core.management import call_command
from django.db import transaction
from openedx_events.event_bus import merge_producer_configs

from edx_event_bus_outbox import conf
from edx_event_bus_outbox.kafka.headers import header_values
from edx_event_bus_outbox.models import OutboxEvent
from edx_event_bus_outbox.outbox import on_commit
from edx_event_bus_outbox.outbox.modes import mode_for
from tests.factories import enrollment_event
from tests.test_producer import caller_rows, caller_writes, emit

pytestmark = pytest.mark.django_db(transaction=True)

SIGNAL, KEY_FIELD, _ = enrollment_event()
EVENT_TYPE = SIGNAL.event_type

# What edx-platform's common.py ships for an event: known, but not produced.
COMMON_PRODUCER_CONFIG = {EVENT_TYPE: {"learning-enrollments": {"event_key_field": KEY_FIELD, "enabled": False}}}

# The YAML keys that production.py does not copy as they are, but handles itself.
SPECIAL_YAML_KEYS = (
    "FEATURES",
    "TRACKING_BACKENDS",
    "EVENT_TRACKING_BACKENDS",
    "JWT_AUTH",
    "CELERY_QUEUES",
    "MKTG_URL_LINK_MAP",
    "REST_FRAMEWORK",
    "EVENT_BUS_PRODUCER_CONFIG",
)


def lms_cfg(topic, *, topic_modes=True):
    """An operator's LMS_CFG YAML turning the event on for ``topic`` in on-commit mode, both ways."""
    text = f"""
EVENT_BUS_PRODUCER: edx_event_bus_outbox.create_producer
EVENT_BUS_PRODUCER_CONFIG:
  {EVENT_TYPE}:
    {topic}:
      event_key_field: {KEY_FIELD}
      enabled: true
      mode: on-commit
"""
    if topic_modes:
        text += f"""
EVENT_BUS_OUTBOX_TOPIC_MODES:
  {topic}: on-commit
"""
    return text


def production_settings(yaml_text):
    """The settings lms/envs/production.py derives from the YAML file and common.py's defaults."""
    yaml_tokens = yaml.safe_load(yaml_text)
    derived = {key: value for key, value in yaml_tokens.items() if key not in SPECIAL_YAML_KEYS}
    derived["EVENT_BUS_PRODUCER_CONFIG"] = merge_producer_configs(
        COMMON_PRODUCER_CONFIG, yaml_tokens.get("EVENT_BUS_PRODUCER_CONFIG", {})
    )
    return derived


def configure(settings, bus, derived):
    """Apply the derived settings, and connect the signal as openedx-events' ready() would."""
    for name, value in derived.items():
        if name != "EVENT_BUS_PRODUCER_CONFIG":
            setattr(settings, name, value)
    settings.EVENT_BUS_PRODUCER_CONFIG = {}
    for event_type, topics in derived["EVENT_BUS_PRODUCER_CONFIG"].items():
        bus(event_type, topics)
    assert settings.EVENT_BUS_PRODUCER_CONFIG == derived["EVENT_BUS_PRODUCER_CONFIG"]
    conf.check_settings()


@pytest.fixture
def handed_to_kafka(monkeypatch):
    """Event ids the on-commit mode hands to Kafka after commit (not published: no broker here)."""
    calls = []
    monkeypatch.setattr(on_commit, "publish", lambda **kwargs: calls.append(str(kwargs["metadata"].id)))
    return calls


def test_merge_producer_configs_drops_the_mode_and_keeps_topic_modes():
    derived = production_settings(lms_cfg("user-enrollments"))
    assert derived["EVENT_BUS_PRODUCER_CONFIG"][EVENT_TYPE] == {
        "learning-enrollments": {"event_key_field": KEY_FIELD, "enabled": False},
        "user-enrollments": {"event_key_field": KEY_FIELD, "enabled": True},  # no "mode"
    }
    assert derived["EVENT_BUS_OUTBOX_TOPIC_MODES"] == {"user-enrollments": "on-commit"}


def test_a_mode_only_in_the_producer_config_is_lost_on_edx_platform(settings, bus, handed_to_kafka):
    configure(settings, bus, production_settings(lms_cfg("user-enrollments", topic_modes=False)))
    assert mode_for(EVENT_TYPE, "user-enrollments") == conf.MODE_OUTBOX
    _, _, data = enrollment_event()
    with transaction.atomic():
        emit(SIGNAL, data)
    assert list(OutboxEvent.objects.values_list("topic", flat=True)) == ["user-enrollments"]
    assert handed_to_kafka == []


def test_the_mode_in_topic_modes_takes_effect_on_edx_platform(settings, bus, handed_to_kafka):
    configure(settings, bus, production_settings(lms_cfg("user-enrollments")))
    assert mode_for(EVENT_TYPE, "user-enrollments") == conf.MODE_ON_COMMIT
    _, _, data = enrollment_event()
    with transaction.atomic():
        caller_writes()
        emit(SIGNAL, data)
        assert handed_to_kafka == []  # not before the commit
    assert len(handed_to_kafka) == 1
    assert OutboxEvent.objects.count() == 0 and caller_rows() == ["caller"]


@pytest.mark.kafka
def test_the_mode_in_topic_modes_publishes_straight_to_kafka(settings, bus, topic, kafka_stack):
    configure(settings, bus, production_settings(lms_cfg(topic)))
    _, _, data = enrollment_event()
    ids = []
    SIGNAL.connect(lambda **kw: ids.append(str(kw["metadata"].id)), weak=False, dispatch_uid="ids")
    try:
        with transaction.atomic():
            emit(SIGNAL, data)
    finally:
        SIGNAL.disconnect(dispatch_uid="ids")
    assert on_commit.flush(30) == 0
    messages = kafka_stack.read_all(topic, expected=1)
    assert [header_values(m.headers(), "ce_id") for m in messages] == [ids]
    assert OutboxEvent.objects.count() == 0, "on-commit mode writes no outbox row"


@pytest.mark.parametrize(
    "topic_mode, producer_config_mode, expected",
    [
        ("outbox", "on-commit", "outbox"),
        ("on-commit", "outbox", "on-commit"),
        (None, "on-commit", "on-commit"),
        (None, None, "outbox"),
    ],
)
def test_topic_modes_win_over_the_producer_config_which_wins_over_the_default(
    settings, topic_mode, producer_config_mode, expected
):
    options = {"event_key_field": KEY_FIELD, "enabled": True}
    if producer_config_mode:
        options["mode"] = producer_config_mode
    settings.EVENT_BUS_PRODUCER_CONFIG = {EVENT_TYPE: {"t": options}}
    settings.EVENT_BUS_OUTBOX_TOPIC_MODES = {"t": topic_mode} if topic_mode else {}
    assert mode_for(EVENT_TYPE, "t") == expected
    assert mode_for("org.openedx.other.event.v1", "t") == (topic_mode or "outbox")  # a topic mode is per topic


def test_manage_py_check_warns_when_topic_modes_override_a_different_mode(settings, capsys):
    settings.EVENT_BUS_PRODUCER_CONFIG = {
        EVENT_TYPE: {
            "t": {"event_key_field": KEY_FIELD, "enabled": True, "mode": "on-commit"},
            "u": {"event_key_field": KEY_FIELD, "enabled": True, "mode": "outbox"},
        }
    }
    settings.EVENT_BUS_OUTBOX_TOPIC_MODES = {"t": "outbox", "u": "outbox"}
    call_command("check")
    report = capsys.readouterr().err
    assert "edx_event_bus_outbox.W001" in report
    assert (
        f"EVENT_BUS_PRODUCER_CONFIG[{EVENT_TYPE!r}]['t']['mode'] is 'on-commit', but "
        "EVENT_BUS_OUTBOX_TOPIC_MODES['t'] is 'outbox', which applies." in report
    )
    assert "['u']" not in report, "the same mode in both places is no surprise"
