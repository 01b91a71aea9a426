"""
The Redis Streams side of the relay: a batch of a lane's rows, ``XADD``\\ ed in one round trip.

Same interface as ``KafkaSink`` (``publish``, ``can_reach``, ``prepare``, ``forget``, ``close``), so leases, fencing,
retries, the dead state and per-key order (relay.py, holding.py) apply unchanged. Why each
batch is one ``MULTI``/``EXEC``: docs/decisions/0017-redis-streams-sink.rst.
"""

import time

from redis.exceptions import RedisError

from .. import conf
from ..redis_streams.client import redis_client
from ..redis_streams.entries import stream_entry
from .errors import InfrastructureUnavailable, PermanentEventError, classify_encoding_error, classify_redis_error
from .sink import AtLeastOnce, Delivery, cloud_event_attributes, row_signal


class RedisSink(AtLeastOnce):
    """
    One Redis client (a connection pool, which reconnects by itself), reused for every batch.

    A batch never outlives its deadline: rows are encoded only until a reply timeout before
    it, and every read of Redis's replies gives up after that timeout; rows not reached stay
    pending for a later batch.
    """

    def __init__(self, lease_seconds: float):
        # As KafkaSink's delivery timeout: a third of the lease for Redis's replies.
        self.reply_timeout = max(1.0, lease_seconds / 3)
        self.client = redis_client(self.reply_timeout)

    def publish(self, rows, deadline: float | None = None) -> list:
        """
        ``XADD`` rows in order and return one ``Delivery`` per row sent, or the error of the row
        that could not be encoded, last. A row is acknowledged only by its own ``XADD`` reply.
        """
        if deadline is None:
            deadline = time.monotonic() + 2 * self.reply_timeout
        entries, refused = self._encode_until(rows, deadline - self.reply_timeout)
        deliveries = self._add(entries) if entries else []
        return deliveries + ([refused] if refused else [])

    @staticmethod
    def _encode_until(rows, until):
        """``[(row, entry)]`` for the leading rows, and the ``Delivery`` of the first that cannot be encoded."""
        entries = []
        for row in rows:
            if time.monotonic() >= until:
                break
            try:
                entries.append((row, encode_entry(row)))
            except (PermanentEventError, InfrastructureUnavailable) as exc:
                return entries, Delivery(row.id, error=exc)
        return entries, None

    def _add(self, entries) -> list:
        """
        The rows' ``XADD``\\ s in one ``MULTI``/``EXEC``, pipelined: one round trip, and all or none.

        A transaction, not a bare pipeline: Redis refuses commands one by one (full, loading,
        read-only), and when memory frees up between two of them a bare pipeline writes the
        later event without the earlier, which is then re-sent after it, out of order.
        """
        max_len = conf.redis_stream_max_len()
        pipeline = self.client.pipeline(transaction=True)
        for _, entry in entries:
            pipeline.xadd(entry.stream, entry.fields, maxlen=max_len, approximate=True)
        try:
            replies = pipeline.execute(raise_on_error=False)
        except RedisError as exc:  # not one XADD is known to be in the stream
            error = classify_redis_error(exc)
            return [Delivery(row.id, error=error) for row, _ in entries]
        return [
            Delivery(row.id, error=classify_redis_error(reply)) if isinstance(reply, Exception) else Delivery(row.id)
            for (row, _), reply in zip(entries, replies, strict=True)
        ]

    def can_reach(self, topic) -> bool:  # noqa: ARG002  one Redis serves every topic
        """Whether Redis answers a ``PING``: probed before retaking lanes given up."""
        try:
            return bool(self.client.ping())
        except RedisError:
            return False

    def close(self):
        self.client.close()


def encode_entry(row):
    """The stream entry for an outbox row, or a classified error."""
    signal = row_signal(row)
    try:
        return stream_entry(signal=signal, topic=row.topic, payload=row.payload, **cloud_event_attributes(row))
    except Exception as exc:  # noqa: BLE001  any encoding failure is classified
        raise classify_encoding_error(exc) from exc
