"""
Benchmark 2, relay drain rate: events per second from a backlog to acknowledged
Kafka messages, side by side in one run, the order of the contenders rotating per repetition.

* ours           an in-process ``Relay(RelayOptions(until_empty=True))`` serving every lane, as
                 ``run_outbox_relay`` does without ``--lane``, with the default settings (batch
                 500, idempotent producer, acks=all), draining a backlog of N pending rows:
                 find the lanes, claim, Avro-encode (registry-framed key and value), headers,
                 produce, wait for every delivery report, mark the rows sent (partition, offset).
                 The backlog is N copies of 1,000 rows written by our ``send()`` (see
                 ``common.load_backlog``), loaded and ANALYZEd before the clock starts.
* edx direct     edx-event-bus-kafka's ``KafkaEventProducer.send()`` for the same N events
                 (the same 1,000 payloads, fresh metadata) in a loop, then ``flush()``: what
                 the service itself would spend publishing them with no outbox at all.
* jaiminho       django-jaiminho 2.x's relay (``EventRelayer.relay(stream)``) over its own
                 outbox table in the same database, store-then-relay (``keep-order``), with a
                 function that encodes like edx-event-bus-kafka and waits for the broker's
                 acknowledgement (``bench/jaiminho_sink.py``). It sends one event per
                 transaction and waits for each acknowledgement, so its rate does not depend on
                 the backlog size; it is measured on a smaller backlog (see the report) to keep
                 the run short.

Audit logging is off for all (``EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED = False``). Each
contender's Kafka topic has 3 partitions. Every repetition checks that all N messages arrived.

A further, instrumented drain splits our relay's wall time into its phases (timers wrapped
around the relay's functions in this process; the package code is unchanged), and, when the
ratio is below its goal, a cProfile run names the functions the time goes to.
"""

import cProfile
import io
import pstats
import time

from bench import common
from bench.common import KEY_FIELD, log, median

# ---------------------------------------------------------------- contenders


def drain_ours(topic, n, sink=None, cap_seconds=None, delivered_count=common.topic_message_count, exactly_once=None):
    """
    Load ``n`` rows, then time an in-process relay draining them, until empty or until
    ``cap_seconds`` (then ``relay.stop()``: the batch in flight finishes). Returns
    ``(events/s, events sent)``. ``delivered_count(topic)`` counts what reached the broker
    (a Kafka topic's messages by default). ``exactly_once`` overrides the setting (default: on).
    """

    import threading

    from edx_event_bus_outbox.relay.relay import Relay, RelayOptions

    common.reset_tables()
    common.load_backlog(topic, n)
    before = delivered_count(topic)
    common.quiet_gc()
    t0 = time.perf_counter()
    options = RelayOptions(until_empty=True)
    if exactly_once is not None:
        options.exactly_once = exactly_once
    relay = Relay(options, sink=sink)
    timer = threading.Timer(cap_seconds, relay.stop) if cap_seconds else None
    if timer:
        timer.start()
    try:
        relay.run()
    finally:
        if timer:
            timer.cancel()
    elapsed = time.perf_counter() - t0
    sent = relay.sent_total
    delivered = delivered_count(topic) - before
    marked = common.count(
        "SELECT count(*) FROM edx_event_bus_outbox_event WHERE topic = %s AND status = 'sent'", [topic]
    )
    if marked != sent or delivered != sent or (not cap_seconds and sent != n):
        raise RuntimeError(f"our relay: {sent} sent, {marked} marked, {delivered} delivered (backlog {n})")
    return sent / elapsed, sent


class EdxDirect:
    def __init__(self):
        import edx_event_bus_kafka

        self.producer = edx_event_bus_kafka.create_producer()
        self.signal = common.signal()

    def run(self, topic, pool, n, cap_seconds=None):
        """Send up to ``n`` events (stopping at ``cap_seconds``), then flush; ``(events/s, events sent)``."""
        events = [(pool[i % len(pool)], common.metadata()) for i in range(n)]
        before = common.topic_message_count(topic)
        send, sig = self.producer.send, self.signal
        deadline = time.perf_counter() + cap_seconds if cap_seconds else float("inf")
        common.quiet_gc()
        sent = 0
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            for data, meta in events[start : start + 500]:
                send(signal=sig, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=meta)
            sent = min(start + 500, n)
            if time.perf_counter() >= deadline:
                break
        self.producer.producer.flush(60)
        elapsed = time.perf_counter() - t0
        delivered = common.topic_message_count(topic) - before
        if delivered != sent:
            raise RuntimeError(f"edx-event-bus-kafka: {delivered} of {sent} messages reached Kafka")
        return sent / elapsed, sent


