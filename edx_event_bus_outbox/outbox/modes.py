"""
Which production mode applies to an event, and the startup checks of that configuration.

A mode is chosen per (event type, topic) by an optional ``"mode"`` key in the topic's entry
of ``EVENT_BUS_PRODUCER_CONFIG``, falling back to ``EVENT_BUS_PRODUCER_MODE``.
"""

from django.conf import settings

from .. import conf
from ..exceptions import OutboxConfigurationError


def mode_for(event_type: str, topic: str) -> str:
    """The mode of one (event type, topic) pair; already validated at startup."""
    topic_config = conf.producer_config().get(event_type, {}).get(topic, {})
    return topic_config.get("mode") or conf.default_mode()


def validate_producer_config():
    """Raise ``OutboxConfigurationError`` naming the first unknown mode, or a setting we cannot work with."""
    if not getattr(settings, "USE_TZ", False):
        raise OutboxConfigurationError(
            "edx-event-bus-outbox needs USE_TZ = True: event times and relay timings are stored as UTC."
        )
    _check_mode(conf.default_mode(), "EVENT_BUS_PRODUCER_MODE")
    for event_type, topics in conf.producer_config().items():
        for topic, topic_config in (topics or {}).items():
            if isinstance(topic_config, dict) and "mode" in topic_config:
                _check_mode(topic_config["mode"], f"EVENT_BUS_PRODUCER_CONFIG[{event_type!r}][{topic!r}]['mode']")


def _check_mode(mode, where):
    if mode not in conf.MODES:
        raise OutboxConfigurationError(f"{where} is {mode!r}; it must be one of {', '.join(map(repr, conf.MODES))}.")


def apply_send_error_policy():
    """With ``EVENT_BUS_OUTBOX_PROPAGATE_SEND_ERRORS``, let write failures roll the caller back."""
    if not conf.propagate_send_errors():
        return

    from openedx_events.tooling import OpenEdxPublicSignal, load_all_signals

    load_all_signals()
    for event_type in conf.producer_config():
        OpenEdxPublicSignal.get_signal_by_type(event_type).allow_send_event_failure()
