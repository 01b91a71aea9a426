"""
Benchmark 1, the write path: what one event costs the request that emits it.

Side by side, interleaved in every repetition (the order rotates), one event per transaction:

* ours            ``with atomic(): OutboxEventProducer.send()`` then COMMIT, with the wake-up
                  trigger as installed and no relay waiting (a busy relay), so it sends no
                  NOTIFY (ADR 24); a separate process LISTENs, as a relay would;
* ours, no NOTIFY the same with ``ALTER TABLE ... DISABLE TRIGGER``, to show what the trigger costs;
* (a) edx send    edx-event-bus-kafka's ``KafkaEventProducer.send()`` (``create_producer()``)
                  against the real broker and registry, caches warm. It serializes, produces
                  into librdkafka's queue and calls ``poll(0)``, as it always does; it does not
                  wait for the broker. ``flush()`` is not included; what it adds is reported apart;
* (b) plain ORM   ``with atomic(): PlainRow.objects.create(...)`` then COMMIT: a row with the
                  same columns and values (payload already serialized), primary key only.

and, to isolate what our ``send()`` adds to a transaction that writes anyway (the usual case:
the event describes a change the request commits):

* plain + ours    ``with atomic(): PlainRow.objects.create(...); send()`` then COMMIT; the
                  difference from (b) is our marginal cost; on PostgreSQL also with the trigger
                  disabled, and with a relay waiting, whose commit sends the NOTIFY (waking);
* plain + edx     the same with edx-event-bus-kafka's ``send()``: its cost where an event is
                  really emitted, right after the request's own database round trip. Timed
                  there, it is about twice its cost in a tight loop of sends (a) on these
                  machines, so both are reported.

and the floor under it (issue 15): one database round trip (``SELECT 1``), and the parts of
the marginal ``send()`` timed one after the other in such a transaction (``ours_parts``):
serialization (``to_dict``), validation (Avro, key, storable content, size, metadata), the
INSERT's parameters, and the statement. "Work we add" is the marginal ``send()`` minus one
round trip; it is compared with edx-event-bus-kafka's ``send()``.

``BENCH_DB`` (``bench.run --database``) selects PostgreSQL (default), MariaDB or SQLite. The
wake-up trigger and its LISTEN process exist on PostgreSQL only, so the trigger variants run
there only.

Each variant times every event with ``perf_counter_ns``; a repetition's figure is the median
per event; the reported figure is the median over repetitions, and ratios are computed per
repetition (paired) and then their median is taken.
"""

import subprocess
import sys
import time

from bench import common
from bench.common import KEY_FIELD, log, median

TRIGGER = "edx_event_bus_outbox_notify"
WAITING_RELAY = "bench-waiting-relay"
PARTS = ("serialization", "validation", "parameters", "statement")
TABLE = "edx_event_bus_outbox_event"

LISTENER = """
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.execute("LISTEN edx_event_bus_outbox")
print("listening", flush=True)
count = 0
for _ in conn.notifies():
    count += 1
"""


