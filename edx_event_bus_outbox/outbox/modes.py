"""
Which production mode applies to an event, and the startup checks of that configuration.

A topic's mode comes from ``EVENT_BUS_OUTBOX_TOPIC_MODES``; else from an optional ``"mode"``
key in the (event type, topic) entry of ``EVENT_BUS_PRODUCER_CONFIG``, kept for compatibility;
else from ``EVENT_BUS_PRODUCER_MODE``. edx-platform's ``merge_producer_configs`` drops that
``"mode"`` key, hence the first setting (docs/decisions/0014-where-the-mode-lives.rst).
"""

from django.conf import settings

from .. import conf
from ..exceptions import OutboxConfigurationError


def mode_for(event_type: str, topic: str) -> str:
    """The mode of one (event type, topic) pair; already validated at startup."""
    return (
        conf.topic_modes().get(topic)
        or conf.producer_config().get(event_type, {}).get(topic, {}).get("mode")
        or conf.default_mode()
    )


def validate_producer_config():
    """Raise ``OutboxConfigurationError`` naming the first invalid write-path setting."""
    if not getattr(settings, "USE_TZ", False):
        raise OutboxConfigurationError(
            "edx-event-bus-outbox needs USE_TZ = True: event times and relay timings are stored as UTC."
        )
    conf.default_mode()
    conf.check_producer_config()
    conf.check_topic_modes()
    conf.check_topic_lanes()


def overridden_modes() -> list:
    """
    One sentence for each ``"mode"`` in ``EVENT_BUS_PRODUCER_CONFIG`` that ``EVENT_BUS_OUTBOX_TOPIC_MODES``
    overrides with another mode: both are valid, but someone expects the one that does not apply.
    """
    topic_modes = conf.topic_modes()
    return [
        f"EVENT_BUS_PRODUCER_CONFIG[{event_type!r}][{topic!r}]['mode'] is {options['mode']!r}, but "
        f"EVENT_BUS_OUTBOX_TOPIC_MODES[{topic!r}] is {topic_modes[topic]!r}, which applies."
        for event_type, topics in conf.producer_config().items()
        for topic, options in topics.items()
        if topic in topic_modes and options.get("mode", topic_modes[topic]) != topic_modes[topic]
    ]


def apply_send_error_policy():
    """With ``EVENT_BUS_OUTBOX_PROPAGATE_SEND_ERRORS``, let write failures roll the caller back."""
    if not conf.propagate_send_errors():
        return

    from openedx_events.tooling import OpenEdxPublicSignal, load_all_signals

    load_all_signals()
    for event_type in conf.producer_config():
        OpenEdxPublicSignal.get_signal_by_type(event_type).allow_send_event_failure()
