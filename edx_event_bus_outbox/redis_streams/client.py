"""A redis-py client for the relay, and what its errors say about Redis."""

import redis
from redis import exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import conf
from ..exceptions import OutboxConfigurationError


def redis_client(timeout: float):
    """
    A client of ``EVENT_BUS_REDIS_CONNECTION_URL`` whose every connect and read gives up after
    ``timeout`` seconds, and which never retries by itself: the relay retries whole batches,
    with backoff, and a silent retry inside redis-py would outlast the batch's deadline.
    """
    url = conf.redis_connection_url()
    if not url:
        raise OutboxConfigurationError(
            "EVENT_BUS_REDIS_CONNECTION_URL is not set; set it to the Redis that edx-event-bus-redis uses "
            "(redis://HOST:PORT/DB)."
        )
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


def describe_redis_error(exc) -> str:
    """
    What a redis-py error means, and what to do, for the relay's logs and ``last_error``.

    Redis's error texts name the command and the condition, never the data; redis-py's
    connection errors name the host and port, never the password.
    """
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, exceptions.OutOfMemoryError):
        return f"Redis is full (maxmemory reached; raise maxmemory or free memory): {text}"
    if isinstance(exc, exceptions.BusyLoadingError):
        return f"Redis is loading its data after a restart: {text}"
    if isinstance(exc, exceptions.AuthenticationError | exceptions.NoPermissionError):
        return f"Redis refused this client (check EVENT_BUS_REDIS_CONNECTION_URL's user and password): {text}"
    if isinstance(exc, exceptions.ConnectionError | exceptions.TimeoutError):
        return f"Redis cannot be reached: {text}"
    if isinstance(exc, exceptions.ReadOnlyError):
        return f"Redis is a read-only replica (a failover in progress?): {text}"
    return f"Redis refused XADD: {text}"
