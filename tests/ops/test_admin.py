"""
The admin's permission boundaries, through Django's test client with real users and permissions.

Every user is staff with ``view_outboxevent`` (or it could not open the pages at all) plus the
permissions a test names; superusers show what even full rights cannot do.
"""
import uuid
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from edx_event_bus_outbox.models import ConsumerInboxEntry, OutboxEvent, RelayLease
from tests.ops.rows import PII_MARKER, make_row

pytestmark = pytest.mark.django_db

VIEW = "view_outboxevent"
PAYLOAD = "view_outboxevent_payload"
REQUEUE = "requeue_outboxevent"
DELETE = "delete_outboxevent"
CHANGELIST = reverse("admin:edx_event_bus_outbox_outboxevent_changelist")


def login(client, *codenames, superuser=False):
    user = User.objects.create_user(f"user-{uuid.uuid4().hex[:8]}", password="unused", is_staff=True,
                                    is_superuser=superuser)
    permissions = Permission.objects.filter(content_type__app_label="edx_event_bus_outbox", codename__in=codenames)
    assert permissions.count() == len(codenames), "a permission named by the test does not exist"
    user.user_permissions.add(*permissions)
    client.force_login(user)
    return user


def change_url(model, pk):
    return reverse(f"admin:edx_event_bus_outbox_{model}_change", args=[pk])


def listed(response):
    return list(response.context["cl"].result_list)


def offered_actions(client):
    form = client.get(CHANGELIST).context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


def run_action(client, action, rows, **extra):
    return client.post(CHANGELIST, {"action": action, "index": "0", ACTION_CHECKBOX_NAME: [r.id for r in rows],
                                    **extra}, follow=True)


def page_messages(response):
    return " ".join(str(message) for message in response.context["messages"])


# ---------------------------------------------------------------- payload visibility

@pytest.mark.parametrize("codenames, visible", [((VIEW,), False), ((VIEW, PAYLOAD), True)])
def test_changelist_shows_payloads_only_with_the_payload_permission(client, codenames, visible):
    make_row()
    login(client, *codenames)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert len(listed(response)) == 1
    assert (PII_MARKER in response.content.decode()) is visible


@pytest.mark.parametrize("codenames, visible", [((VIEW,), False), ((VIEW, PAYLOAD), True)])
def test_change_view_shows_the_payload_only_with_the_payload_permission(client, codenames, visible):
    row = make_row()
    login(client, *codenames)
    page = client.get(change_url("outboxevent", row.id)).content.decode()
    assert str(row.event_id) in page and "user.id" in page  # the rest of the row is there either way
    assert (PII_MARKER in page) is visible


@pytest.mark.parametrize("codenames, visible", [((VIEW,), False), ((VIEW, PAYLOAD), True)])
def test_change_view_shows_the_last_error_only_with_the_payload_permission(client, codenames, visible):
    """An Avro error can quote the value that did not fit, so the error text is as private as the payload."""
    row = make_row(status="dead", attempts=5, last_error=f"ValueError: {PII_MARKER!r} is not a valid enum symbol")
    login(client, *codenames)
    page = client.get(change_url("outboxevent", row.id)).content.decode()
    assert "Dead" in page and "attempts" in page.lower()
    assert ("not a valid enum symbol" in page) is visible
    assert (PII_MARKER in page) is visible


# ---------------------------------------------------------------- actions

@pytest.mark.parametrize("codenames, expected", [
    ((VIEW,), set()),
    ((VIEW, REQUEUE), {"requeue_dead_rows"}),
    ((VIEW, DELETE), {"delete_selected"}),
    ((VIEW, REQUEUE, DELETE), {"requeue_dead_rows", "delete_selected"}),
])
def test_actions_are_offered_only_with_their_permissions(client, codenames, expected):
    make_row()
    login(client, *codenames)
    assert offered_actions(client) == expected


def test_requeue_action_puts_selected_dead_rows_back_to_pending(client):
    selected = make_row(status="dead", attempts=5, last_error="boom")
    not_selected = make_row(status="dead", attempts=5)
    sent = make_row(status="sent")
    login(client, VIEW, REQUEUE)

    response = run_action(client, "requeue_dead_rows", [selected, sent])

    assert "1 dead row(s) requeued" in page_messages(response)
    assert "1 selected row(s) were not dead" in page_messages(response)
    selected.refresh_from_db()
    assert (selected.status, selected.attempts, selected.last_error) == ("pending", 0, "boom")
    assert OutboxEvent.objects.get(id=not_selected.id).status == "dead"
    assert OutboxEvent.objects.get(id=sent.id).status == "sent"


def test_requeue_action_cannot_be_posted_without_the_permission(client):
    dead = make_row(status="dead", attempts=5)
    login(client, VIEW, DELETE)  # some action is offered, so Django does process action posts

    response = run_action(client, "requeue_dead_rows", [dead])

    assert "No action selected" in page_messages(response)
    assert OutboxEvent.objects.get(id=dead.id).status == "dead"


