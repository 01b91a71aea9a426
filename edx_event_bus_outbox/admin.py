"""
Django admin for the outbox, the relay's leases and the consumer inbox.

Rows are written by the producer, the relay and the consumer only, so no page here adds or
edits one. Payloads may hold PII: they, and the relay's last error text (an Avro error can
quote the value that did not fit), are shown only to users with the
``view_outboxevent_payload`` permission, and no URL can filter, search or sort by them (nor
by anything else a page hides). Requeueing dead rows and deleting rows each need their own
permission. Filters list their choices without reading the whole table. See docs/admin.rst.
"""

import json
import logging
import uuid

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.utils import timezone
from django.utils.html import format_html

from . import conf
from .consumer.models import ConsumerInboxEntry
from .outbox.lanes import parse_lane
from .outbox.models import OutboxEvent
from .outbox.requeue import requeue
from .relay import store
from .relay.models import RelayLease

logger = logging.getLogger(__name__)

PAYLOAD_PERMISSION = "edx_event_bus_outbox.view_outboxevent_payload"
REQUEUE_PERMISSION = "edx_event_bus_outbox.requeue_outboxevent"
PAYLOAD_PREVIEW_CHARS = 80


class ViewOnlyAdmin(admin.ModelAdmin):
    """No adding, no editing; rows are read from ``EVENT_BUS_OUTBOX_DATABASE``, where they live."""

    show_full_result_count = False  # one COUNT(*) per page is enough on a large table
    if hasattr(admin, "ShowFacets"):  # Django 5.0+: ?_facets counts every filter choice over the table
        show_facets = admin.ShowFacets.NEVER

    def get_queryset(self, request):
        return super().get_queryset(request).using(conf.database_alias())

    # Django 4.2 has no request; 5.x passes it
    def lookup_allowed(self, lookup, value, request=None):
        """
        Only the parameters of the page's own filters. Django would otherwise apply any
        ``field__lookup=value`` in the query string, and the row count would answer questions
        about what the page hides, one character at a time
        (``?payload__user__email__startswith=a``, ``?last_error__contains=``, a lease's token).
        """
        if not is_filter_parameter(self.list_filter, lookup):
            return False
        return super().lookup_allowed(lookup, value, *([request] if request is not None else []))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EventIdSearchMixin:
    """Search by one complete event id: an indexed exact match, never a scan of the table."""

    search_fields = ("=event_id",)  # shows the search box; the lookup itself is below
    search_help_text = "One complete event id (a UUID, the ce_id header)."

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            event_id = uuid.UUID(term)
        except ValueError:
            messages.warning(request, f"{term!r} is not an event id: search takes one complete UUID.")
            return queryset.none(), False
        return queryset.filter(event_id=event_id), False


class KnownValuesFilter(admin.SimpleListFilter):
    """
    Filter on one column, listing values known without a ``SELECT DISTINCT`` over the table,
    which reads every row on each page view. A value given in the URL is listed too.
    Subclasses say where the values come from: ``known_values(request)``.
    """

    def lookups(self, request, model_admin):
        values = set(self.known_values(request)) | ({self.value()} if self.value() else set())
        return [(value, value) for value in sorted(values)]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.parameter_name: self.value()}) if self.value() else queryset


class TopicFilter(KnownValuesFilter):
    """The topics of the lanes a relay has held (lease rows outlive their leases) and of lanes with pending rows."""

    title = parameter_name = "topic"

    def known_values(self, request):
        alias = conf.database_alias()
        lanes = [*RelayLease.objects.using(alias).values_list("lane", flat=True), *store.pending_lanes(alias)]
        return {parse_lane(lane).topic for lane in lanes}


class EventTypeFilter(KnownValuesFilter):
    """The event types this service produces (``EVENT_BUS_PRODUCER_CONFIG``)."""

    title, parameter_name = "event type", "event_type"

    def known_values(self, request):
        return conf.producer_config()


class ConsumerGroupFilter(KnownValuesFilter):
    """The groups in the inbox, one seek each in its unique index (group_id, event_id, receiver)."""

    title, parameter_name = "group id", "group_id"

    def known_values(self, request):
        entries = ConsumerInboxEntry.objects.using(conf.database_alias()).order_by("group_id")
        groups = []
        while (
            group := entries.filter(**({"group_id__gt": groups[-1]} if groups else {}))
            .values_list("group_id", flat=True)
            .first()
        ) is not None:
            groups.append(group)
        return groups