class Variants:
    """The timed loops; each returns per-event nanoseconds (and keeps side figures in ``extra``)."""

    def __init__(self, topic):

        import edx_event_bus_kafka
        from django.db import transaction

        from bench.models import PlainRow
        from edx_event_bus_outbox import create_producer
        from edx_event_bus_outbox.kafka.avro_dict import to_avro_dict
        from edx_event_bus_outbox.kafka.schemas import extract_event_key

        self.topic = topic
        self.signal = common.signal()
        self.ours = create_producer()
        self.edx = edx_event_bus_kafka.create_producer()
        self.atomic = transaction.atomic
        self.PlainRow = PlainRow
        self.to_dict = lambda data: to_avro_dict(self.signal, data)
        self.extract_key = extract_event_key
        self.edx_sent = 0
        self.flush_ns = []

    def plain_fields(self, data, meta):
        """The row our ``send()`` would store, computed outside the timed region."""
        payload = self.to_dict(data)
        return dict(
            event_id=meta.id,
            event_type=meta.event_type,
            topic=self.topic,
            event_key_field=KEY_FIELD,
            event_key=self.extract_key(payload, KEY_FIELD),
            payload=payload,
            event_time=meta.time,
            minorversion=meta.minorversion,
            source=meta.source,
            sourcehost=meta.sourcehost,
            sourcelib=".".join(map(str, meta.sourcelib)),
        )

    def ours_loop(self, events):
        send, atomic, sig, topic = self.ours.send, self.atomic, self.signal, self.topic
        clock = time.perf_counter_ns
        totals, in_send = [], []
        for data, meta, _ in events:
            t0 = clock()
            with atomic():
                t1 = clock()
                send(signal=sig, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=meta)
                t2 = clock()
            t3 = clock()
            totals.append(t3 - t0)
            in_send.append(t2 - t1)
        return totals, in_send

    def statements_per_send(self, events):
        """Statements our ``send()`` executes per event inside a transaction (each one a round trip)."""
        from django.db import connection

        executed = []

        def count(execute, sql, params, many, context):
            executed.append(sql)
            return execute(sql, params, many, context)

        send, sig, topic = self.ours.send, self.signal, self.topic
        with self.atomic():
            with connection.execute_wrapper(count):
                for data, meta, _ in events:
                    send(signal=sig, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=meta)
        return len(executed) / len(events)

    def edx_loop(self, events):
        send, sig, topic = self.edx.send, self.signal, self.topic
        clock = time.perf_counter_ns
        totals = []
        for data, meta, _ in events:
            t0 = clock()
            send(signal=sig, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=meta)
            totals.append(clock() - t0)
        self.edx_sent += len(events)
        t0 = clock()
        self.edx.producer.flush(30)
        self.flush_ns.append(clock() - t0)
        return totals

    def serialize_loop(self, events):
        """The CPU part of our ``send()``: ``to_dict``, key extraction, Avro validation, storable-content and size
        checks and the JSON text to store; no database."""
        from edx_event_bus_outbox.outbox.producer import serialize_event

        sig, topic = self.signal, self.topic
        clock = time.perf_counter_ns
        totals = []
        for data, meta, _ in events:
            t0 = clock()
            serialize_event(sig, topic, KEY_FIELD, data, meta)
            totals.append(clock() - t0)
        return totals

    def parts_loop(self, events):
        """The marginal ``send()`` taken apart, in a transaction that already wrote a row: µs lists per part."""
        from django.db import connection

        from edx_event_bus_outbox.kafka.avro_dict import to_avro_dict
        from edx_event_bus_outbox.kafka.headers import dotted_version, headers_from_metadata
        from edx_event_bus_outbox.outbox import insert, validation
        from edx_event_bus_outbox.outbox.lanes import lane_columns

        create, atomic = self.PlainRow.objects.create, self.atomic
        sig, topic = self.signal, self.topic
        guarded = connection.vendor == "postgresql"  # as insert_event does inside a transaction
        clock = time.perf_counter_ns
        parts = {name: [] for name in PARTS}
        for data, meta, fields in events:
            with atomic():
                create(**fields)
                t0 = clock()
                payload = to_avro_dict(sig, data)
                t1 = clock()
                validation.payload_problem(sig, payload)
                key = self.extract_key(payload, KEY_FIELD)
                validation.key_problem(sig, KEY_FIELD, key)
                text, _ = validation.payload_json(payload)
                headers = lambda meta=meta: headers_from_metadata(meta)  # noqa: E731
                validation.size_problem(sig, KEY_FIELD, payload, key, text, headers)
                row = {
                    "event_id": meta.id,
                    "event_type": meta.event_type,
                    "topic": topic,
                    "event_key_field": KEY_FIELD,
                    "event_key": key,
                    "event_time": meta.time,
                    "minorversion": meta.minorversion,
                    "source": meta.source,
                    "sourcehost": meta.sourcehost,
                    "sourcelib": dotted_version(meta.sourcelib),
                }
                row.update(lane_columns(topic, key))
                validation.metadata_problem(row)
                t2 = clock()
                params = insert.parameters(connection, text, row)
                t3 = clock()
                with connection.cursor() as cursor:
                    insert.execute(cursor, connection, guarded, params)
                t4 = clock()
            for name, ns in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                parts[name].append(ns)
        return [sum(four) for four in zip(*parts.values(), strict=True)], parts

    @staticmethod
    def round_trip_loop(events):
        """``SELECT 1`` through Django's cursor in autocommit: the floor of any database round trip."""
        from django.db import connection

        clock = time.perf_counter_ns
        totals = []
        with connection.cursor() as cursor:
            for _ in events:
                t0 = clock()
                cursor.execute("SELECT 1")
                cursor.fetchone()
                totals.append(clock() - t0)
        return totals

    def plain_loop(self, events, send=None):
        """The plain insert in its own transaction, followed there by ``send`` (ours or edx's) when given."""
        create, atomic = self.PlainRow.objects.create, self.atomic
        sig, topic = self.signal, self.topic
        clock = time.perf_counter_ns
        totals, in_send = [], []
        for data, meta, fields in events:
            t0 = clock()
            with atomic():
                create(**fields)
                if send:
                    t1 = clock()
                    send(signal=sig, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=meta)
                    in_send.append(clock() - t1)
            totals.append(clock() - t0)
        if send == self.edx.send:
            self.edx_sent += len(events)
            self.edx.producer.flush(30)
        return totals, in_send


