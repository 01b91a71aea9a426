"""Sinks for relay tests: one that stands in for Kafka (the database side only), and wrappers of real ones."""

from datetime import timedelta

from django.utils import timezone

from edx_event_bus_outbox.models import RelayLease
from edx_event_bus_outbox.relay.sink import AtLeastOnce, Delivery


class AcceptingSink(AtLeastOnce):
    """Acknowledges every row, at partition 0 and the next offset, and remembers the event ids in order."""

    def __init__(self):
        self.published = []

    def publish(self, rows, deadline=None):
        deliveries = []
        for row in rows:
            deliveries.append(Delivery(row.id, 0, len(self.published)))
            self.published.append(str(row.event_id))
        return deliveries

    def close(self):
        pass


class StealingSink:
    """A real sink; once it has published, another relay takes the lease over, as after a long pause."""

    def __init__(self, lane, sink):
        self.lane = lane
        self.sink = sink

    def publish(self, rows, *args, **kwargs):
        deliveries = self.sink.publish(rows, *args, **kwargs)
        RelayLease.objects.filter(lane=self.lane).update(
            token="thief", expires_at=timezone.now() + timedelta(minutes=1)
        )
        return deliveries

    def prepare(self, lane):
        return self.sink.prepare(lane)

    def forget(self, lane):
        self.sink.forget(lane)

    def close(self):
        self.sink.close()
