"""Sets of ICD-10-CM codes written the way the catalogue writes them.

A `CodeSet` is built once from a short spec and answers membership in constant time
after the first question about a code. The spec is a space-separated list of items:

- `C22`, `C78.0`, `M84.5`: the code and everything below it (a prefix of the dotted code);
- `K70-K77`, `D35.2-D35.4`: a range, compared on as many characters as its bounds have,
  so `C00-C76` holds C4A (it sorts between C49 and C50) but not C7A, exactly as the
  catalogue reads ranges of categories;
- `C50.#1`: `#` matches any one digit (C50.x1x, the female-breast codes, and not the
  inflammatory C50.A1 of FY2026, whose A is no site); `?` matches any one character;
- `!C7A.026`: removes what the item would match.

Speed: a `CodeIndex`, built by the stage from the code sets its traits, site families and
rules declare, gives each set a bit, and each code's description carries the bits of
every indexed set that holds it (`memberships`). "Does the claim have any code of this
set?" is then one AND on the claim's folded bits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Item:
    low: str
    high: str  # equal to `low` for a prefix item

    def matches(self, code: str) -> bool:
        width = len(self.low)
        head = code[:width]
        if len(head) < width:
            return False
        if self.wild:
            return all(
                p == c or p == "?" or (p == "#" and c.isdigit())
                for p, c in zip(self.low, head, strict=True)
            )
        return self.low <= head <= self.high

    @property
    def wild(self) -> bool:
        return "?" in self.low or "#" in self.low


def _parse(token: str) -> _Item:
    low, _, high = token.partition("-")
    high = high or low
    if len(low) != len(high):
        raise ValueError(f"range bounds of different widths: {token!r}")
    return _Item(low, high)


class CodeSet:
    """A set of normalised (dotted, upper-case) ICD-10-CM codes."""

    __slots__ = ("_excluded", "_included", "_known", "spec")

    def __init__(self, spec: str) -> None:
        self.spec = spec
        tokens = spec.replace(",", " ").split()
        if not tokens:
            raise ValueError("an empty code set")
        self._included = tuple(_parse(t) for t in tokens if not t.startswith("!"))
        self._excluded = tuple(_parse(t[1:]) for t in tokens if t.startswith("!"))
        # Remembered answers: rules ask about the same few hundred codes all day long.
        self._known: dict[str, bool] = {}

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, str):
            return False
        known = self._known.get(code)
        if known is None:
            known = any(i.matches(code) for i in self._included) and not any(
                e.matches(code) for e in self._excluded
            )
            if len(self._known) < 200_000:  # bounded: arbitrary strings cannot grow it forever
                self._known[code] = known
        return known

    def match_width(self, code: str) -> int:
        """How many characters of `code` the most specific matching item names; 0 if none.

        Used where the catalogue says "longer prefixes win" (site families).
        """
        if code not in self:
            return 0
        return max(len(i.low) for i in self._included if i.matches(code))

    def __repr__(self) -> str:
        return f"CodeSet({self.spec!r})"


class CodeIndex:
    """The code sets the stage asks about, one bit each (sets with equal specs share one).

    Built once by the stage from the sets it declares; `memberships(code)` is computed once
    per code described, and a claim folds its codes' memberships with OR.
    """

    __slots__ = ("bits", "sets")

    def __init__(self, code_sets: Iterable[CodeSet]) -> None:
        self.bits: dict[CodeSet, int] = {}
        by_spec: dict[str, int] = {}
        for codes in code_sets:
            self.bits[codes] = by_spec.setdefault(codes.spec, 1 << len(by_spec))
        self.sets = tuple(self.bits)

    def __contains__(self, codes: object) -> bool:
        return codes in self.bits

    def bit(self, codes: CodeSet) -> int:
        """The set's bit; a set the stage did not declare is an error, not a slow path."""
        try:
            return self.bits[codes]
        except KeyError:
            raise KeyError(f"{codes!r} is not in the code index") from None

    def memberships(self, code: str) -> int:
        """The bits of every indexed code set that holds `code`."""
        mask = 0
        for codes, bit in self.bits.items():
            if code in codes:
                mask |= bit
        return mask
