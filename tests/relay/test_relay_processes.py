"""
Relays as real processes: SIGKILL, standby takeover, two relays at once, SIGTERM, heartbeat,
and database restarts.
"""

import random
import re
import signal as signals
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from edx_event_bus_outbox.models import OutboxEvent, RelayLease
from tests.kafka_tools import stack_service
from tests.outbox_tools import kill, relay_process, wait_for, write_events
from tests.relay.checker import check
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]

SHORT_LEASE = ["--lease-seconds", "3", "--poll-interval", "0.2"]


def sent_count(topic=None):
    rows = OutboxEvent.objects.filter(status=OutboxEvent.STATUS.sent)
    return (rows.filter(topic=topic) if topic else rows).count()


def test_sigkill_at_random_moments_loses_nothing_and_never_reorders(kafka_stack, topic, tmp_path):
    rng = random.Random(20261127)
    batch = 100
    written = write_events(topic, 2500, keys=9, per_transaction=100)
    kills = 0
    for _ in range(4):
        relay = relay_process(
            "--lane", topic, "--batch-size", str(batch), *SHORT_LEASE, log_path=tmp_path / "relay.log"
        )
        assert wait_for(lambda relay=relay: sent_count() > 0 or relay.poll() is not None, 60)
        time.sleep(rng.uniform(0.05, 1.0))
        kill(relay)
        kills += 1
    final = relay_process(
        "--lane", topic, "--until-empty", "--batch-size", str(batch), *SHORT_LEASE, log_path=tmp_path / "relay.log"
    )
    assert final.wait(timeout=180) == 0

    verdict = check(kafka_stack.read_all(topic, timeout=60), [str(m.id) for m in written])
    assert verdict.ok(), verdict.summary()
    assert kills == 4 and verdict.duplicates == 0, verdict.summary()  # exactly-once, the default (ADR 20)
    assert sent_count() == 2500


def test_a_standby_takes_over_within_the_lease_after_sigkill(kafka_stack, topic, tmp_path):
    write_events(topic, 3)
    first = relay_process("--lane", topic, *SHORT_LEASE, log_path=tmp_path / "first.log")
    try:
        assert wait_for(lambda: sent_count(topic) == 3, 60)
        lease = RelayLease.objects.get(lane=topic)
        assert lease.holder.endswith(f":{first.pid}")
        standby = relay_process("--lane", topic, *SHORT_LEASE, log_path=tmp_path / "standby.log")
        time.sleep(2)  # the standby is up and polling, but the lane is held
        assert RelayLease.objects.get(lane=topic).holder.endswith(f":{first.pid}")

        kill(first)
        killed_at = time.monotonic()
        write_events(topic, 2)
        assert wait_for(lambda: sent_count(topic) == 5, 30)
        took_over_after = time.monotonic() - killed_at
        assert RelayLease.objects.get(lane=topic).holder.endswith(f":{standby.pid}")
        assert took_over_after < 3 + 5, f"standby took {took_over_after:.1f}s with a 3s lease"
    finally:
        kill(first)
        kill(standby) if "standby" in locals() else None
    assert len(kafka_stack.read_all(topic, expected=5)) == 5


def holder(lane):
    return RelayLease.objects.filter(lane=lane).values_list("holder", flat=True).first() or ""


def test_a_relay_cut_off_from_kafka_gives_way_to_the_standby_and_comes_back(kafka_stack, topic, tmp_path):
    """The database is reachable but Kafka is not (a closed port), until the port opens again."""
    proxy = TcpProxy(kafka_stack.bootstrap_servers)  # closed for now
    written = write_events(topic, 30, keys=4)
    broken = relay_process(
        "--lane",
        topic,
        *SHORT_LEASE,
        log_path=tmp_path / "broken.log",
        env={"EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": proxy.address},
    )
    standby = None
    try:
        assert wait_for(lambda: holder(topic).endswith(f":{broken.pid}"), 60)
        standby = relay_process("--lane", topic, *SHORT_LEASE, log_path=tmp_path / "standby.log")
        started = time.monotonic()
        assert wait_for(lambda: sent_count(topic) == 30, 60), "the standby never took over"
        assert time.monotonic() - started < 20  # its start-up, plus about one 3 s lease and one batch
        assert holder(topic).endswith(f":{standby.pid}")
        assert "gave way on lane" in (tmp_path / "broken.log").read_text()

        proxy.open()
        assert wait_for(lambda: "can reach Kafka again" in (tmp_path / "broken.log").read_text(), 60)
        assert kill(standby, signals.SIGTERM) == 0
        later = write_events(topic, 5, keys=4)
        assert wait_for(lambda: sent_count(topic) == 35, 60)
        assert holder(topic).endswith(f":{broken.pid}")
    finally:
        kill(broken)
        if standby is not None:
            kill(standby)
        proxy.close()
    verdict = check(kafka_stack.read_all(topic, expected=35), [str(m.id) for m in written + later])
    assert verdict.ok(), verdict.summary()