def drain_jaiminho(topic, pool, n):
    """Store ``n`` jaiminho rows (not timed), then time its relay over them; returns events/s."""

    from django.db import transaction
    from jaiminho.models import Event
    from jaiminho.relayer import EventRelayer

    from bench.jaiminho_sink import stored_publisher

    stream = topic
    publish = stored_publisher(stream)
    sig = common.signal()
    common.reset_tables()
    for start in range(0, n, 500):
        with transaction.atomic():
            for i in range(start, min(start + 500, n)):
                publish(sig.event_type, topic, KEY_FIELD, pool[i % len(pool)], common.metadata())
    before = common.topic_message_count(topic)
    common.quiet_gc()
    t0 = time.perf_counter()
    EventRelayer().relay(stream=stream)
    elapsed = time.perf_counter() - t0
    delivered = common.topic_message_count(topic) - before
    marked = Event.objects.filter(stream=stream, sent_at__isnull=False).count()
    if delivered != n or marked != n:
        raise RuntimeError(f"jaiminho: {delivered} on Kafka, {marked} marked sent; expected {n}")
    return n / elapsed


# ---------------------------------------------------------------- where our relay's time goes


class _Timed:
    """Accumulates wall time and calls of one function."""

    def __init__(self, name, func, totals):
        self.name, self.func, self.totals = name, func, totals

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.func(*args, **kwargs)
        finally:
            seconds, calls = self.totals.get(self.name, (0.0, 0))
            self.totals[self.name] = (seconds + time.perf_counter() - t0, calls + 1)


class _TimedProducer:
    """Proxy for the sink's confluent_kafka.Producer that times produce and flush."""

    def __init__(self, producer, totals):
        self._producer = producer
        self.produce = _Timed("produce (librdkafka enqueue)", producer.produce, totals)
        self.flush = _Timed("flush (wait for acks)", producer.flush, totals)
        self.poll = producer.poll


def phase_breakdown(topic, n, cap_seconds=None):
    """
    Drain once with timers around each phase (patched in this process only, package code
    unchanged); returns ``{phase: (seconds, calls)}`` and the total wall time.
    """

    from edx_event_bus_outbox.relay import leases, store
    from edx_event_bus_outbox.relay import sink as sink_module
    from edx_event_bus_outbox.relay.sink import KafkaSink

    totals = {}
    patches = [
        (store, "pending_batch", "claim: SELECT pending batch (store.pending_batch)"),
        (store, "mark_sent", "mark: UPDATE sent rows (store.mark_sent)"),
        (store, "any_pending", "until-empty check"),
        (store, "pending_lanes", "find lanes (store.pending_lanes)"),
        (leases, "renew", "lease renew"),
        (leases, "try_acquire", "lease acquire"),
        (sink_module, "encode_row", "encode (total per row)"),
        (sink_module, "encode_message", "  of which encode_message (Avro key/value)"),
        (sink_module, "event_headers", "  of which headers (from the row's columns)"),
    ]
    saved = [(module, attr, getattr(module, attr)) for module, attr, _ in patches]
    try:
        for module, attr, label in patches:
            setattr(module, attr, _Timed(label, getattr(module, attr), totals))
        from edx_event_bus_outbox import conf

        sink = KafkaSink(conf.relay_lease_seconds())
        sink.producer = _TimedProducer(sink.producer, totals)
        rate, _ = drain_ours(topic, n, sink=sink, cap_seconds=cap_seconds, exactly_once=False)
    finally:
        for module, attr, original in saved:
            setattr(module, attr, original)
    sent = totals.get("encode (total per row)", (0, 0))[1]
    order = [
        "lease acquire",
        "lease renew",
        "claim: SELECT pending batch (store.pending_batch)",
        "encode (total per row)",
        "  of which headers (from the row's columns)",
        "  of which encode_message (Avro key/value)",
        "produce (librdkafka enqueue)",
        "flush (wait for acks)",
        "mark: UPDATE sent rows (store.mark_sent)",
        "find lanes (store.pending_lanes)",
        "until-empty check",
    ]
    return {
        "events": sent,
        "rate": rate,
        "wall_seconds": sent / rate,
        "phases": {k: {"seconds": totals[k][0], "calls": totals[k][1]} for k in order if k in totals},
    }


PROFILE_GROUPS = [
    # (label, predicate on (filename, function name)): cumulative time of the matching frames
    ("claim: store.pending_batch (all)", lambda f, n: f.endswith("relay/store.py") and n == "pending_batch"),
    ("  JSONField.from_db_value (json.loads)", lambda f, n: f.endswith("fields/json.py") and n == "from_db_value"),
    ("encode: sink.encode_row (all)", lambda f, n: f.endswith("relay/sink.py") and n == "encode_row"),
    ("  event_headers", lambda f, n: f.endswith("kafka/headers.py") and n == "event_headers"),
    ("  Avro serializers (key+value)", lambda f, n: f.endswith("kafka/encoding.py") and n == "__call__"),
    ("produce: Producer.produce", lambda _f, n: n == "<method 'produce' of 'cimpl.Producer' objects>"),
    ("wait: Producer.flush", lambda _f, n: n == "<method 'flush' of 'cimpl.Producer' objects>"),
    ("mark: store.mark_sent (all)", lambda f, n: f.endswith("relay/store.py") and n == "mark_sent"),
    ("leases (renew)", lambda f, n: f.endswith("relay/leases.py") and n == "renew"),
]


