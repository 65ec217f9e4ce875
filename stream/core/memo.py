"""Remembered answers with a budget: the hot path's caches, none of which can grow forever.

Every cache of the decision path is one of these (or a `functools.lru_cache`, for a pure
function of one string), keyed only on values the contract has already bounded in length,
with an entry budget, and evicts the least recently used entry once full. The budgets, with
what an entry holds, are listed in docs/performance.md ("Memory: the caches' budgets").
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")


class Lru(Generic[Key, Value]):
    """A map of at most `budget` entries; adding one more drops the least recently used.

    `get` returns None for a key not held, so values are never None. Lookups cost two C
    calls (`OrderedDict.get` and `move_to_end`): hot callers may hold `entries` and do the
    same inline.
    """

    __slots__ = ("budget", "entries")

    def __init__(self, budget: int) -> None:
        if budget < 1:
            raise ValueError(f"a cache budget is at least one entry, not {budget}")
        self.budget = budget
        self.entries: OrderedDict[Key, Value] = OrderedDict()

    def get(self, key: Key) -> Value | None:
        entries = self.entries
        value = entries.get(key)
        if value is not None:
            entries.move_to_end(key)
        return value

    def put(self, key: Key, value: Value) -> Value:
        """Remember `value` for `key` (the most recently used) and return it."""
        entries = self.entries
        entries[key] = value
        entries.move_to_end(key)
        while len(entries) > self.budget:
            entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def clear(self) -> None:
        self.entries.clear()
