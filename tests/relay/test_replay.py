"""
``replay_outbox`` on the database side, with a sink that stands in for the broker: what is
selected, in which order and batches, what a dry run and a failure report, and that no row
changes. tests/relay/test_replay_kafka.py shows the same against the real broker.
"""

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from edx_event_bus_outbox.exceptions import ReplayStopped
from edx_event_bus_outbox.models import OutboxEvent, RelayLease
from edx_event_bus_outbox.relay import replay as replay_module
from edx_event_bus_outbox.relay.errors import InfrastructureUnavailable
from edx_event_bus_outbox.relay.sink import Delivery
from tests.ops.rows import PII_MARKER
from tests.outbox_tools import manage

pytestmark = pytest.mark.django_db(transaction=True)  # manage() closes the connection, as manage.py does

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class RecordingSink:
    """Acknowledges rows until ``fail_after`` have been published, then reports the broker unreachable."""

    def __init__(self, fail_after=None):
        self.published, self.batches, self.fail_after, self.closed = [], [], fail_after, False

    def publish(self, rows, deadline=None):
        self.batches.append([row.id for row in rows])
        deliveries = []
        for row in rows:
            if self.fail_after is not None and len(self.published) >= self.fail_after:
                deliveries.append(
                    Delivery(row.id, error=InfrastructureUnavailable("Kafka delivery failed: _TRANSPORT"))
                )
                break
            self.published.append(row.id)
            deliveries.append(Delivery(row.id, 0, len(self.published)))
        return deliveries

    def close(self):
        self.closed = True


@pytest.fixture
def sink(monkeypatch):
    recording = RecordingSink()
    monkeypatch.setattr(replay_module, "TopicSinks", lambda lease_seconds: OneSinkForEveryTopic(recording))
    return recording


class OneSinkForEveryTopic:
    """Stands in for ``TopicSinks``."""

    def __init__(self, sink):
        self.only = sink

    def sink(self, topic):
        return self.only

    def close(self):
        self.only.close()


def history():
    """Two topics and two event types, one row a minute from T0, with pending, dead and held rows between."""
    rows = []
    for minute in range(40):
        status = {7: "pending", 13: "dead", 14: "held"}.get(minute, "sent")
        rows.append(
            OutboxEvent(
                event_id=uuid.uuid4(),
                event_type="org.openedx.test.v1" if minute % 3 else "org.openedx.other.v1",
                topic="lane-a" if minute % 4 else "lane-b",
                event_key_field="user.id",
                event_key=42,
                payload={"user": {"id": 42, "pii": {"email": PII_MARKER}}},
                event_time=T0 + timedelta(minutes=minute),
                source="s",
                sourcehost="h",
                sourcelib="1.0.0",
                status=status,
                created=T0 + timedelta(minutes=minute),
                sent_at=T0 + timedelta(minutes=minute, seconds=1) if status == "sent" else None,
            )
        )
    OutboxEvent.objects.bulk_create(rows)
    return list(OutboxEvent.objects.order_by("id"))


def row_state():
    return list(OutboxEvent.objects.order_by("id").values_list())


def at(minute):
    return (T0 + timedelta(minutes=minute)).isoformat()


def test_a_time_range_and_a_topic_select_exactly_their_sent_rows_in_id_order(sink):
    rows = history()
    before = row_state()

    result = manage("replay_outbox", "--since", at(5), "--until", at(30), "--topic", "lane-a", "--batch-size", "4")

    assert result.returncode == 0, result.stderr
    expected = [
        row.id for row in rows[5:30] if row.topic == "lane-a" and row.status == "sent"
    ]  # since inclusive, until exclusive
    assert sink.published == expected and len(expected) == 16
    assert all(len(batch) <= 4 for batch in sink.batches) and sink.closed
    assert row_state() == before  # nothing marked, claimed or moved
    assert "Replayed 16 event(s)" in result.stdout and f"up to id {expected[-1]}" in result.stdout
    assert "replayed 16/16 events (100%)" in result.stderr


def test_event_types_select_across_topics_and_all_needs_no_time(sink):
    rows = history()
    result = manage("replay_outbox", "--all", "--event-type", "org.openedx.other.v1")
    assert result.returncode == 0, result.stderr
    assert sink.published == [r.id for r in rows if r.event_type == "org.openedx.other.v1" and r.status == "sent"]


def test_batches_are_bounded_in_bytes_too(sink):
    rows = history()
    payload_bytes = len(json.dumps(rows[0].payload))
    result = manage("replay_outbox", "--all", "--batch-max-bytes", str(3 * payload_bytes))
    assert result.returncode == 0, result.stderr
    assert sink.published == [r.id for r in rows if r.status == "sent"]
    assert max(len(batch) for batch in sink.batches) == 3