@admin.register(OutboxEvent)
class OutboxEventAdmin(EventIdSearchMixin, ViewOnlyAdmin):
    """Outbox rows; deleting needs ``delete_outboxevent``, which Django's delete action checks."""

    list_display = ("id", "event_id", "event_type", "topic", "status", "attempts", "created", "sent_at")
    list_filter = ("status", TopicFilter, EventTypeFilter, "created")
    ordering = ("-id",)
    actions = ("requeue_dead_rows",)
    EVENT_FIELDS = (
        "event_id",
        "event_type",
        "topic",
        "event_key_field",
        "event_key",
        "event_time",
        "minorversion",
        "source",
        "sourcehost",
        "sourcelib",
    )
    RELAY_FIELDS = ("status", "attempts", "next_attempt_at", "created", "sent_at", "partition", "offset")

    def get_list_display(self, request):
        if can_view_payload(request):
            return (*self.list_display, "payload_preview")
        return self.list_display

    def get_fieldsets(self, request, obj=None):
        fieldsets = [("Event", {"fields": self.EVENT_FIELDS})]
        if can_view_payload(request):
            fieldsets.append(("Payload (may contain PII)", {"fields": ("payload_json",)}))
            fieldsets.append(("Relay", {"fields": (*self.RELAY_FIELDS, "last_error")}))
        else:
            fieldsets.append(("Relay", {"fields": self.RELAY_FIELDS}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return flatten_fieldsets(self.get_fieldsets(request, obj))

    @admin.display(description="payload")
    def payload_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    @admin.display(description="payload")
    def payload_preview(self, obj):
        text = json.dumps(obj.payload, sort_keys=True)
        return text if len(text) <= PAYLOAD_PREVIEW_CHARS else text[: PAYLOAD_PREVIEW_CHARS - 1] + "…"

    @admin.action(description="Requeue selected dead rows", permissions=["requeue"])
    def requeue_dead_rows(self, request, queryset):
        selected = queryset.count()
        count = requeue(queryset)
        logger.info("Outbox admin: %s dead row(s) requeued by user %s", count, request.user.get_username())
        skipped = f" {selected - count} selected row(s) were not dead and were left alone." if selected > count else ""
        self.message_user(
            request, f"{count} dead row(s) requeued; the relay will publish them.{skipped}", messages.SUCCESS
        )

    def has_requeue_permission(self, request):
        return request.user.has_perm(REQUEUE_PERMISSION)


@admin.register(RelayLease)
class RelayLeaseAdmin(ViewOnlyAdmin):
    """Which relay holds which lane. The fencing token is internal and not shown."""

    list_display = ("lane", "holder", "held", "expires_at", "last_sent_at")
    fields = ("lane", "holder", "expires_at", "last_sent_at")
    ordering = ("lane",)

    @admin.display(boolean=True, description="held")
    def held(self, lease):
        return lease.expires_at is not None and lease.expires_at > timezone.now()

    def has_delete_permission(self, request, obj=None):
        return False  # leases belong to the relays, which create, renew and release them


@admin.register(ConsumerInboxEntry)
class ConsumerInboxEntryAdmin(EventIdSearchMixin, ViewOnlyAdmin):
    """Receivers that already handled an event (``EVENT_BUS_OUTBOX_CONSUMER_DEDUPLICATE``)."""

    list_display = ("event_id", "group_id", "receiver", "processed_at")
    list_filter = (ConsumerGroupFilter, "processed_at")
    ordering = ("-processed_at",)

    def has_delete_permission(self, request, obj=None):
        return False  # purge_consumer_inbox removes old rows


def can_view_payload(request) -> bool:
    return request.user.has_perm(PAYLOAD_PERMISSION)


def is_filter_parameter(list_filter, lookup) -> bool:
    """Whether ``lookup`` is a query-string parameter of one of these list filters."""
    for item in list_filter:
        if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
            if lookup == item.parameter_name:
                return True
        else:
            field = item[0] if isinstance(item, (list, tuple)) else item
            if lookup == field or lookup.startswith(f"{field}__"):
                return True
    return False