def test_two_relays_started_at_once_share_lanes_without_duplicates(kafka_stack, topic, tmp_path):
    """
    The first relay to run a pass takes every free lane, so two relays on all lanes need not
    share at all. Here each has a lane only it drains and one lane both want: each must hold
    its own lane (its log says so), and the contested lane must still be published once, in order.
    """
    lanes = [f"{topic}-{n}" for n in range(3)]
    written = {}
    for lane in lanes:
        kafka_stack.create_topic(lane, partitions=3)
        written[lane] = write_events(lane, 300, keys=4, per_transaction=50)
    lanes_of = {"first": lanes[:2], "second": lanes[1:]}
    # A lease long enough not to lapse on a loaded machine: a lapse is a takeover, whose re-sent
    # batch is another test's.
    relays = {
        name: relay_process(
            "--until-empty",
            "--batch-size",
            "50",
            "--lease-seconds",
            "20",
            "--poll-interval",
            "0.2",
            *[arg for lane in own for arg in ("--lane", lane)],
            log_path=tmp_path / f"{name}.log",
        )
        for name, own in lanes_of.items()
    }
    assert [relay.wait(timeout=180) for relay in relays.values()] == [0, 0]

    held = {
        name: set(re.findall(r"now holds lane '([^']+)'", (tmp_path / f"{name}.log").read_text())) for name in relays
    }
    assert lanes[0] in held["first"] and lanes[2] in held["second"], held  # both held lanes
    assert lanes[1] in held["first"] | held["second"], held
    for lane in lanes:  # everything is on the broker by now: read each topic to its end, duplicates included
        verdict = check(kafka_stack.read_all(lane), [str(m.id) for m in written[lane]])
        assert verdict.ok() and verdict.duplicates == 0, f"{lane}: {verdict.summary()}"
    assert sent_count() == 900


def test_sigterm_finishes_the_batch_releases_the_lease_and_exits_zero(kafka_stack, topic, tmp_path):
    written = write_events(topic, 3000, keys=5, per_transaction=500)
    relay = relay_process("--lane", topic, "--batch-size", "100", *SHORT_LEASE, log_path=tmp_path / "relay.log")
    assert wait_for(lambda: sent_count() > 0, 60)
    relay.send_signal(signals.SIGTERM)
    stopped_at = time.monotonic()
    assert relay.wait(timeout=15) == 0
    assert time.monotonic() - stopped_at < 10
    assert RelayLease.objects.get(lane=topic).expires_at is None  # released, not left to expire

    published = kafka_stack.read_all(topic)
    published_ids = {m.headers()[4][1].decode() for m in published}
    sent_ids = {str(e) for e in OutboxEvent.objects.filter(status="sent").values_list("event_id", flat=True)}
    assert sent_ids and sent_ids < {str(m.id) for m in written}, "stopped mid-drain"
    assert sent_ids == published_ids  # the batch in flight was finished: what the broker took is marked sent
    assert "Outbox relay stopped" in (tmp_path / "relay.log").read_text()


def test_until_empty_exits_zero_and_the_heartbeat_file_is_fresh(kafka_stack, topic, tmp_path):
    other = f"{topic}-other"
    write_events(topic, 4)
    write_events(other, 2)
    heartbeat = tmp_path / "alive"
    relay = relay_process(
        "--lane", topic, "--until-empty", "--heartbeat-file", str(heartbeat), log_path=tmp_path / "relay.log"
    )
    assert relay.wait(timeout=60) == 0
    assert heartbeat.exists() and time.time() - heartbeat.stat().st_mtime < 30
    assert sent_count(topic) == 4 and sent_count(other) == 0  # the lane filter held


