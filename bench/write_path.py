"""
Benchmark 1, the write path: what one event costs the request that emits it.

Side by side, interleaved in every repetition (the order rotates), one event per transaction:

* ours            ``with atomic(): OutboxEventProducer.send()`` then COMMIT, with the NOTIFY
                  trigger on (as installed), while a separate process LISTENs (as a relay
                  would), so the commit does the full notification work;
* ours, no NOTIFY the same with ``ALTER TABLE ... DISABLE TRIGGER``, to show what NOTIFY costs;
* (a) edx send    edx-event-bus-kafka's ``KafkaEventProducer.send()`` (``create_producer()``)
                  against the real broker and registry, caches warm. It serializes, produces
                  into librdkafka's queue and calls ``poll(0)``, as it always does; it does not
                  wait for the broker. ``flush()`` is not included; what it adds is reported apart;
* (b) plain ORM   ``with atomic(): PlainRow.objects.create(...)`` then COMMIT: a row with the
                  same columns and values (payload already serialized), primary key only.

and, to isolate what our ``send()`` adds to a transaction that writes anyway (the usual case:
the event describes a change the request commits):

* plain + ours    ``with atomic(): PlainRow.objects.create(...); send()`` then COMMIT; the
                  difference from (b) is our marginal cost.

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


def _pg_url():
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Variants:
    """The timed loops; each returns per-event nanoseconds (and keeps side figures in ``extra``)."""

    def __init__(self, topic):

        import edx_event_bus_kafka
        from django.db import transaction

        from bench.models import PlainRow
        from edx_event_bus_outbox import create_producer
        from edx_event_bus_outbox.kafka.schemas import extract_event_key, signal_serializer

        self.topic = topic
        self.signal = common.signal()
        self.ours = create_producer()
        self.edx = edx_event_bus_kafka.create_producer()
        self.atomic = transaction.atomic
        self.PlainRow = PlainRow
        self.to_dict = signal_serializer(self.signal).to_dict
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

    def plain_loop(self, events, with_ours=False):
        create, atomic = self.PlainRow.objects.create, self.atomic
        send, sig, topic = self.ours.send, self.signal, self.topic
        clock = time.perf_counter_ns
        totals = []
        for data, meta, fields in events:
            t0 = clock()
            with atomic():
                create(**fields)
                if with_ours:
                    send(signal=sig, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=meta)
            totals.append(clock() - t0)
        return totals


def set_trigger(enabled):
    common.execute(f"ALTER TABLE {TABLE} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {TRIGGER}")


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
    set_trigger(True)
    topic = common.create_topic(common.topic_name("write"))
    variants = Variants(topic)
    pool = common.make_event_data(200)

    listener = subprocess.Popen([sys.executable, "-c", LISTENER, _pg_url()], stdout=subprocess.PIPE, text=True)
    common.first_line(listener, "the LISTEN process")
    try:
        # Warm every path: imports, registry look-ups and serializer caches, connections, plans.
        warm = _events(variants, pool, 200)
        variants.ours_loop(warm)
        variants.edx_loop(_events(variants, pool, 200))
        variants.plain_loop(_events(variants, pool, 200))
        variants.plain_loop(_events(variants, pool, 200), with_ours=True)
        statements_per_send = variants.statements_per_send(_events(variants, pool, 100))
        variants.edx_sent, variants.flush_ns = 0, []
        edx_sent_before = common.topic_message_count(topic)

        names = [
            "ours",
            "ours_no_notify",
            "edx_send",
            "plain_orm",
            "plain_plus_ours",
            "ours_serialize",
            "db_round_trip",
        ]
        per_rep_medians = {name: [] for name in names}
        per_rep_means = {name: [] for name in names}
        send_only, commit_part = [], []
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
                        set_trigger(name == "ours")
                        try:
                            totals, in_send = variants.ours_loop(events)
                        finally:
                            set_trigger(True)
                    elif name == "edx_send":
                        totals = variants.edx_loop(events)
                    elif name == "ours_serialize":
                        totals = variants.serialize_loop(events)
                    elif name == "db_round_trip":
                        totals = variants.round_trip_loop(events)
                    elif name == "plain_orm":
                        totals = variants.plain_loop(events)
                    else:
                        totals = variants.plain_loop(events, with_ours=True)
                    out[name] = (totals, in_send)
                return out

            outcome, tries = common.guarded(f"write path rep {rep + 1}")(one_rep)
            discarded += tries
            for name, (totals, in_send) in outcome.items():
                per_rep_medians[name].append(median(totals) / 1000)
                per_rep_means[name].append(sum(totals) / len(totals) / 1000)
                if name == "ours":
                    send_only.append(median(in_send) / 1000)
                    commit_part.append(median([t - s for t, s in zip(totals, in_send, strict=False)]) / 1000)
            log(f"  rep {rep + 1}/{reps}: " + ", ".join(f"{n}={per_rep_medians[n][-1]:.0f}µs" for n in names))
        delivered = common.topic_message_count(topic) - edx_sent_before
    finally:
        listener.terminate()
        listener.wait(10)
        set_trigger(True)

    ratio = lambda a, b: [x / y for x, y in zip(per_rep_medians[a], per_rep_medians[b], strict=False)]  # noqa: E731
    marginal = [x - y for x, y in zip(per_rep_medians["plain_plus_ours"], per_rep_medians["plain_orm"], strict=False)]
    flush_per_event = [ns / 1000 / per_rep for ns in variants.flush_ns]
    return {
        "name": "write_path",
        "reps": reps,
        "events_per_rep": per_rep,
        "discarded_reps": discarded,
        "medians_us": {n: median(v) for n, v in per_rep_medians.items()},
        "per_rep_medians_us": per_rep_medians,
        "means_us": {n: median(v) for n, v in per_rep_means.items()},
        "ours_send_call_us": median(send_only),
        "ours_commit_us": median(commit_part),
        "ours_marginal_us": median(marginal),
        "notify_cost_us": median(
            [a - b for a, b in zip(per_rep_medians["ours"], per_rep_medians["ours_no_notify"], strict=True)]
        ),
        "ratio_ours_over_edx": median(ratio("ours", "edx_send")),
        "ratio_ours_no_notify_over_edx": median(ratio("ours_no_notify", "edx_send")),
        "ratio_ours_over_plain": median(ratio("ours", "plain_orm")),
        "ratio_marginal_over_edx": median([m / e for m, e in zip(marginal, per_rep_medians["edx_send"], strict=False)]),
        "edx_flush_ms_per_rep": median([ns / 1e6 for ns in variants.flush_ns]),
        "edx_flush_us_per_event": median(flush_per_event),
        "edx_delivered": delivered,
        "edx_sent": variants.edx_sent,
        "statements_per_send": statements_per_send,
    }


def report(result):
    m = result["medians_us"]
    goal = result["ratio_ours_over_edx"] <= 1.0
    lines = [
        f"1. WRITE PATH: µs per event, one event per transaction; median of {result['reps']} repetitions "
        f"x {result['events_per_rep']} events (per-event median in each)",
        f"   ours: atomic + send() + COMMIT, NOTIFY trigger on   {m['ours']:8.1f} µs"
        f"   (send() call {result['ours_send_call_us']:.1f} + BEGIN/COMMIT {result['ours_commit_us']:.1f})",
        f"   ours, NOTIFY trigger disabled                       {m['ours_no_notify']:8.1f} µs"
        f"   (NOTIFY adds {result['notify_cost_us']:.1f} µs)",
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
        f"   [no NOTIFY: {result['ratio_ours_no_notify_over_edx']:.2f}; marginal in a writing transaction: "
        f"{result['ratio_marginal_over_edx']:.2f}]",
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
    return "\n".join(lines)


if __name__ == "__main__":
    common.main(run, report, __doc__.splitlines()[1])