def profile_breakdown(topic, n, top=20, cap_seconds=None):
    """cProfile one drain; returns cumulative seconds per group and the top functions by own time."""

    import threading

    from edx_event_bus_outbox.relay.relay import Relay, RelayOptions

    common.reset_tables()
    common.load_backlog(topic, n)
    profiler = cProfile.Profile()
    relay = Relay(RelayOptions(until_empty=True))
    timer = threading.Timer(cap_seconds, relay.stop) if cap_seconds else None
    t0 = time.perf_counter()
    if timer:
        timer.start()
    profiler.enable()
    relay.run()
    profiler.disable()
    if timer:
        timer.cancel()
    n = relay.sent_total
    wall = time.perf_counter() - t0
    stats = pstats.Stats(profiler)
    groups = {}
    for label, predicate in PROFILE_GROUPS:
        groups[label] = sum(ct for (f, _, name), (_, _, _, ct, _) in stats.stats.items() if predicate(f, name))
    buffer = io.StringIO()
    stats.stream = buffer
    stats.sort_stats("tottime").print_stats(top)
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    total = sum(v[2] for v in stats.stats.values())
    return {
        "events": n,
        "wall_seconds_under_profiler": wall,
        "profiled_seconds": total,
        "groups": groups,
        "top_by_own_time": lines[start : start + top + 1],
    }


# ---------------------------------------------------------------- the benchmark


def run(quick=False, profile=None):
    common.setup_django()
    from django.conf import settings

    n = 20_000 if quick else 100_000
    reps = 3 if quick else 5
    cap = 6.0 if quick else 20.0
    jaiminho_n = 200 if quick else 1_000
    with_jaiminho = settings.JAIMINHO_INSTALLED
    log(
        f"drain: {reps} repetitions, backlog {n} (each contender stops at {cap:.0f} s if not done; "
        f"jaiminho: {jaiminho_n if with_jaiminho else 'not installed'})"
    )
    pool = common.make_event_data(1000)
    common.prepare_seed(pool)
    topics = {
        name: common.create_topic(common.topic_name(f"drain-{name}"))
        for name in ("ours", "ours_alo", "edx", "jaiminho")
    }
    edx = EdxDirect()

    # Warm: connections, registry subjects and serializer caches for each topic.
    drain_ours(topics["ours"], 500)
    drain_ours(topics["ours_alo"], 500, exactly_once=False)
    edx.run(topics["edx"], pool, 1000)
    if with_jaiminho:
        drain_jaiminho(topics["jaiminho"], pool, 50)

    contenders = ["ours", "ours_at_least_once", "edx_direct"] + (["jaiminho"] if with_jaiminho else [])
    rates = {name: [] for name in contenders}
    counts = {name: [] for name in contenders}
    discarded = 0
    for rep in range(reps):
        order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]

        def one_rep(order=order):
            out = {}
            for name in order:
                if name == "ours":
                    out[name] = drain_ours(topics["ours"], n, cap_seconds=cap)
                elif name == "ours_at_least_once":
                    out[name] = drain_ours(topics["ours_alo"], n, cap_seconds=cap, exactly_once=False)
                elif name == "edx_direct":
                    out[name] = edx.run(topics["edx"], pool, n, cap_seconds=cap)
                else:
                    out[name] = drain_jaiminho(topics["jaiminho"], pool, jaiminho_n), jaiminho_n
            return out

        outcome, tries = common.guarded(f"drain rep {rep + 1}")(one_rep)
        discarded += tries
        for name, (rate, sent) in outcome.items():
            rates[name].append(rate)
            counts[name].append(sent)
        log(f"  rep {rep + 1}/{reps}: " + ", ".join(f"{k}={v[-1]:.0f}/s ({counts[k][-1]})" for k, v in rates.items()))
        common.reset_tables()

    paired = lambda a, b: median([x / y for x, y in zip(rates[a], rates[b], strict=False)])  # noqa: E731
    result = {
        "name": "drain",
        "events": n,
        "reps": reps,
        "cap_seconds": cap,
        "discarded_reps": discarded,
        "jaiminho_events": jaiminho_n if with_jaiminho else None,
        "rates": {k: median(v) for k, v in rates.items()},
        "per_rep_rates": rates,
        "per_rep_events": counts,
        "ratio_ours_over_edx": paired("ours", "edx_direct"),
        "ratio_at_least_once_over_edx": paired("ours_at_least_once", "edx_direct"),
        "ratio_exactly_once_over_at_least_once": paired("ours", "ours_at_least_once"),
        "ratio_ours_over_jaiminho": paired("ours", "jaiminho") if with_jaiminho else None,
    }
    log("drain: phase breakdown of our relay")
    phase_n = 3_000 if quick else 20_000
    result["phases"] = common.guarded("phase breakdown")(
        lambda: phase_breakdown(topics["ours"], phase_n, cap_seconds=cap)
    )[0]
    if profile is None:
        profile = not quick and result["ratio_ours_over_edx"] < 2.0
    if profile:
        log("drain: profiling our relay with cProfile")
        result["profile"] = common.guarded("profile")(
            lambda: profile_breakdown(topics["ours"], 5_000, cap_seconds=cap)
        )[0]
    common.reset_tables()
    return result


