"""
Confluent's wire framing of a registry-backed value: magic byte 0, the 4-byte big-endian
schema id, then the Avro binary.
"""

MAGIC_BYTE = 0
FRAME_SIZE = 5


def is_framed(value: bytes) -> bool:
    """Whether ``value`` can be Confluent-framed Avro: the magic byte and at least one byte of body."""
    return len(value) > FRAME_SIZE and value[0] == MAGIC_BYTE


def framed_schema_id(value: bytes) -> int:
    """The registry schema id a framed value names."""
    return int.from_bytes(value[1:FRAME_SIZE], "big")
