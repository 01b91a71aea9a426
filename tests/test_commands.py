"""outbox_status, requeue_outbox and purge_outbox: output and exit codes (no Kafka needed)."""

import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from edx_event_bus_outbox.models import OutboxEvent, RelayLease
from tests.outbox_tools import manage

pytestmark = pytest.mark.django_db(transaction=True)


def make_row(topic="lane-a", status="pending", **fields):
    now = timezone.now()
    return OutboxEvent.objects.create(
        event_id=uuid.uuid4(),
        event_type="org.openedx.test.v1",
        topic=topic,
        event_key_field="k",
        event_key="k",
        payload={"email": "learner@example.com"},
        event_time=now,
        source="s",
        sourcehost="h",
        sourcelib="1.0.0",
        status=status,
        **fields,
    )


def run(*args):
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_status_reports_each_lane():
    old = make_row("lane-a")
    OutboxEvent.objects.filter(id=old.id).update(created=timezone.now() - timedelta(seconds=90))
    make_row("lane-a")
    make_row("lane-b", status="dead")
    RelayLease.objects.create(
        lane="lane-a", token="t", holder="host:42", expires_at=timezone.now() + timedelta(seconds=30)
    )

    report = json.loads(run("outbox_status", "--json"))
    lanes = {lane["lane"]: lane for lane in report["lanes"]}
    assert lanes["lane-a"]["pending"] == 2 and lanes["lane-a"]["dead"] == 0
    assert 89 <= lanes["lane-a"]["oldest_pending_age_seconds"] < 120
    assert lanes["lane-a"]["lease_holder"] == "host:42"
    assert lanes["lane-b"] == {**lanes["lane-b"], "pending": 0, "dead": 1, "lease_holder": ""}
    table = run("outbox_status")
    assert "lane-a" in table and "host:42" in table and "learner@example.com" not in table


@pytest.mark.parametrize(
    "rows, expected_exit, expected_text",
    [
        ([], 0, "empty"),
        ([("pending", 10)], 0, "lane-a"),
        ([("pending", 3600)], 1, "oldest pending event is"),
        ([("dead", 0)], 1, "1 dead event(s)"),
    ],
)
def test_status_check_exit_code_follows_thresholds(rows, expected_exit, expected_text):
    for status, age in rows:
        row = make_row(status=status)
        OutboxEvent.objects.filter(id=row.id).update(created=timezone.now() - timedelta(seconds=age))
    result = manage("outbox_status", "--check")  # the exit status as a shell sees it; a child process costs a second
    assert result.returncode == expected_exit, result.stderr
    assert expected_text in result.stdout + result.stderr


def test_requeue_selects_dead_rows_by_id_type_topic_or_all():
    dead = [make_row("lane-a", "dead", attempts=5, last_error="boom") for _ in range(2)]
    other = make_row("lane-b", "dead", attempts=5)
    pending = make_row("lane-a")

    assert "1 dead outbox row(s) requeued" in run("requeue_outbox", "--id", str(dead[0].id))
    dead[0].refresh_from_db()
    assert dead[0].status == "pending" and dead[0].attempts == 0 and dead[0].last_error == "boom"
    assert "1 dead outbox row(s) would be requeued" in run("requeue_outbox", "--topic", "lane-a", "--dry-run")
    assert OutboxEvent.objects.get(id=dead[1].id).status == "dead"
    assert "1 dead outbox row(s) requeued" in run("requeue_outbox", "--topic", "lane-b")
    assert OutboxEvent.objects.get(id=other.id).status == "pending"
    assert "1 dead outbox row(s) requeued" in run("requeue_outbox", "--all")  # dead[1], the last one
    make_row("lane-c", "dead")
    assert "1 dead outbox row(s) requeued" in run("requeue_outbox", "--event-type", "org.openedx.test.v1")
    assert OutboxEvent.objects.get(id=pending.id).status == "pending"
    assert not OutboxEvent.objects.filter(status="dead").exists()


def test_requeue_without_a_selection_is_refused():
    with pytest.raises(CommandError, match="--id, --event-type, --topic, or --all"):
        run("requeue_outbox")


def test_purge_deletes_only_old_sent_rows_in_batches():
    old_sent = [make_row(status="sent", sent_at=timezone.now() - timedelta(days=10)) for _ in range(5)]
    new_sent = make_row(status="sent", sent_at=timezone.now() - timedelta(days=1))
    old_dead = make_row(status="dead")
    old_pending = make_row()
    OutboxEvent.objects.filter(id__in=[old_dead.id, old_pending.id]).update(created=timezone.now() - timedelta(days=30))

    output = run("purge_outbox", "--batch-size", "2", "--verbosity", "2")
    assert "Purged 5 sent outbox row(s)" in output
    assert output.count("removed so far") == 3  # 2 + 2 + 1
    assert set(OutboxEvent.objects.values_list("id", flat=True)) == {new_sent.id, old_dead.id, old_pending.id}
    assert not OutboxEvent.objects.filter(id__in=[row.id for row in old_sent]).exists()


def test_purge_rejects_nonsense():
    with pytest.raises(CommandError, match="--days must be >= 0"):
        run("purge_outbox", "--days", "-1")
