"""
``EVENT_BUS_OUTBOX_CONSUMER_METRICS_PORT``: the endpoints of a real ``consume_events`` process,
scraped while it consumes from the real broker.
"""

import socket
import time

import pytest

from tests.consumer.helpers import new_group, produce_raw
from tests.consumer.poison import good_message, without_header
from tests.consumer.subprocesses import journal_lines, start_consumer, stop, wait_for
from tests.metrics_tools import healthz, sample, scrape
from tests.tcp_proxy import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kafka]

PREFIX = "edx_event_bus_outbox_consumer_"


def metric(port, name, **labels):
    status, _ = healthz(port)
    return sample(scrape(port), PREFIX + name, **labels) if status is not None else None


@pytest.mark.parametrize("dead_letters", [True, False], ids=["dead-letter-topic", "no-dead-letter-topic"])
def test_the_consumer_counts_what_became_of_each_message(kafka_stack, topic, tmp_path, dead_letters):
    goods = [good_message(topic) for _ in range(4)]
    failing = goods[3]
    unusable = {**goods[0].message, "headers": without_header(goods[0].message["headers"], "ce_type")}
    produce_raw(topic, [good.message for good in goods[:3]] + [unusable, failing.message], partition=0)
    dead_letter_topic = f"{topic}-dlt" if dead_letters else None
    if dead_letter_topic:
        kafka_stack.create_topic(dead_letter_topic)
    port = free_port()
    settings = {
        "EVENT_BUS_OUTBOX_CONSUMER_METRICS_PORT": port,
        "EVENT_BUS_OUTBOX_CONSUMER_MAX_RETRIES": 2,
        "EVENT_BUS_OUTBOX_CONSUMER_RETRY_BACKOFF_SECONDS": 0.01,
        "EVENT_BUS_OUTBOX_CONSUMER_DEAD_LETTER_TOPIC": dead_letter_topic,
    }
    consumer = start_consumer(
        topic, new_group(), tmp_path / "journal", settings=settings, OUTBOX_TEST_FAIL_EVENT=str(failing.metadata.id)
    )
    rejected = "dead_lettered" if dead_letters else "skipped"
    other = "skipped" if dead_letters else "dead_lettered"
    try:
        assert wait_for_value(port, f"messages_{rejected}_total", 1, topic=topic, reason="receiver_failed")
        samples = {name: value for (name, _), value in scrape(port).items()}
        assert all(name.startswith("edx_event_bus_outbox_") for name in samples), sorted(samples)
        assert metric(port, "messages_processed_total", topic=topic) == 3
        assert metric(port, f"messages_{rejected}_total", topic=topic, reason="missing_event_type") == 1
        assert metric(port, f"messages_{other}_total", topic=topic, reason="receiver_failed") is None
        assert metric(port, "messages_retried_total", topic=topic) == 1  # the failing message, retried twice
        assert metric(port, "messages_duplicate_total", topic=topic) == 0
        since = metric(port, "seconds_since_last_message", topic=topic)
        assert 0 <= since < 30
        time.sleep(1.5)
        assert metric(port, "seconds_since_last_message", topic=topic) >= since + 1, "no message came since"
        status, reason = healthz(port)
        assert status == 200 and reason.startswith("ok: polled Kafka"), (status, reason)
    finally:
        output = stop(consumer)
    assert consumer.returncode == 0, output
    assert healthz(port)[0] is None, "the endpoint outlived the consumer"
    assert sum(line.startswith("end ") for line in journal_lines(tmp_path / "journal")) == 3


def wait_for_value(port, name, value, timeout=60.0, **labels):
    try:
        wait_for(lambda: metric(port, name, **labels) == value, timeout, what=f"{name}{labels} == {value}")
    except AssertionError:
        return False
    return True


def test_healthz_is_503_while_the_consumer_has_not_polled_for_max_poll_interval(kafka_stack, topic, tmp_path):
    """A receiver that runs longer than max.poll.interval.ms: Kafka gives the partitions away, /healthz says so."""
    produce_raw(topic, [good_message(topic).message], partition=0)
    port, journal = free_port(), tmp_path / "journal"
    config = {"auto.offset.reset": "earliest", "max.poll.interval.ms": 6000, "session.timeout.ms": 6000}
    settings = {"EVENT_BUS_OUTBOX_CONSUMER_METRICS_PORT": port, "EVENT_BUS_OUTBOX_CONSUMER_KAFKA_CONFIG": config}
    consumer = start_consumer(topic, new_group(), journal, settings=settings, OUTBOX_TEST_SLOW_SECONDS="9")
    try:
        wait_for(lambda: healthz(port)[0] == 200, 60, what="the first poll")
        wait_for(lambda: journal_lines(journal), 60, what="the receiver to start")
        wait_for(lambda: healthz(port)[0] == 503, 9, what="healthz to say the consumer stopped polling")
        reason = healthz(port)[1]
        assert reason.startswith("unhealthy: the consumer has not polled Kafka for"), reason
        assert "more than max.poll.interval.ms (6s)" in reason, reason
        wait_for(lambda: any(line.startswith("end ") for line in journal_lines(journal)), 15, what="the receiver")
        wait_for(lambda: healthz(port)[0] == 200, 10, what="healthz once the consumer polls again")
    finally:
        output = stop(consumer, timeout=30)
    assert consumer.returncode == 0, output


def test_a_metrics_port_another_process_holds_stops_the_consumer_before_it_joins_its_group(topic, tmp_path):
    produce_raw(topic, [good_message(topic).message], partition=0)
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        consumer = start_consumer(
            topic, new_group(), tmp_path / "journal", settings={"EVENT_BUS_OUTBOX_CONSUMER_METRICS_PORT": port}
        )
        output, _ = consumer.communicate(timeout=120)  # it stops by itself
    # openedx-events' consume_events logs any error of the consumer and exits 0.
    assert "Error consuming events" in output
    assert not journal_lines(tmp_path / "journal"), "it consumed a message"
    assert f"MetricsServerError: Could not serve /metrics and /healthz on 0.0.0.0:{port} (Address already in use)" in (
        output
    )
