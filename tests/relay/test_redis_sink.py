"""
The Redis Streams sink keeps the relay's promises: Redis unreachable, restarted or full is an
outage that loses nothing and reorders nothing; fencing, the dead state and per-key order hold.

Outages run on a private ``redis-server`` (tests.redis_tools.PrivateRedis), never the stack's.
"""

import logging
import signal
import threading
import time

import pytest
import redis
from django.core.management import call_command
from django.test import override_settings

from edx_event_bus_outbox.models import OutboxEvent, RelayLease
from edx_event_bus_outbox.relay.redis_sink import RedisSink
from edx_event_bus_outbox.relay.relay import Relay
from tests.outbox_tools import KEY_FIELD, drain, wait_for, write_events
from tests.redis_tools import read_stream, stream_messages
from tests.relay.checker import check
from tests.relay.sinks import StealingSink
from tests.relay.test_dead_order import DIES_AT_ONCE, relay_knows_the_newer_type, send, status_of
from tests.relay.test_relay_failures import _relay_in_thread
from tests.relay.test_relay_leases import LEASE, PENDING, holder_token, relay_options, run_in_thread
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

STATUS = OutboxEvent.STATUS
LANE = "redis-lane"


def verdict(url, written, stream=LANE):
    return check(stream_messages(url, stream, KEY_FIELD), [str(m.id) for m in written])


def nothing_counted_against_the_events():
    return not OutboxEvent.objects.exclude(status__in=[STATUS.sent, STATUS.pending]).exists() and not (
        OutboxEvent.objects.filter(attempts__gt=0).exists()
    )


# ---------------------------------------------------------------- outages: lost 0, no reorder


def test_redis_unreachable_then_back_delays_but_loses_nothing(private_redis, settings, caplog):
    proxy = TcpProxy(private_redis.address)  # closed: the port refuses connections
    settings.EVENT_BUS_REDIS_CONNECTION_URL = f"redis://{proxy.address}/0"
    written = write_events(LANE, 30, keys=3)
    with caplog.at_level(logging.INFO):
        relay_thread = _relay_in_thread(LANE)
        relay_thread.join(timeout=3)
        assert relay_thread.is_alive(), "the relay must keep running while Redis cannot be reached"
        assert OutboxEvent.objects.filter(status=PENDING, attempts=0).count() == 30
        proxy.open()
        relay_thread.join(timeout=60)
    proxy.close()
    assert not relay_thread.is_alive()
    result = verdict(private_redis.url, written)
    assert result.ok() and result.duplicates == 0, result.summary()
    assert "Redis cannot be reached" in caplog.text and "running again" in caplog.text


def test_redis_killed_and_restarted_mid_drain_loses_nothing_and_keeps_order(private_redis):
    written = write_events(LANE, 1500, keys=7, per_transaction=50)
    relay_thread = _relay_in_thread(LANE, batch_size=50)
    assert wait_for(lambda: OutboxEvent.objects.filter(status=STATUS.sent).exists(), timeout=30)
    private_redis.stop(signal.SIGKILL)  # appendfsync always: what Redis acknowledged is on disk
    time.sleep(1)
    private_redis.start()
    relay_thread.join(timeout=120)
    assert not relay_thread.is_alive()
    result = verdict(private_redis.url, written)
    assert result.ok(), result.summary()
    assert OutboxEvent.objects.exclude(status=STATUS.sent).count() == 0


def _fill_to(client, headroom):
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", client.info("memory")["used_memory"] + headroom)


def test_redis_full_is_an_outage_until_memory_is_raised(private_redis, caplog):
    written = write_events(LANE, 400, keys=5, per_transaction=100)
    client = private_redis.client()
    _fill_to(client, 100_000)  # room for about a hundred events
    with caplog.at_level(logging.WARNING):
        relay_thread = _relay_in_thread(LANE, batch_size=50)
        assert wait_for(lambda: "Redis is full" in caplog.text, timeout=30), "the relay never met a full Redis"
        assert relay_thread.is_alive() and OutboxEvent.objects.filter(status=PENDING).exists()
        assert nothing_counted_against_the_events()
        client.config_set("maxmemory", 0)
        relay_thread.join(timeout=60)
    assert not relay_thread.is_alive()
    result = verdict(private_redis.url, written)
    assert result.ok() and result.duplicates == 0, result.summary()


