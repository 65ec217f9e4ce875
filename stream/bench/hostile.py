"""Hostile records: encounter events a careless or malicious producer could send.

Each is a well-formed encounter event of the example stream whose 24 diagnosis codes are
long strings of garbage, so that the record is about `size_bytes` long. Nothing in the JSON
is wrong; only the codes' lengths are absurd. Before the contract bounded the codes, such a
record was decided, its codes were echoed in the decision's descriptions and messages (a
decision of about three times the input), and each garbage code went into the hot path's
caches.

The garbage is random letters and digits (seeded: the same call gives the same records), so
compression does not shrink the outputs below the topics' limits.
"""

from __future__ import annotations

import random
import string

import orjson

from stream.bench.claims import typical_events

DIAGNOSES = 24
ALPHABET = string.ascii_uppercase + string.digits


def hostile_events(count: int, size_bytes: int = 880_000, seed: int = 19) -> list[bytes]:
    """`count` encoded encounter events of about `size_bytes` each, unique IDs."""
    events = typical_events()
    chance = random.Random(seed)
    records: list[bytes] = []
    for n in range(count):
        event = dict(events[n % len(events)])
        event["event_id"] = f"hostile-{n}"
        event["claim_id"] = f"CLM-HOSTILE-{n}"
        skeleton = len(orjson.dumps(event))
        length = max((size_bytes - skeleton) // DIAGNOSES - 40, 8)
        event["diagnoses"] = [
            {"sequence": sequence, "code": "".join(chance.choices(ALPHABET, k=length))}
            for sequence in range(1, DIAGNOSES + 1)
        ]
        pointers = list(range(1, 5))
        event["procedures"] = [
            dict(line, diagnosis_pointers=pointers) for line in event.get("procedures", [])
        ]
        records.append(orjson.dumps(event))
    return records