def _phase_lines(phases, title):
    wall = phases["wall_seconds"]
    lines = [f"   {title} ({phases['events']:,} events at {phases['rate']:.0f} events/s, {wall:.2f} s wall):"]
    for label, value in phases["phases"].items():
        lines.append(
            f"     {label:<46} {value['seconds']:7.2f} s {100 * value['seconds'] / wall:5.1f} %"
            f" {1e6 * value['seconds'] / max(phases['events'], 1):7.1f} µs/event ({value['calls']:,} calls)"
        )
    return lines


def report(result):
    r = result["rates"]
    c = result["per_rep_events"]
    goal = result["ratio_ours_over_edx"] >= 2.0
    complete = lambda name, n: "all" if min(c[name]) >= n else f"{min(c[name]):,}..{max(c[name]):,}"  # noqa: E731
    lines = [
        f"2. RELAY DRAIN: events/s from a backlog of {result['events']:,} events; median of "
        f"{result['reps']} repetitions (each contender stops after {result['cap_seconds']:.0f} s if not done; "
        f"events done per repetition in brackets)",
        "   ours: in-process Relay, until_empty, batch 500,",
        f"     exactly-once (a Kafka transaction per batch)       {r['ours']:8.0f} events/s"
        f"   [{complete('ours', result['events'])}]",
        f"     at-least-once (--no-exactly-once)                  {r['ours_at_least_once']:8.0f} events/s"
        f"   [{complete('ours_at_least_once', result['events'])}]",
        f"   edx-event-bus-kafka direct: send() loop + flush()    {r['edx_direct']:8.0f} events/s"
        f"   [{complete('edx_direct', result['events'])}]",
    ]
    if result.get("jaiminho_events"):
        lines.append(
            f"   django-jaiminho relay, keep-order, ack per event     {r['jaiminho']:8.0f} events/s"
            f"   [backlog {result['jaiminho_events']:,}; one transaction and one broker wait per event]"
        )
    lines.append(
        f"   ratio ours (exactly-once)/edx direct = {result['ratio_ours_over_edx']:.2f}   (goal >= 2.0: "
        f"{'MET' if goal else 'NOT MET'}); at-least-once/edx direct = {result['ratio_at_least_once_over_edx']:.2f}; "
        f"exactly-once/at-least-once = {result['ratio_exactly_once_over_at_least_once']:.2f}"
    )
    if result.get("ratio_ours_over_jaiminho"):
        lines.append(f"   ratio ours/jaiminho = {result['ratio_ours_over_jaiminho']:.1f}")
    lines.append(
        "   per-repetition rates: " + "; ".join(f"{k} {common.spread(v)}" for k, v in result["per_rep_rates"].items())
    )
    if result.get("discarded_reps"):
        lines.append(
            f"   {result['discarded_reps']} repetition(s) discarded and redone: a stack service was "
            f"restarted by another user of the shared stack meanwhile"
        )
    if result.get("phases"):
        lines += _phase_lines(
            result["phases"], "where our at-least-once relay's wall time goes (timers around each phase)"
        )
    profile = result.get("profile")
    if profile:
        lines.append(
            f"   cProfile of a {profile['events']:,}-event drain (cumulative seconds; the profiler inflates "
            f"Python-heavy parts; wall {profile['wall_seconds_under_profiler']:.2f} s):"
        )
        for label, seconds in profile["groups"].items():
            lines.append(
                f"     {label:<46} {seconds:7.2f} s {100 * seconds / profile['wall_seconds_under_profiler']:5.1f} %"
            )
        lines.append("   top functions by own time:")
        lines.extend(f"     {line}" for line in profile["top_by_own_time"])
    return "\n".join(lines)


if __name__ == "__main__":
    common.main(run, report, __doc__.splitlines()[1])