def test_delete_action_deletes_selected_rows_after_confirmation(client):
    doomed, kept = make_row(status="dead"), make_row(status="dead")
    login(client, VIEW, DELETE)

    confirmation = run_action(client, "delete_selected", [doomed])
    assert "Are you sure" in confirmation.content.decode()
    assert PII_MARKER not in confirmation.content.decode()
    run_action(client, "delete_selected", [doomed], post="yes")

    assert list(OutboxEvent.objects.values_list("id", flat=True)) == [kept.id]


def test_delete_action_cannot_be_posted_without_the_permission(client):
    row = make_row(status="dead")
    login(client, VIEW, REQUEUE)

    response = run_action(client, "delete_selected", [row], post="yes")

    assert "No action selected" in page_messages(response)
    assert OutboxEvent.objects.filter(id=row.id).exists()
    assert client.post(reverse("admin:edx_event_bus_outbox_outboxevent_delete", args=[row.id]),
                       {"post": "yes"}).status_code == 403
    assert OutboxEvent.objects.filter(id=row.id).exists()


# ---------------------------------------------------------------- rows are the producer's

def test_nobody_can_add_or_edit_outbox_rows(client):
    row = make_row(status="dead")
    login(client, superuser=True)

    assert client.get(reverse("admin:edx_event_bus_outbox_outboxevent_add")).status_code == 403
    assert client.post(change_url("outboxevent", row.id), {"status": "pending", "topic": "x"}).status_code == 403
    page = client.get(change_url("outboxevent", row.id)).content.decode()
    assert 'name="_save"' not in page  # a read-only page, with no form to submit
    row.refresh_from_db()
    assert (row.status, row.topic, OutboxEvent.objects.count()) == ("dead", "lane-a", 1)


# ---------------------------------------------------------------- search and filters

def test_search_matches_one_complete_event_id_only(client):
    wanted, other = make_row(), make_row()
    login(client, VIEW, PAYLOAD)

    assert listed(client.get(CHANGELIST, {"q": str(wanted.event_id)})) == [wanted]
    assert listed(client.get(CHANGELIST, {"q": wanted.event_id.hex.upper()})) == [wanted]  # any UUID spelling
    assert listed(client.get(CHANGELIST, {"q": str(other.event_id)[:8]})) == []  # no partial matches


@pytest.mark.parametrize("term", ["not-a-uuid", PII_MARKER])
def test_search_for_anything_but_an_event_id_finds_nothing_and_says_why(client, term):
    make_row()
    login(client, VIEW, PAYLOAD)
    response = client.get(CHANGELIST, {"q": term}, follow=True)
    assert response.status_code == 200
    assert listed(response) == []  # in particular, payloads (PII) are not searchable
    assert "is not an event id" in page_messages(response)


def test_filters_by_status_topic_event_type_and_created_date(client):
    wanted = make_row(topic="lane-b", status="dead", event_type="org.openedx.wanted.v1")
    make_row(topic="lane-b", status="pending", event_type="org.openedx.wanted.v1")
    make_row(topic="lane-a", status="dead", event_type="org.openedx.wanted.v1")
    make_row(topic="lane-b", status="dead", event_type="org.openedx.other.v1")
    old = make_row(topic="lane-b", status="dead", event_type="org.openedx.wanted.v1")
    OutboxEvent.objects.filter(id=old.id).update(created=timezone.now() - timedelta(days=30))
    login(client, VIEW)

    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = client.get(CHANGELIST, {"status__exact": "dead", "topic": "lane-b",
                                       "event_type": "org.openedx.wanted.v1", "created__gte": since})

    assert listed(response) == [wanted]
    titles = {spec.title for spec in response.context["cl"].filter_specs}
    assert {"status", "topic", "event type", "created"} <= titles


# ---------------------------------------------------------------- leases and the consumer inbox

def test_relay_leases_are_listed_read_only_without_their_token(client):
    RelayLease.objects.create(lane="lane-a", token="secret-token", holder="relay-host:42",
                              expires_at=timezone.now() + timedelta(seconds=30))
    login(client, superuser=True)

    listing = client.get(reverse("admin:edx_event_bus_outbox_relaylease_changelist"))
    assert "relay-host:42" in listing.content.decode()
    assert listing.context["action_form"] is None  # no delete action, even for a superuser
    assert "secret-token" not in client.get(change_url("relaylease", "lane-a")).content.decode()
    assert client.get(reverse("admin:edx_event_bus_outbox_relaylease_add")).status_code == 403
    assert client.post(change_url("relaylease", "lane-a"), {"holder": "me"}).status_code == 403
    assert RelayLease.objects.get(lane="lane-a").holder == "relay-host:42"


def test_consumer_inbox_is_listed_read_only_and_searchable_by_event_id(client):
    entries = [ConsumerInboxEntry.objects.create(group_id="group", event_id=uuid.uuid4(), receiver=f"app.r{n}",
                                                 processed_at=timezone.now()) for n in range(2)]
    login(client, superuser=True)
    url = reverse("admin:edx_event_bus_outbox_consumerinboxentry_changelist")

    assert listed(client.get(url, {"q": str(entries[1].event_id)})) == [entries[1]]
    assert client.get(url).context["action_form"] is None
    assert client.get(reverse("admin:edx_event_bus_outbox_consumerinboxentry_add")).status_code == 403
    assert client.post(change_url("consumerinboxentry", entries[0].id), {"receiver": "x"}).status_code == 403
