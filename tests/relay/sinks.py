"""A sink that stands in for Kafka, for relay tests about the database side only."""

from edx_event_bus_outbox.relay.sink import Delivery


class AcceptingSink:
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
