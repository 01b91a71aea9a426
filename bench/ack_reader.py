"""
``python -m bench.ack_reader BOOTSTRAP TOPIC OUTFILE``: the latency benchmark's Kafka reader.

Reads every new message of TOPIC (assigned at the end of each partition, so only messages
produced after it printed ``ready``) and writes one line per message to OUTFILE:
``ce_id <TAB> receive time (time.time()) <TAB> broker timestamp in ms``. The latency topic is
created with ``message.timestamp.type=LogAppendTime``, so the broker timestamp is the time the
broker appended the message to its log -- for a single-replica topic, the moment it sends the
acknowledgement. It runs in its own process so that it never competes with the writer for the
GIL. SIGTERM stops it.
"""

import signal
import sys
import time
import uuid


def main(bootstrap, topic, out_path):
    from confluent_kafka import OFFSET_END, Consumer, TopicPartition

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-latency-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
            "isolation.level": "read_committed",  # librdkafka's default, said out loud: what consumers see
        }
    )
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
    consumer.poll(0.5)  # resolve the end offsets before the writer starts
    print("ready", flush=True)
    with open(out_path, "w", encoding="utf-8") as out:
        while not stopping:
            msg = consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            now = time.time()
            ce_id = next((v.decode() for k, v in (msg.headers() or []) if k == "ce_id"), "")
            out.write(f"{ce_id}\t{now:.6f}\t{msg.timestamp()[1]}\n")
            out.flush()
    consumer.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