def set_trigger(mode):
    """``installed`` (no relay waiting), ``disabled``, or ``waking``: a live relay's presence row says it waits."""
    if common.vendor() != "postgresql":
        return  # the wake-up trigger exists on PostgreSQL only
    common.execute(f"ALTER TABLE {TABLE} {'DISABLE' if mode == 'disabled' else 'ENABLE'} TRIGGER {TRIGGER}")
    common.execute("DELETE FROM edx_event_bus_outbox_relay WHERE token = %s", [WAITING_RELAY])
    if mode == "waking":
        common.execute(
            "INSERT INTO edx_event_bus_outbox_relay (token, holder, expires_at, waiting) "
            "VALUES (%s, 'bench', now() + interval '1 hour', true)",
            [WAITING_RELAY],
        )


def _events(variants, pool, count_):
    """``count_`` events cycling through ``pool`` payloads, each with fresh metadata and its baseline row."""
    out = []
    for index in range(count_):
        data = pool[index % len(pool)]
        meta = common.metadata()
        out.append((data, meta, variants.plain_fields(data, meta)))
    return out


def run(quick=False):
    common.setup_django()
    per_rep = 500 if quick else 1500
    reps = 5 if quick else 7
    log(f"write path: {reps} repetitions x {per_rep} events per variant")
    common.reset_tables()
    set_trigger("installed")
    topic = common.create_topic(common.topic_name("write"))
    variants = Variants(topic)
    pool = common.make_event_data(200)

    postgres = common.vendor() == "postgresql"
    listener = None
    if postgres:
        listener = subprocess.Popen(
            [sys.executable, "-c", LISTENER, common.pg_url()], stdout=subprocess.PIPE, text=True
        )
        common.first_line(listener, "the LISTEN process")
    try:
        # Warm every path: imports, registry look-ups and serializer caches, connections, plans.
        warm = _events(variants, pool, 200)
        variants.ours_loop(warm)
        variants.edx_loop(_events(variants, pool, 200))
        variants.plain_loop(_events(variants, pool, 200))
        variants.plain_loop(_events(variants, pool, 200), variants.ours.send)
        variants.plain_loop(_events(variants, pool, 200), variants.edx.send)
        variants.parts_loop(_events(variants, pool, 200))
        statements_per_send = variants.statements_per_send(_events(variants, pool, 100))
        variants.edx_sent, variants.flush_ns = 0, []
        edx_sent_before = common.topic_message_count(topic)

        names = [
            "ours",
            *(["ours_no_notify"] if postgres else []),
            "edx_send",
            "plain_orm",
            "plain_plus_ours",
            *(["plain_plus_ours_no_notify", "plain_plus_ours_waking"] if postgres else []),
            "plain_plus_edx",
            "ours_parts",
            "ours_serialize",
            "db_round_trip",
        ]
        per_rep_medians = {name: [] for name in names}
        part_medians = {name: [] for name in PARTS}
        per_rep_means = {name: [] for name in names}
        send_only, commit_part, send_in_writing_tx, edx_in_writing_tx = [], [], [], []
        discarded = 0
        for rep in range(reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]

            def one_rep(order=order):
                common.reset_tables()
                out = {}
                for name in order:
                    events = _events(variants, pool, per_rep)
                    common.quiet_gc()
                    in_send = None
                    if name in ("ours", "ours_no_notify"):
                        set_trigger("installed" if name == "ours" else "disabled")
                        try:
                            totals, in_send = variants.ours_loop(events)
                        finally:
                            set_trigger("installed")
                    elif name == "edx_send":
                        totals = variants.edx_loop(events)
                    elif name == "ours_serialize":
                        totals = variants.serialize_loop(events)
                    elif name == "db_round_trip":
                        totals = variants.round_trip_loop(events)
                    elif name == "ours_parts":
                        totals, in_send = variants.parts_loop(events)
                    elif name in ("plain_plus_ours_no_notify", "plain_plus_ours_waking"):
                        set_trigger("disabled" if name == "plain_plus_ours_no_notify" else "waking")
                        try:
                            totals, _ = variants.plain_loop(events, variants.ours.send)
                        finally:
                            set_trigger("installed")
                    elif name == "plain_orm":
                        totals, _ = variants.plain_loop(events)
                    elif name == "plain_plus_edx":
                        totals, in_send = variants.plain_loop(events, variants.edx.send)
                    else:
                        totals, in_send = variants.plain_loop(events, variants.ours.send)
                    out[name] = (totals, in_send)
                return out

            outcome, tries = common.guarded(f"write path rep {rep + 1}")(one_rep)
            discarded += tries
            for name, (totals, in_send) in outcome.items():
                per_rep_medians[name].append(median(totals) / 1000)
                per_rep_means[name].append(sum(totals) / len(totals) / 1000)
                if name == "plain_plus_ours":
                    send_in_writing_tx.append(median(in_send) / 1000)
                if name == "plain_plus_edx":
                    edx_in_writing_tx.append(median(in_send) / 1000)
                if name == "ours_parts":
                    for part, values in in_send.items():
                        part_medians[part].append(median(values) / 1000)
                if name == "ours":
                    send_only.append(median(in_send) / 1000)
                    commit_part.append(median([t - s for t, s in zip(totals, in_send, strict=False)]) / 1000)
            log(f"  rep {rep + 1}/{reps}: " + ", ".join(f"{n}={per_rep_medians[n][-1]:.0f}µs" for n in names))
        delivered = common.topic_message_count(topic) - edx_sent_before
    finally:
        if listener:
            listener.terminate()
            listener.wait(10)
        set_trigger("installed")

    ratio = lambda a, b: [x / y for x, y in zip(per_rep_medians[a], per_rep_medians[b], strict=False)]  # noqa: E731
    marginal = [x - y for x, y in zip(per_rep_medians["plain_plus_ours"], per_rep_medians["plain_orm"], strict=False)]
    flush_per_event = [ns / 1000 / per_rep for ns in variants.flush_ns]
    work_we_add = [m - r for m, r in zip(marginal, per_rep_medians["db_round_trip"], strict=True)]
    # The same without the COMMIT's share: the send() call alone, timed inside the writing transaction.
    work_in_call = [s - r for s, r in zip(send_in_writing_tx, per_rep_medians["db_round_trip"], strict=True)]
    return {
        "name": "write_path",
        "database": common.vendor(),
        "reps": reps,
        "events_per_rep": per_rep,
        "discarded_reps": discarded,
        "medians_us": {n: median(v) for n, v in per_rep_medians.items()},
        "per_rep_medians_us": per_rep_medians,
        "means_us": {n: median(v) for n, v in per_rep_means.items()},
        "ours_send_call_us": median(send_only),
        "ours_commit_us": median(commit_part),
        "ours_marginal_us": median(marginal),
        # The trigger's share of the marginal cost, at COMMIT of a writing transaction: asking
        # whether a relay waits, and, when one does, the NOTIFY with its database-wide lock.
        "marginal_trigger_us": _paired_difference(per_rep_medians, "plain_plus_ours", "plain_plus_ours_no_notify")
        if postgres
        else None,
        "marginal_wake_us": _paired_difference(per_rep_medians, "plain_plus_ours_waking", "plain_plus_ours_no_notify")
        if postgres
        else None,
        "notify_cost_us": _paired_difference(per_rep_medians, "ours", "ours_no_notify") if postgres else None,
        "parts_us": {name: median(v) for name, v in part_medians.items()},
        "work_we_add_us": median(work_we_add),
        "ratio_work_we_add_over_edx": median(
            [w / e for w, e in zip(work_we_add, per_rep_medians["edx_send"], strict=True)]
        ),
        # edx-event-bus-kafka's send() where the event is emitted: in the transaction, after a row was written.
        "edx_in_writing_tx_us": median(edx_in_writing_tx),
        "edx_marginal_us": _paired_difference(per_rep_medians, "plain_plus_edx", "plain_orm"),
        "ratio_work_we_add_over_edx_in_tx": median(
            [w / e for w, e in zip(work_we_add, edx_in_writing_tx, strict=True)]
        ),
        "send_in_writing_tx_us": median(send_in_writing_tx),
        "work_in_call_us": median(work_in_call),
        "ratio_work_in_call_over_edx": median(
            [w / e for w, e in zip(work_in_call, per_rep_medians["edx_send"], strict=True)]
        ),
        "ratio_ours_over_edx": median(ratio("ours", "edx_send")),
        "ratio_ours_no_notify_over_edx": median(ratio("ours_no_notify", "edx_send")) if postgres else None,
        "ratio_ours_over_plain": median(ratio("ours", "plain_orm")),
        "ratio_marginal_over_edx": median([m / e for m, e in zip(marginal, per_rep_medians["edx_send"], strict=False)]),
        "edx_flush_ms_per_rep": median([ns / 1e6 for ns in variants.flush_ns]),
        "edx_flush_us_per_event": median(flush_per_event),
        "edx_delivered": delivered,
        "edx_sent": variants.edx_sent,
        "statements_per_send": statements_per_send,
    }


