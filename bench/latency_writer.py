"""
``python -m bench.latency_writer TOPIC RATE COUNT START_AT OFFSET OUTFILE``: one writer process of
the latency benchmark. It commits COUNT events, one per transaction, through our ``send()``,
paced at RATE/s on a schedule that starts at the epoch time START_AT shifted by OFFSET seconds,
and writes ``ce_id <TAB> commit time`` lines (``time.time()`` right after COMMIT returned) to
OUTFILE. Several run side by side so that one Python process's speed does not cap the rate.
"""

import os
import sys
import time


def main(topic, rate, count_, start_at, offset, out_path):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()

    from django.db import transaction

    from bench import common
    from edx_event_bus_outbox import create_producer

    send, atomic, signal = create_producer().send, transaction.atomic, common.signal()
    pool = common.make_event_data(100)
    with atomic():  # connect and warm the code path before the schedule starts
        common.execute("SELECT 1")
    lines = []
    start = start_at + offset
    for index in range(count_):
        delay = start + index / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        meta = common.metadata()
        with atomic():
            send(
                signal=signal,
                topic=topic,
                event_key_field=common.KEY_FIELD,
                event_data=pool[index % len(pool)],
                event_metadata=meta,
            )
        lines.append(f"{meta.id}\t{time.time():.6f}\n")
    with open(out_path, "w", encoding="utf-8") as out:
        out.writelines(lines)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
