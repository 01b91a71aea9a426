"""Django's model registry looks here; the models live with the code that owns them."""

from .consumer.models import ConsumerInboxEntry  # noqa: F401
from .outbox.models import OutboxEvent  # noqa: F401
from .relay.models import RelayLease, RelayPresence  # noqa: F401
