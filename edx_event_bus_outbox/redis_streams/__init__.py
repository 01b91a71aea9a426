"""
The one place that knows Redis Streams as edx-event-bus-redis 1.1 writes and reads them:
the stream name, the entry's fields, the Avro bytes of ``event_data``, trimming, the client
and what its errors mean. The relay's Redis sink (``relay/redis_sink.py``) builds on it, as
its Kafka sink builds on ``kafka/``.
"""