# Issue 15: the work we add beyond one round trip is at most a third of edx-event-bus-kafka's send().
# On every database this is the same as "marginal send() <= one round trip + a third of edx's send()".
FLOOR_GOAL = 1 / 3


def _paired_difference(per_rep_medians, a, b):
    return median([x - y for x, y in zip(per_rep_medians[a], per_rep_medians[b], strict=True)])


def floor_lines(result):
    """Issue 15's floor: marginal send() next to edx's, one round trip, the parts, and the work we add."""
    m, parts = result["medians_us"], result["parts_us"]
    ratio = result["ratio_work_we_add_over_edx"]
    return [
        f"   FLOOR on {result['database']}: one event added to a transaction that already writes a row (µs, medians)",
        f"     marginal send() {result['ours_marginal_us']:.1f};  edx-event-bus-kafka send() {m['edx_send']:.1f};"
        f"  one round trip (SELECT 1) {m['db_round_trip']:.1f}",
        "     parts, timed in sequence: "
        + ", ".join(f"{name} {parts[name]:.1f}" for name in PARTS)
        + f"  (sum {m['ours_parts']:.1f})",
        f"     work we add = marginal - round trip = {result['work_we_add_us']:.1f};  / edx send() = {ratio:.2f}"
        f"   (goal <= 0.33: {'MET' if ratio <= FLOOR_GOAL else 'NOT MET'})",
        *(
            [
                f"     edx-event-bus-kafka send() in the same place (after the row, in the transaction)"
                f" {result['edx_in_writing_tx_us']:.1f}; its marginal {result['edx_marginal_us']:.1f};"
                f"  work we add / it = {result['ratio_work_we_add_over_edx_in_tx']:.2f}"
            ]
            if "edx_in_writing_tx_us" in result
            else []
        ),
        *(
            [
                f"     of the marginal send(), the wake-up trigger (minus disabled): no relay waiting"
                f" {result['marginal_trigger_us']:.1f}; waking a relay (NOTIFY) {result['marginal_wake_us']:.1f}"
            ]
            if result.get("marginal_trigger_us") is not None
            else []
        ),
        f"     without the COMMIT's share: send() call in the writing transaction "
        f"{result['send_in_writing_tx_us']:.1f}; minus round trip {result['work_in_call_us']:.1f};"
        f"  / edx send() = {result['ratio_work_in_call_over_edx']:.2f}",
    ]


