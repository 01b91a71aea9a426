"""
Benchmark 6, database work per event (PostgreSQL): what one event costs the database from INSERT to purge.

``N`` events go through the four phases of a row's life, each measured on its own:

* write   ``send()``, one event per transaction, NOTIFY trigger on (as installed);
* mark    the relay's ``mark_sent`` UPDATE (``relay.store.mark_sent``, under a held lease), in
          batches of ``EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE``, as the relay calls it after delivery;
* purge   ``purge_sent`` (``purge_outbox``), in batches of ``EVENT_BUS_OUTBOX_PURGE_BATCH_SIZE``;
* vacuum  ``VACUUM`` of the table, standing in for the autovacuum that reclaims the dead rows.

For each phase: WAL bytes per event (``pg_wal_lsn_diff`` of ``pg_current_wal_insert_lsn()``
around it: the insert position, since with ``synchronous_commit=off`` the write position
lags); index entries written per event; index bytes grown; and, for the mark, how many
UPDATEs were HOT (``pg_stat_user_tables.n_tup_hot_upd``).

WAL is cluster-wide: other databases on the same server write too. Nothing else writes to the
bench database (autovacuum is switched off for the table during the run), and right after
each phase an idle interval of the same length is measured the same way; that idle WAL is
reported as the noise and subtracted. Index entries are counted by index definition: an
INSERT adds one entry to every index whose predicate the row satisfies; a non-HOT UPDATE adds
one to every index whose predicate the new version satisfies, a HOT one none; a DELETE none
(VACUUM removes the dead entries). The index bytes grown corroborate the count.
"""

import time

from bench import common
from bench.common import KEY_FIELD, log, median

TABLE = "edx_event_bus_outbox_event"
PHASES = ("write", "mark", "purge", "vacuum")
LANE = "bench-db-work"


def _lsn():
    return common.execute("SELECT pg_current_wal_insert_lsn()", fetch=True)[0][0]


def _wal_since(start):
    """WAL bytes the whole cluster wrote since the LSN ``start``."""
    return float(common.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [start], fetch=True)[0][0])


def _table_counters():
    """Cumulative (inserted, updated, HOT-updated, deleted) tuples of the table, after flushing this backend's stats."""
    from django.db import connection

    connection.close()  # a backend flushes its pending statistics when it exits
    time.sleep(1.0)
    common.execute("SELECT pg_stat_clear_snapshot()")
    return common.execute(
        "SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables WHERE relid = %s::regclass",
        [TABLE],
        fetch=True,
    )[0]


def _indexes():
    """(name, predicate SQL or None) of every index of the table, the primary key and unique constraint included."""
    return common.execute(
        "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass ORDER BY c.relname",
        [TABLE],
        fetch=True,
    )


def _entries_matching(indexes):
    """Index entries the table's live rows need, per index: rows satisfying the index's predicate."""
    return {
        name: common.count(f"SELECT count(*) FROM {TABLE}" + (f" WHERE {predicate}" if predicate else ""))
        for name, predicate in indexes
    }


def _index_bytes(indexes):
    return sum(common.count("SELECT pg_relation_size(%s::regclass)", [name]) for name, _ in indexes)


def _write(events):
    from django.db import transaction

    from edx_event_bus_outbox import create_producer

    producer, sig = create_producer(), common.signal()
    for data in events:
        with transaction.atomic():
            meta = common.metadata()
            producer.send(signal=sig, topic=LANE, event_key_field=KEY_FIELD, event_data=data, event_metadata=meta)


def _mark():
    from edx_event_bus_outbox import conf
    from edx_event_bus_outbox.outbox.models import OutboxEvent
    from edx_event_bus_outbox.relay import leases, store
    from edx_event_bus_outbox.relay.sink import Delivery

    alias, token, batch = conf.database_alias(), leases.new_token(), conf.relay_batch_size()
    if not leases.try_acquire(alias, LANE, token, 600):
        raise RuntimeError(f"could not take the lease of lane {LANE}")
    ids = list(OutboxEvent.objects.using(alias).filter(topic=LANE).order_by("id").values_list("id", flat=True))
    return lambda: [
        store.mark_sent(
            alias,
            [Delivery(row_id, index % 3, index) for index, row_id in enumerate(ids[start : start + batch], start)],
            delete=False,
            lease=leases.held(alias, LANE, token),
        )
        for start in range(0, len(ids), batch)
    ]


def _purge():
    from datetime import timedelta

    from django.utils import timezone

    from edx_event_bus_outbox import conf
    from edx_event_bus_outbox.outbox.retention import purge_sent

    return purge_sent(timezone.now() + timedelta(minutes=1), conf.purge_batch_size())


def _measure(phase, action, indexes, count_):
    """One phase of one round: WAL around ``action``, then idle WAL over the same length (the noise); per event."""
    counters_before, bytes_before = _table_counters(), _index_bytes(indexes)
    start, t0 = _lsn(), time.monotonic()
    action()
    took, wal_bytes = time.monotonic() - t0, _wal_since(start)
    idle_start = _lsn()
    time.sleep(took)
    noise_bytes = _wal_since(idle_start)
    _inserted, updated, hot, _deleted = counters = [
        after - before for after, before in zip(_table_counters(), counters_before, strict=True)
    ]
    entries = _entries_matching(indexes)
    if phase == "write":
        written = entries
    elif phase == "mark":  # a HOT update adds no index entry; a non-HOT one, one per index its new version is in
        written = {name: entries[name] * (updated - hot) / (updated or 1) for name in entries}
    else:  # DELETE and VACUUM add no index entries
        written = {name: 0 for name in entries}
    return {
        "seconds": took,
        "wal_bytes_per_event": wal_bytes / count_,
        "noise_wal_bytes_per_event": noise_bytes / count_,
        "index_entries_by_index": {name: value / count_ for name, value in written.items()},
        "index_bytes_grown_per_event": (_index_bytes(indexes) - bytes_before) / count_,
        "tuples": dict(zip(("inserted", "updated", "hot_updated", "deleted"), counters, strict=True)),
    }