@pytest.mark.stack_restart
@pytest.mark.server_database
def test_database_restart_mid_drain_is_survived(kafka_stack, topic, tmp_path):
    written = write_events(topic, 2000, keys=5, per_transaction=200)
    relay = relay_process("--lane", topic, "--batch-size", "50", *SHORT_LEASE, log_path=tmp_path / "relay.log")
    try:
        assert wait_for(lambda: sent_count() > 0, 60)
        connection.close()
        stack_service("restart", "postgres" if connection.vendor == "postgresql" else "mariadb")
        assert wait_for(lambda: _sent_after_reconnect() == 2000, 120)
        assert relay.poll() is None, "the relay must survive a database restart"
    finally:
        kill(relay, signals.SIGTERM)
    verdict = check(kafka_stack.read_all(topic, timeout=60), [str(m.id) for m in written])
    assert verdict.ok(), verdict.summary()
    assert "cannot use the database" in (tmp_path / "relay.log").read_text()


def _sent_after_reconnect():
    try:
        return sent_count()
    except Exception:  # noqa: BLE001  the database may be restarting
        connection.close()
        return -1


@pytest.mark.postgres_only
def test_notify_wakes_an_idle_relay_long_before_its_poll_interval(kafka_stack, topic, tmp_path):
    relay = relay_process("--lane", topic, "--poll-interval", "30", log_path=tmp_path / "relay.log")
    try:
        time.sleep(3)  # let it go idle: a 30 s poll interval from here on
        write_events(topic, 1)
        written_at = time.monotonic()
        assert wait_for(lambda: sent_count(topic) == 1, 20, interval=0.02)
        assert time.monotonic() - written_at < 5
    finally:
        kill(relay, signals.SIGTERM)


def holders(lanes):
    """``{lane: pid of its holder}`` for the lanes with an unexpired lease."""
    leases = RelayLease.objects.filter(lane__in=lanes, expires_at__gt=timezone.now())
    return {lease.lane: int(lease.holder.rsplit(":", 1)[1]) for lease in leases}


def test_relays_share_the_lanes_by_themselves_and_hand_them_back(kafka_stack, tmp_path):
    """No --lane: the first relay takes all four topics, the second about half, and all return when it stops."""
    topics = [f"share-{n}-{uuid.uuid4().hex[:8]}" for n in range(4)]
    for topic in topics:
        kafka_stack.create_topic(topic)
    written = {topic: [] for topic in topics}

    def write_and_drain():
        for topic in topics:
            written[topic] += write_events(topic, 20, keys=3)
        assert wait_for(lambda: sent_count() == sum(map(len, written.values())), 60)

    first = relay_process(*SHORT_LEASE, log_path=tmp_path / "first.log")
    try:
        write_and_drain()
        assert set(holders(topics).values()) == {first.pid}
        second = relay_process(*SHORT_LEASE, log_path=tmp_path / "second.log")
        assert wait_for(lambda: len(holders(topics)) <= 2, 20)  # the first hands two lanes back
        write_and_drain()
        two_each = sorted([first.pid] * 2 + [second.pid] * 2)
        assert wait_for(lambda: sorted(holders(topics).values()) == two_each, 20), holders(topics)

        assert kill(second, signals.SIGTERM) == 0
        write_and_drain()
        assert wait_for(lambda: holders(topics) == dict.fromkeys(topics, first.pid), 20), holders(topics)
    finally:
        kill(first)
        kill(second) if "second" in locals() else None
    for topic in topics:
        verdict = check(kafka_stack.read_all(topic, expected=60), [str(m.id) for m in written[topic]])
        assert verdict.ok() and verdict.duplicates == 0, verdict.summary()


def test_relays_share_the_lanes_of_one_topic_and_each_key_stays_in_order(kafka_stack, topic, tmp_path, settings):
    """
    One topic split into 4 lanes (ADR 22), written first with 2 lanes then with 4, as in a
    deploy that raises the number; two relay processes share the lanes and publish every event
    once, each key in commit order.
    """
    settings.EVENT_BUS_OUTBOX_TOPIC_LANES = {topic: 2}
    written = write_events(topic, 150, keys=16)
    relays = [relay_process(*SHORT_LEASE, log_path=tmp_path / f"relay-{n}.log") for n in range(2)]
    try:
        settings.EVENT_BUS_OUTBOX_TOPIC_LANES = {topic: 4}
        written += write_events(topic, 250, keys=16, per_transaction=5)
        assert wait_for(lambda: sent_count(topic) == 400, 90), sent_count(topic)
        lanes = [f"{topic}#{index}/4" for index in range(4)]  # the 16 keys fall in all four
        assert wait_for(lambda: set(holders(lanes).values()) == {r.pid for r in relays}, 20), holders(lanes)
    finally:
        for relay in relays:
            kill(relay, signals.SIGTERM)
    verdict = check(kafka_stack.read_all(topic, expected=400), [str(m.id) for m in written])
    assert verdict.ok() and verdict.duplicates == 0, verdict.summary()
