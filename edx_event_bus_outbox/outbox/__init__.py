"""The write path: the ``OutboxEvent`` table and the producer that fills it."""