def test_limit_stops_after_that_many_and_says_how_to_go_on(sink):
    rows = [r.id for r in history() if r.status == "sent"]
    result = manage("replay_outbox", "--all", "--limit", "6", "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    assert sink.published == rows[:6] and sink.batches == [rows[:4], rows[4:6]]
    assert f"--after-id {rows[5]}" in result.stdout

    resumed = manage("replay_outbox", "--all", "--after-id", str(rows[5]))
    assert resumed.returncode == 0 and sink.published == rows


def test_dry_run_counts_per_topic_and_event_type_and_publishes_nothing(sink):
    rows = history()
    before = row_state()

    result = manage("replay_outbox", "--since", at(0), "--until", at(12), "--dry-run")

    assert result.returncode == 0, result.stderr
    assert sink.batches == [] and row_state() == before
    selected = [r for r in rows[:12] if r.status == "sent"]
    assert f"would replay {len(selected)} sent event(s)" in result.stdout
    for topic in ("lane-a", "lane-b"):
        for event_type in ("org.openedx.test.v1", "org.openedx.other.v1"):
            group = [r for r in selected if (r.topic, r.event_type) == (topic, event_type)]
            line = f"  {topic}  {event_type}: {len(group)} event(s), ids {group[0].id}..{group[-1].id}, "
            line += f"created {group[0].created.isoformat()} .. {group[-1].created.isoformat()}"
            assert line in result.stdout
    assert f"First id {selected[0].id}, last id {selected[-1].id}." in result.stdout

    limited = manage("replay_outbox", "--since", at(0), "--until", at(12), "--dry-run", "--limit", "3")
    assert f"--limit 3: only the first 3, ids {selected[0].id}..{selected[2].id}." in limited.stdout


def test_pending_rows_and_leases_are_untouched(sink):
    history()
    RelayLease.objects.create(lane="lane-a", token="relay-1", holder="host:1", expires_at=T0 + timedelta(days=1))
    leases = list(RelayLease.objects.values_list())
    before = row_state()

    assert manage("replay_outbox", "--all").returncode == 0

    assert row_state() == before and list(RelayLease.objects.values_list()) == leases
    published = set(sink.published)
    assert not OutboxEvent.objects.filter(id__in=published).exclude(status="sent").exists()
    assert published == set(OutboxEvent.objects.filter(status="sent").values_list("id", flat=True))


def test_a_failure_stops_the_replay_with_its_resume_point_and_resuming_leaves_no_gap(sink):
    rows = [r.id for r in history() if r.status == "sent"]
    sink.fail_after = 10

    stopped = manage("replay_outbox", "--all", "--batch-size", "4")

    assert stopped.returncode == 1
    assert f"Replay stopped after 10 of {len(rows)} events" in stopped.stderr
    assert "_TRANSPORT" in stopped.stderr and f"--after-id {rows[9]}" in stopped.stderr
    assert sink.published == rows[:10] and sink.closed

    sink.fail_after = None
    resumed = manage("replay_outbox", "--all", "--batch-size", "4", "--after-id", str(rows[9]))
    assert resumed.returncode == 0, resumed.stderr
    assert sink.published == rows  # each once, in order


@pytest.mark.parametrize(
    "args, says",
    [
        (["--since", "2026-12-01T09:00:00"], "'2026-12-01T09:00:00' has no timezone"),
        (["--until", "yesterday"], "is not an ISO-8601 timestamp"),
        (["--since", at(10), "--until", at(5)], "must be before --until"),
        (["--since", at(10), "--until", at(10)], "must be before --until"),
        ([], "Give --since and/or --until, or --all"),
        (["--topic", "lane-a"], "Give --since and/or --until, or --all"),
        (["--all", "--since", at(1)], "(not both)"),
        (["--all", "--topic", "lane-z"], "--topic 'lane-z': no sent row of the selection has it"),
        (["--all", "--topic", "prod-lane-a"], "sent rows in the time range have: lane-a, lane-b"),
        (["--all", "--topic", "lane a"], "is not a topic name"),
        (["--all", "--event-type", "org.openedx.nope.v1"], "--event-type 'org.openedx.nope.v1': no sent row"),
        (["--since", at(100), "--topic", "lane-a"], "sent rows in the time range have: nothing"),
        (["--all", "--limit", "0"], "--limit must be an integer above 0"),
        (["--all", "--batch-size", "-1"], "--batch-size must be an integer above 0"),
        (["--all", "--after-id", "-1"], "--after-id must be an integer of 0 or more"),
    ],
)
@pytest.mark.django_db  # call_command keeps the connection, so no flush after each case
def test_a_bad_argument_is_refused_with_what_to_do_and_nothing_is_published(sink, args, says):
    history()
    with pytest.raises(CommandError) as refused:  # manage.py prints it and exits 1
        call_command("replay_outbox", *args)
    assert says in str(refused.value)
    assert sink.batches == []


def test_resuming_after_every_row_of_a_topic_is_not_an_unknown_topic(sink):
    rows = [r for r in history() if r.status == "sent"]
    last_b = max(r.id for r in rows if r.topic == "lane-b")
    result = manage("replay_outbox", "--all", "--topic", "lane-b", "--after-id", str(last_b))
    assert result.returncode == 0, result.stderr
    assert sink.published == [] and "Replayed 0 event(s)" in result.stdout


def test_an_empty_selection_is_not_an_error(sink):
    history()
    result = manage("replay_outbox", "--since", at(100))
    assert result.returncode == 0 and "nothing was selected" in result.stdout


def test_a_stop_request_ends_the_replay_after_the_batch_in_flight_with_its_resume_point(sink):
    """What SIGINT and SIGTERM do to ``replay_outbox``: the batch in flight is finished, then it stops."""
    rows = [r.id for r in history() if r.status == "sent"]
    stopping = threading.Event()
    publish = sink.publish
    sink.publish = lambda batch, deadline=None: (stopping.set(), publish(batch, deadline))[1]

    with pytest.raises(ReplayStopped, match=f"interrupted.*--after-id {rows[3]}") as stopped:
        replay_module.replay(replay_module.Selection(everything=True), batch_size=4, stopping=stopping)

    assert sink.published == rows[:4] and stopped.value.resume_after_id == rows[3]
