"""Django app configuration."""

from django.apps import AppConfig
from django.core import checks


class EdxEventBusOutboxConfig(AppConfig):
    """Checks the configuration at startup, so a typo fails the deploy, not the first event."""

    name = "edx_event_bus_outbox"
    verbose_name = "Event bus outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):

        from . import conf
        from .outbox import modes

        # The write path runs in every web process, where no system check runs (gunicorn): a bad
        # write-path setting stops the process here rather than losing the first event.
        conf.database_alias()
        modes.validate_producer_config()
        modes.apply_send_error_policy()
        checks.register(check_settings)


def check_settings(app_configs=None, **kwargs):  # noqa: ARG001  (Django's check signature)
    """``manage.py check`` (and ``migrate``, ``runserver``) lists every invalid setting of this package."""
    from . import conf
    from .outbox import modes

    errors = [checks.Error(str(error), id="edx_event_bus_outbox.E001") for error in conf.configuration_errors()]
    if errors:
        return errors  # the warnings below need valid settings
    return [checks.Warning(sentence, id="edx_event_bus_outbox.W001") for sentence in modes.overridden_modes()]
