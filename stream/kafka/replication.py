"""How many copies of a topic a cluster keeps, and how many must take a write: one rule for
the local cluster's own defaults and the topics the stage creates anywhere."""

from __future__ import annotations

REPLICAS = 3
"""Three copies: one node may be down for maintenance while another fails, and no write that
was acknowledged is lost."""


def default_replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min in-sync replicas) for a cluster of `brokers` brokers.

    With three or more brokers: three replicas, two of which must take every write
    (`acks=all`), so a write survives the loss of any one broker and the stage keeps
    writing while one is down. With fewer, every broker holds a copy and one suffices.
    """
    factor = min(max(brokers, 1), REPLICAS)
    return factor, default_min_insync(factor)


def default_min_insync(factor: int) -> int:
    """Two of three or more replicas must take a write; with fewer, one suffices (two of
    two would stop every write while either broker is down)."""
    return 2 if factor >= REPLICAS else 1
