"""
Count what reached Kafka against what was committed: lost, phantom, duplicates, reorders.

A per-key *reorder* is an event whose first appearance on its key's partition comes after
the first appearance of a later event of that key. Re-sends after a crash replay forward
(1 2 3 2 3 4), which is a duplicate, not a reorder. The last message of every key must be
that key's newest event.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from edx_event_bus_outbox.kafka.headers import header_values


@dataclass
class Verdict:
    committed: int = 0
    published: int = 0
    lost: list = field(default_factory=list)
    phantom: list = field(default_factory=list)
    duplicates: int = 0
    reorders: list = field(default_factory=list)
    stale_last: list = field(default_factory=list)

    def ok(self):
        return not (self.lost or self.phantom or self.reorders or self.stale_last)

    def summary(self):
        return (
            f"committed={self.committed} published={self.published} lost={len(self.lost)} "
            f"phantom={len(self.phantom)} duplicates={self.duplicates} reorders={len(self.reorders)} "
            f"stale_last={len(self.stale_last)}"
        )


def check(messages, committed_ids_in_order, rolled_back_ids=()):
    """``committed_ids_in_order``: ce_ids (strings) in commit order."""
    verdict = Verdict(committed=len(committed_ids_in_order), published=len(messages))
    position = {event_id: index for index, event_id in enumerate(committed_ids_in_order)}
    seen, by_key = set(), defaultdict(list)
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        event_id = header_values(message.headers(), "ce_id")[0]
        by_key[message.key()].append(event_id)
        if event_id in seen:
            verdict.duplicates += 1
        seen.add(event_id)
    verdict.lost = [e for e in committed_ids_in_order if e not in seen]
    verdict.phantom = [e for e in seen if e not in position or e in set(rolled_back_ids)]
    for key, sequence in by_key.items():
        first_seen = list(dict.fromkeys(sequence))
        ranks = [position.get(e, -1) for e in first_seen]
        verdict.reorders += [
            (key, a, b)
            for a, b in zip(first_seen, first_seen[1:], strict=False)
            if position.get(a, -1) > position.get(b, -1)
        ]
        newest = max(first_seen, key=lambda e: position.get(e, -1))
        if sequence[-1] != newest and ranks:
            verdict.stale_last.append((key, sequence[-1], newest))
    return verdict
