"""Django's model registry looks here; the models live with the code that owns them."""
from .outbox.models import OutboxEvent  # noqa: F401
