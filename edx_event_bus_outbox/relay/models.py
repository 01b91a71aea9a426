"""The lease table: who may relay a lane, until when."""

from django.db import models


class RelayLease(models.Model):
    """
    One row per lane. The relay holding an unexpired lease is the only one that publishes
    the lane's rows; ``token`` changes on every takeover and is re-checked before each batch
    (fencing), so a relay that was paused past its expiry cannot publish or mark anything.
    See docs/decisions/0002-leases-and-fencing.rst.
    """

    lane = models.CharField(max_length=255, primary_key=True)
    token = models.CharField(max_length=64, blank=True, default="")
    holder = models.CharField(max_length=255, blank=True, default="", help_text="host:pid of the relay")
    expires_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "edx_event_bus_outbox"
        db_table = "edx_event_bus_outbox_lease"

    def __str__(self):
        return f"lane {self.lane} held by {self.holder or 'nobody'} until {self.expires_at}"


class RelayPresence(models.Model):
    """
    One row per running relay, renewed about once per poll interval: relays that serve the
    same lanes count each other here and each holds its fair share of the lanes
    (docs/decisions/0021-lanes-shared-among-relays.rst). ``waiting`` tells the outbox table's
    trigger whether a commit should wake a relay (docs/decisions/0024-wake-only-a-waiting-relay.rst).
    """

    token = models.CharField(max_length=64, primary_key=True, help_text="The relay's lease token")
    holder = models.CharField(max_length=255, blank=True, default="", help_text="host:pid of the relay")
    expires_at = models.DateTimeField()
    waiting = models.BooleanField(
        default=False,
        help_text="The relay found nothing and may be asleep: commits that write events wake it",
    )

    class Meta:
        app_label = "edx_event_bus_outbox"
        db_table = "edx_event_bus_outbox_relay"

    def __str__(self):
        return f"relay {self.holder} alive until {self.expires_at}"