def _round(events, indexes):
    """The four phases, in order, on ``events`` written to an empty table."""
    return {
        "write": _measure("write", lambda: _write(events), indexes, len(events)),
        "mark": _measure("mark", _mark(), indexes, len(events)),
        "purge": _measure("purge", _purge, indexes, len(events)),
        "vacuum": _measure("vacuum", lambda: common.execute(f"VACUUM {TABLE}"), indexes, len(events)),
    }


def _summary(rounds):
    """Per phase: medians over the rounds, and the least WAL of any round (the least disturbed, or the best placed)."""
    out = {}
    for phase in PHASES:
        runs = [r[phase] for r in rounds]
        wal = [r["wal_bytes_per_event"] for r in runs]
        by_index = {
            name: median([r["index_entries_by_index"][name] for r in runs])
            for name in runs[0]["index_entries_by_index"]
        }
        out[phase] = {
            "wal_bytes_per_event": median(wal),
            "wal_bytes_per_event_min": min(wal),
            "noise_wal_bytes_per_event": median([r["noise_wal_bytes_per_event"] for r in runs]),
            "index_entries_per_event": sum(by_index.values()),
            "index_entries_by_index": by_index,
            "index_bytes_grown_per_event": median([r["index_bytes_grown_per_event"] for r in runs]),
            "seconds": median([r["seconds"] for r in runs]),
            "tuples": {key: sum(r["tuples"][key] for r in runs) for key in runs[0]["tuples"]},
        }
    return out


def run(quick=False):
    common.setup_django()
    if common.vendor() != "postgresql":
        raise RuntimeError("the database-work benchmark measures PostgreSQL's WAL; run it with --database postgres")
    rounds, per_round = (5, 400) if quick else (10, 1000)
    log(f"database work: {rounds} rounds x {per_round} events from INSERT to purge")
    common.reset_tables()
    common.execute(f"ALTER TABLE {TABLE} SET (autovacuum_enabled = false)")
    try:
        pool = common.make_event_data(200)
        events = [pool[i % len(pool)] for i in range(per_round)]
        _write(pool[:50])  # warm: imports, serializer caches, the INSERT's plan
        indexes = _indexes()
        settings = dict(
            common.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('full_page_writes', 'wal_compression', 'wal_level', 'checkpoint_timeout')",
                fetch=True,
            )
        )
        measured = []
        for number in range(rounds):
            common.reset_tables()
            common.vacuum_analyze()
            measured.append(_round(events, indexes))
            log(
                f"  round {number + 1}/{rounds}: WAL B/event "
                + ", ".join(f"{phase} {measured[-1][phase]['wal_bytes_per_event']:.0f}" for phase in PHASES)
                + f" (idle during write {measured[-1]['write']['noise_wal_bytes_per_event']:.0f})"
            )
    finally:
        common.execute(f"ALTER TABLE {TABLE} RESET (autovacuum_enabled)")
    phases = _summary(measured)
    return {
        "name": "db_work",
        "rounds": rounds,
        "events_per_round": per_round,
        "indexes": [name for name, _ in indexes],
        "pg_settings": settings,
        "phases": phases,
        "per_round_wal_bytes_per_event": {
            phase: [r[phase]["wal_bytes_per_event"] for r in measured] for phase in PHASES
        },
        "total_wal_bytes_per_event": sum(p["wal_bytes_per_event"] for p in phases.values()),
        "total_index_entries_per_event": sum(p["index_entries_per_event"] for p in phases.values()),
    }


def report(result):
    p, s = result["phases"], result["pg_settings"]
    mark = p["mark"]["tuples"]
    lines = [
        f"6. DATABASE WORK PER EVENT (PostgreSQL): {result['rounds']} rounds x {result['events_per_round']} "
        f"events from INSERT to purge; full_page_writes={s.get('full_page_writes')}, "
        f"wal_compression={s.get('wal_compression')}",
        f"   {'phase':<8} {'WAL B/event':>12} {'(least)':>9} {'(idle)':>7} {'index entries':>14}"
        f" {'index B grown':>14} {'s/round':>8}",
    ]
    for name in PHASES:
        ph = p[name]
        lines.append(
            f"   {name:<8} {ph['wal_bytes_per_event']:12.0f} {ph['wal_bytes_per_event_min']:9.0f}"
            f" {ph['noise_wal_bytes_per_event']:7.0f} {ph['index_entries_per_event']:14.2f}"
            f" {ph['index_bytes_grown_per_event']:14.1f} {ph['seconds']:8.1f}"
        )
    lines += [
        f"   total    {result['total_wal_bytes_per_event']:12.0f} {'':9} {'':7}"
        f" {result['total_index_entries_per_event']:14.2f}",
        f"   mark: {mark['updated']} UPDATEs, {mark['hot_updated']} HOT"
        f" ({'HOT' if mark['updated'] and mark['hot_updated'] == mark['updated'] else 'not HOT'});"
        " index entries by index, write / mark: "
        + ", ".join(
            f"{name} {p['write']['index_entries_by_index'][name]:.0f}/{p['mark']['index_entries_by_index'][name]:.0f}"
            for name in result["indexes"]
        ),
        "   WAL B/event: the whole server's WAL around the phase (other databases write), median and least over the"
        " rounds, and the idle WAL of an equal interval right after (the noise)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    common.main(run, report, __doc__.splitlines()[1])