def test_a_batch_never_writes_an_event_after_one_redis_refused(private_redis):
    """
    Near maxmemory, while another client frees memory now and then, Redis refuses some ``XADD``\\ s
    of a batch and accepts later ones. Pipelined alone, the later events would be in the stream
    before the refused ones are re-sent: a per-key reorder. Each batch is all or nothing.
    """
    written = write_events(LANE, 2000, keys=7, per_transaction=250)
    client = private_redis.client()
    _fill_to(client, 1_000_000)
    stop = threading.Event()

    def churn():  # another tenant of the Redis, taking and giving back memory
        other = private_redis.client()
        while not stop.is_set():
            try:
                other.set("tenant", b"x" * 300_000)
            except redis.exceptions.ResponseError:
                pass
            other.delete("tenant")

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    try:
        relay_thread = _relay_in_thread(LANE, batch_size=2000)
        time.sleep(3)
    finally:
        stop.set()
        churner.join(timeout=10)
    client.config_set("maxmemory", 0)
    relay_thread.join(timeout=60)
    assert not relay_thread.is_alive()
    result = verdict(private_redis.url, written)
    assert result.ok(), result.summary()


# ---------------------------------------------------------------- the relay's rules, through the Redis sink


def test_a_relay_that_lost_its_lease_mid_batch_marks_nothing_it_wrote_to_redis(redis_topic, settings):
    write_events(redis_topic, 5)
    relay = Relay(relay_options(redis_topic), sink=StealingSink(redis_topic, RedisSink(LEASE)))
    assert relay.relay_once() == 0
    assert OutboxEvent.objects.filter(status=PENDING).count() == 5
    assert len(read_stream(settings.EVENT_BUS_REDIS_CONNECTION_URL, redis_topic)) == 5  # the new holder re-sends
    assert RelayLease.objects.get(lane=redis_topic).token == "thief"


def test_a_relay_that_cannot_reach_redis_gives_way_to_a_standby_and_takes_lanes_again_once_redis_answers(
    private_redis, settings, caplog
):
    written = write_events(LANE, 20, keys=3)
    proxy = TcpProxy(private_redis.address)  # closed until opened
    with override_settings(EVENT_BUS_REDIS_CONNECTION_URL=f"redis://{proxy.address}/0"):
        broken = Relay(relay_options(LANE), sink=RedisSink(LEASE))
    standby = Relay(relay_options(LANE))
    threads = []
    try:
        with caplog.at_level(logging.INFO):
            threads.append(run_in_thread(broken))
            assert wait_for(lambda: holder_token(LANE) == broken.token, 30)
            threads.append(run_in_thread(standby))
            assert wait_for(lambda: holder_token(LANE) == standby.token, 4 * LEASE), "the standby never took over"
            assert wait_for(lambda: not OutboxEvent.objects.filter(status=PENDING).exists(), 30)
            assert "gave way on lane" in caplog.text
            proxy.open()  # Redis answers the broken relay's PING again
            assert wait_for(lambda: "can reach Kafka again" in caplog.text, 30)
            standby.stop()
            threads[1].join(timeout=30)
            later = write_events(LANE, 5, keys=3)
            assert wait_for(lambda: not OutboxEvent.objects.filter(status=PENDING).exists(), 30)
            assert holder_token(LANE) == broken.token
    finally:
        broken.stop()
        standby.stop()
        for thread in threads:
            thread.join(timeout=30)
        proxy.close()
    result = verdict(private_redis.url, written + later)
    assert result.ok(), result.summary()


def test_a_dead_row_holds_its_key_and_after_requeue_the_stream_has_every_key_in_order(redis_topic, settings):
    order = [send(redis_topic, "A"), send(redis_topic, "B"), send(redis_topic, "A", newer=True)]
    order += [send(redis_topic, "B"), send(redis_topic, "A")]
    a1, b1, a2, b2, a3 = order
    drain(redis_topic, **DIES_AT_ONCE)
    assert [status_of(e) for e in (a2, a3)] == [STATUS.dead, STATUS.held]
    url = settings.EVENT_BUS_REDIS_CONNECTION_URL
    assert [fields[b"id"].decode() for _, fields in read_stream(url, redis_topic)] == [a1, b1, b2]

    with relay_knows_the_newer_type():
        call_command("requeue_outbox", "--topic", redis_topic)
        drain(redis_topic, **DIES_AT_ONCE)
        result = check(stream_messages(url, redis_topic, KEY_FIELD), order)
    assert result.ok() and result.duplicates == 0, result.summary()
    assert OutboxEvent.objects.exclude(status=STATUS.sent).count() == 0
