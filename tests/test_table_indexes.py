"""
The outbox table carries exactly the indexes ADR 23 lists, on every database, and migration
0011 takes ``created``'s index away and, reversed, gives it back.
"""

import pytest
from django.db import connection

from edx_event_bus_outbox.models import OutboxEvent
from tests.outbox_tools import migrate_outbox

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = "0010_lanes_of_a_topic"  # and, forward, migration 0011

# Every index an INSERT writes an entry into (the partial pending index: while the row is pending).
EXPECTED = {
    "postgresql": {
        ("id",),
        ("event_id", "topic"),
        ("topic", "lane_count", "lane_index", "id"),
        ("status", "sent_at"),
    },
    # No partial indexes: the pending index is a full one, and 0002/0010 add the claim's (status, ...).
    "mysql": {
        ("id",),
        ("event_id", "topic"),
        ("topic", "lane_count", "lane_index", "id"),
        ("status", "topic", "lane_count", "lane_index", "id"),
        ("status", "sent_at"),
    },
}
EXPECTED["sqlite"] = EXPECTED["postgresql"]


def _indexed_columns() -> set:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, OutboxEvent._meta.db_table)
    return {
        tuple(info["columns"])
        for info in constraints.values()
        if (info["index"] or info["unique"] or info["primary_key"]) and info["columns"]
    }


def test_the_table_has_the_indexes_adr_23_lists_and_none_on_created():
    assert _indexed_columns() == EXPECTED[connection.vendor]


def test_migration_0011_drops_the_created_index_and_its_reverse_restores_it():
    try:
        migrate_outbox(BEFORE)
        assert _indexed_columns() == EXPECTED[connection.vendor] | {("created",)}
    finally:
        migrate_outbox()
    assert _indexed_columns() == EXPECTED[connection.vendor]
