"""
How an idle relay waits for new rows.

Polling is the mechanism that guarantees progress; a PostgreSQL NOTIFY (sent by the outbox
table's insert trigger while a relay says it waits, see
docs/decisions/0024-wake-only-a-waiting-relay.rst) only shortens the wait. Notifications can
be lost (the listening connection drops) without losing events, because the next poll finds
the rows anyway.
"""

import logging

from django.db import connections

logger = logging.getLogger(__name__)

CHANNEL = "edx_event_bus_outbox"


class PollingWaiter:
    """Adaptive polling: quick right after work was found, backing off to the maximum when idle."""

    listens = False  # whether a commit can wake it: the relay then says so when it waits (ADR 24)

    def __init__(self, max_interval: float):
        self.max_interval = max_interval
        self.min_interval = max_interval / 20
        self.interval = self.min_interval

    def found_work(self):
        self.interval = self.min_interval

    def wait(self, stop):
        """Sleep until the next poll is due, or ``stop`` (a ``threading.Event``) is set."""
        stop.wait(self._next_interval())

    def _next_interval(self):
        interval, self.interval = self.interval, min(self.interval * 2, self.max_interval)
        return interval

    def close(self):
        pass


class PostgresNotifyWaiter(PollingWaiter):
    """Waits on LISTEN with the polling interval as its timeout; wakes within milliseconds of a commit."""

    listens = True

    def __init__(self, max_interval: float, alias: str):
        super().__init__(max_interval)
        self.alias = alias
        self.connection = None

    def wait(self, stop):
        timeout = self._next_interval()
        try:
            connection = self._listening_connection()
            for _ in connection.notifies(timeout=timeout, stop_after=1):
                self.interval = self.min_interval
        except Exception:
            logger.warning("Outbox relay: LISTEN connection failed; polling until it reconnects", exc_info=True)
            self.close()
            stop.wait(timeout)

    def _listening_connection(self):
        if self.connection is None:
            import psycopg

            self.connection = psycopg.connect(**listen_connection_params(self.alias), autocommit=True)
            self.connection.execute(f"LISTEN {CHANNEL}")
        return self.connection

    def close(self):
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None


def listen_connection_params(alias) -> dict:
    """psycopg.connect() arguments for a plain connection to the database of ``alias``, outside Django."""
    params = connections[alias].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return params


def make_waiter(alias: str, max_interval: float, listen: bool):
    if listen and connections[alias].vendor == "postgresql":
        return PostgresNotifyWaiter(max_interval, alias)
    return PollingWaiter(max_interval)
