"""
The function django-jaiminho stores and relays in the drain benchmark.

jaiminho's outbox stores a *call*: ``@save_to_outbox_stream(stream)`` pickles the function and
its arguments (with dill) into a row of ``jaiminho_event`` in the caller's transaction
(``PUBLISH_STRATEGY = "keep-order"``, see bench/settings.py); its relay
(``EventRelayer.relay(stream)``) later unpickles each row, calls the function, and marks the row
sent, one row per transaction (``SELECT ... FOR UPDATE``, call, ``UPDATE``, ``COMMIT``).

To publish an Open edX event, the function here does what edx-event-bus-kafka's producer does
for one event (the same ``AvroSerializer`` pair, the same headers, the same topic), and then
waits for the broker's acknowledgement with ``flush()``, so a row is marked sent only once
Kafka has it -- the guarantee the other two contenders give. jaiminho calls the function once
per row and marks the row right after it returns, so there is no way to batch the waits.
"""

from jaiminho.send import save_to_outbox_stream

_PRODUCER = None


class DeliveryFailed(Exception):
    """The broker did not acknowledge the message; jaiminho leaves the row unsent."""


def _producer():
    global _PRODUCER  # noqa: PLW0603  one producer per process, made on first use
    if _PRODUCER is None:
        from confluent_kafka import Producer
        from edx_event_bus_kafka.internal.config import load_common_settings

        _PRODUCER = Producer(load_common_settings())
    return _PRODUCER


def publish_and_wait(signal_type, topic, event_key_field, event_data, event_metadata):
    """Encode the event as edx-event-bus-kafka would, produce it, and wait for the acknowledgement."""

    from confluent_kafka.serialization import MessageField, SerializationContext
    from edx_event_bus_kafka.internal.config import get_full_topic
    from edx_event_bus_kafka.internal.producer import extract_event_key, get_serializers
    from edx_event_bus_kafka.internal.utils import _get_headers_from_metadata
    from openedx_events.tooling import OpenEdxPublicSignal

    signal = OpenEdxPublicSignal.get_signal_by_type(signal_type)
    full_topic = get_full_topic(topic)
    headers = _get_headers_from_metadata(event_metadata=event_metadata)
    key_serializer, value_serializer = get_serializers(signal, event_key_field)
    key = key_serializer(
        extract_event_key(event_data, event_key_field), SerializationContext(full_topic, MessageField.KEY, headers)
    )
    value = value_serializer(event_data, SerializationContext(full_topic, MessageField.VALUE, headers))
    outcome = []
    producer = _producer()
    producer.produce(
        full_topic, key=key, value=value, headers=headers, on_delivery=lambda err, _msg: outcome.append(err)
    )
    producer.flush(30)
    if not outcome or outcome[0] is not None:
        raise DeliveryFailed(outcome[0] if outcome else "no delivery report")


def stored_publisher(stream):
    """``publish_and_wait`` wrapped by jaiminho: calling it writes a row; the relay makes the real call."""
    return save_to_outbox_stream(stream)(publish_and_wait)
