"""
``python -m bench.redis_drain [--quick]``: the relay's drain rate to Redis Streams against
edx-event-bus-redis producing the same events directly, side by side in one run, the order of
the two rotating per repetition. On PostgreSQL and the local stack's Redis (a database of its own).

* ours           an in-process ``Relay(RelayOptions(until_empty=True))`` with
                 ``EVENT_BUS_OUTBOX_SINK = "redis"`` and the default settings (batch 500),
                 draining a backlog of N pending rows (``common.load_backlog``, as the Kafka
                 drain benchmark): claim, schemaless Avro, one pipelined ``MULTI``/``EXEC`` of
                 ``XADD``\\ s per batch, mark the rows sent.
* edx direct     edx-event-bus-redis 1.1's ``RedisEventProducer.send()`` for the same N events
                 (the same payloads, fresh metadata) in a loop: one ``XADD`` round trip per
                 event, what a Tutor service spends publishing them today.

Both trim with the same ``MAXLEN ~ 10000``. Every repetition checks, with the stream's
``entries-added`` counter, that all N entries arrived.
"""

import os
import time
import uuid

import redis

from bench import common
from bench.common import KEY_FIELD, log, median
from bench.drain import drain_ours
from tests.redis_tools import with_database

# The stack's Redis serves Celery's tests on 0 and the sink's tests on 3.
BENCH_REDIS_DATABASE = 4


def entries_added(client):
    """``entries_added(topic)``: how many entries were ever added to the topic's stream (trimming aside)."""

    def count(topic):
        try:
            return client.xinfo_stream(topic)["entries-added"]
        except redis.ResponseError:  # no such stream yet
            return 0

    return count


class EdxRedisDirect:
    def __init__(self, client):
        import edx_event_bus_redis

        self.producer = edx_event_bus_redis.create_producer()
        self.signal = common.signal()
        self.added = entries_added(client)

    def run(self, topic, pool, n):
        events = [(pool[i % len(pool)], common.metadata()) for i in range(n)]
        before = self.added(topic)
        send, sig = self.producer.send, self.signal
        common.quiet_gc()
        t0 = time.perf_counter()
        for data, meta in events:
            send(signal=sig, topic=topic, event_key_field=KEY_FIELD, event_data=data, event_metadata=meta)
        elapsed = time.perf_counter() - t0
        if self.added(topic) - before != n:
            raise RuntimeError(f"edx-event-bus-redis: {self.added(topic) - before} of {n} entries reached Redis")
        return n / elapsed


def run(quick=False):
    common.setup_django()
    from django.conf import settings
    from django.test import override_settings

    redis_url = with_database(os.environ["OUTBOX_TEST_REDIS_URL"], BENCH_REDIS_DATABASE)
    with override_settings(EVENT_BUS_REDIS_CONNECTION_URL=redis_url, EVENT_BUS_OUTBOX_SINK="redis"):
        return _run(settings, quick)


def _run(settings, quick):
    client = redis.Redis.from_url(settings.EVENT_BUS_REDIS_CONNECTION_URL)
    n, reps = (20_000, 3) if quick else (100_000, 5)
    log(f"redis drain: {reps} repetitions, backlog {n}, Redis {settings.EVENT_BUS_REDIS_CONNECTION_URL}")
    pool = common.make_event_data(1000)
    common.prepare_seed(pool)
    run_id = uuid.uuid4().hex[:8]
    topics = {name: f"bench-redis-{name}-{run_id}" for name in ("ours", "edx")}
    edx = EdxRedisDirect(client)
    added = entries_added(client)
    try:
        drain_ours(topics["ours"], 500, delivered_count=added)  # warm: connections, caches
        edx.run(topics["edx"], pool, 500)
        rates = {"ours": [], "edx_direct": []}
        for rep in range(reps):
            for name in ["ours", "edx_direct"][rep % 2 :] + ["ours", "edx_direct"][: rep % 2]:
                if name == "ours":
                    rate, _ = drain_ours(topics["ours"], n, delivered_count=added)
                else:
                    rate = edx.run(topics["edx"], pool, n)
                rates[name].append(rate)
                log(f"redis drain rep {rep + 1}/{reps}: {name} {rate:,.0f} events/s")
    finally:
        client.delete(*topics.values())
    medians = {name: median(values) for name, values in rates.items()}
    return {
        "events": n,
        "reps": reps,
        "rates": medians,
        "per_rep_rates": rates,
        "ratio_ours_over_edx": medians["ours"] / medians["edx_direct"],
    }


def report(result):
    r = result["rates"]
    goal = result["ratio_ours_over_edx"] >= 2.0
    return "\n".join(
        [
            f"RELAY DRAIN TO REDIS STREAMS: events/s, backlog {result['events']:,} events, median of "
            f"{result['reps']} repetitions",
            f"   ours: in-process Relay, sink redis, batch 500          {r['ours']:8.0f} events/s",
            f"   edx-event-bus-redis direct: send() loop (XADD each)    {r['edx_direct']:8.0f} events/s",
            f"   ratio ours/edx direct = {result['ratio_ours_over_edx']:.2f}   (goal >= 2.0: "
            f"{'MET' if goal else 'NOT MET'})",
            "   per-repetition rates: "
            + "; ".join(f"{k} {common.spread(v)}" for k, v in result["per_rep_rates"].items()),
        ]
    )


if __name__ == "__main__":
    common.main(run, report, __doc__.splitlines()[1])