def report(result):
    m = result["medians_us"]
    goal = result["ratio_ours_over_edx"] <= 1.0
    notify = (
        [
            f"   ours, wake-up trigger disabled                      {m['ours_no_notify']:8.1f} µs"
            f"   (the trigger adds {result['notify_cost_us']:.1f} µs)"
        ]
        if "ours_no_notify" in m
        else []
    )
    lines = [
        f"1. WRITE PATH on {result.get('database', 'postgresql')}: µs per event, one event per transaction; median of "
        f"{result['reps']} repetitions x {result['events_per_rep']} events (per-event median in each)",
        f"   ours: atomic + send() + COMMIT{', trigger on' if notify else ''}          {m['ours']:8.1f} µs"
        f"   (send() call {result['ours_send_call_us']:.1f} + BEGIN/COMMIT {result['ours_commit_us']:.1f})",
        *notify,
        f"   (a) edx-event-bus-kafka KafkaEventProducer.send()   {m['edx_send']:8.1f} µs"
        f"   (+ flush() after {result['events_per_rep']}: {result['edx_flush_ms_per_rep']:.1f} ms"
        f" = {result['edx_flush_us_per_event']:.1f} µs/event; "
        f"{result['edx_delivered']}/{result['edx_sent']} delivered)",
        f"   (b) plain ORM insert, same row, atomic + COMMIT      {m['plain_orm']:8.1f} µs",
        f"   plain ORM insert + our send() in one transaction   {m['plain_plus_ours']:8.1f} µs"
        f"   (our marginal cost: {result['ours_marginal_us']:.1f} µs)",
        f"   context: our serialize + validate alone (no DB)      {m['ours_serialize']:8.1f} µs;"
        f"  one DB round trip (SELECT 1)  {m['db_round_trip']:.1f} µs",
        f"   ratio ours/(a) = {result['ratio_ours_over_edx']:.2f}   (goal <= 1.0: {'MET' if goal else 'NOT MET'})"
        + (f"   [trigger disabled: {result['ratio_ours_no_notify_over_edx']:.2f}]" if notify else "")
        + f"   [marginal in a writing transaction: {result['ratio_marginal_over_edx']:.2f}]",
        f"   ratio ours/(b) = {result['ratio_ours_over_plain']:.2f}",
        f"   statements (database round trips) per send() in a transaction: "
        f"{result.get('statements_per_send', float('nan')):.2f}   (goal 1.00)",
        "   per-repetition medians (µs): "
        + "; ".join(f"{n} {common.spread(v)}" for n, v in result["per_rep_medians_us"].items()),
    ]
    if result.get("discarded_reps"):
        lines.append(
            f"   {result['discarded_reps']} repetition(s) discarded and redone: a stack service was restarted "
            f"by another user of the shared stack meanwhile"
        )
    if "parts_us" in result:
        lines += floor_lines(result)
    return "\n".join(lines)


if __name__ == "__main__":
    common.main(run, report, __doc__.splitlines()[1])
