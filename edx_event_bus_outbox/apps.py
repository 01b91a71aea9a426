"""Django app configuration."""
from django.apps import AppConfig


class EdxEventBusOutboxConfig(AppConfig):
    """Checks the producer configuration at startup, so a typo fails the deploy, not the first event."""

    name = "edx_event_bus_outbox"
    verbose_name = "Event bus outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .outbox import modes  # pylint: disable=import-outside-toplevel
        modes.validate_producer_config()
        modes.apply_send_error_policy()
