"""The relay: claims pending outbox rows lane by lane and publishes them to Kafka."""
