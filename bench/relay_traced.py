"""
``python -m bench.relay_traced TRACEFILE [run_outbox_relay options]``: ``manage.py
run_outbox_relay`` (on ``bench.settings``) with a timestamp trace of every batch, for the latency
benchmark's breakdown.

Thin wrappers (in this process only; the package code is unchanged) record, per batch, when
the SELECT of pending rows started and ended, the event ids it returned, when ``publish``
(encode, produce, wait for every acknowledgement and, exactly-once, the Kafka commit) started
and ended, and when marking ended.
They cost a few ``time.time()`` calls per batch. The trace is written as JSON lines at exit.
"""

import json
import os
import sys
import time


def main():
    trace_path, arguments = sys.argv[1], sys.argv[2:]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()

    from django.core.management import execute_from_command_line

    from edx_event_bus_outbox.relay import store
    from edx_event_bus_outbox.relay.topic_sinks import TopicSinks  # the relay's sink, whichever publishes

    records = []
    pending_batch, publish, mark_sent = store.pending_batch, TopicSinks.publish, store.mark_sent

    def traced_pending_batch(alias, lane, *args):
        start = time.time()
        rows = pending_batch(alias, lane, *args)
        if rows:
            records.append({"claim_start": start, "claim_end": time.time(), "ids": [str(r.event_id) for r in rows]})
        return rows

    def traced_publish(self, rows, *args, **kwargs):
        start = time.time()
        deliveries = publish(self, rows, *args, **kwargs)
        if records:
            records[-1].update(publish_start=start, publish_end=time.time())
        return deliveries

    def traced_mark_sent(alias, deliveries, *args):
        marked = mark_sent(alias, deliveries, *args)
        if records and deliveries:
            records[-1]["mark_end"] = time.time()
        return marked

    store.pending_batch, TopicSinks.publish, store.mark_sent = traced_pending_batch, traced_publish, traced_mark_sent
    try:
        execute_from_command_line(["manage.py", "run_outbox_relay", *arguments])
    finally:
        with open(trace_path, "w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
