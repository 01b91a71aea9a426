"""Per-lane health of the outbox: backlog, age, dead and held rows, lease. Used by ``outbox_status`` and the admin."""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.db.models import Count, Min, Q
from django.utils import timezone

from .. import conf
from ..relay.models import RelayLease
from .lanes import Lane
from .models import OutboxEvent


@dataclass
class LaneStatus:
    lane: str
    pending: int
    oldest_pending_age_seconds: float | None
    dead: int
    held: int
    lease_holder: str
    lease_expires_at: datetime | None
    last_sent_at: datetime | None

    def as_json(self):
        data = asdict(self)
        for name in ("lease_expires_at", "last_sent_at"):
            data[name] = data[name].isoformat() if data[name] else None
        return data


def lane_statuses(alias=None) -> list:
    """One ``LaneStatus`` per lane that has pending, dead or held rows or a lease."""
    alias = alias or conf.database_alias()
    now = timezone.now()
    counts = {
        Lane(row["topic"], row["lane_count"], row["lane_index"]).name: row
        for row in OutboxEvent.objects.using(alias)
        .filter(status__in=[OutboxEvent.STATUS.pending, OutboxEvent.STATUS.dead, OutboxEvent.STATUS.held])
        .values("topic", "lane_count", "lane_index")
        .annotate(
            pending=Count("id", filter=Q(status=OutboxEvent.STATUS.pending)),
            dead=Count("id", filter=Q(status=OutboxEvent.STATUS.dead)),
            held=Count("id", filter=Q(status=OutboxEvent.STATUS.held)),
            oldest=Min("created", filter=Q(status=OutboxEvent.STATUS.pending)),
        )
    }
    leases = {lease.lane: lease for lease in RelayLease.objects.using(alias).all()}
    statuses = []
    for lane in sorted(set(counts) | set(leases)):
        row, lease = counts.get(lane, {}), leases.get(lane)
        held = lease is not None and lease.expires_at is not None and lease.expires_at > now
        statuses.append(
            LaneStatus(
                lane=lane,
                pending=row.get("pending", 0),
                oldest_pending_age_seconds=(now - row["oldest"]).total_seconds() if row.get("oldest") else None,
                dead=row.get("dead", 0),
                held=row.get("held", 0),
                lease_holder=lease.holder if held else "",
                lease_expires_at=lease.expires_at if held else None,
                last_sent_at=lease.last_sent_at if lease else None,
            )
        )
    return statuses


def problems(statuses, max_pending_age=None, max_dead=None) -> list:
    """Threshold breaches, as sentences for an operator; empty when healthy."""
    max_pending_age = conf.status_max_pending_age() if max_pending_age is None else max_pending_age
    max_dead = conf.status_max_dead() if max_dead is None else max_dead
    found = [
        f"lane {s.lane!r}: oldest pending event is {s.oldest_pending_age_seconds:.0f}s old "
        f"(limit {max_pending_age:.0f}s)"
        for s in statuses
        if s.oldest_pending_age_seconds is not None and s.oldest_pending_age_seconds > max_pending_age
    ]
    dead = sum(s.dead for s in statuses)
    if dead > max_dead:
        found.append(f"{dead} dead event(s) (limit {max_dead}); see `requeue_outbox`")
    found += [
        f"lane {s.lane!r}: {s.held} event(s) held behind dead events of their key; fix the dead events' "
        f"cause and requeue them (see docs/operations.rst)"
        for s in statuses
        if s.held
    ]
    return found
