"""Sets of ICD-10-CM codes written the way the catalogue writes them.

A `CodeSet` is built once from a short spec and answers membership in constant time
after the first question about a code. The spec is a space-separated list of items:

- `C22`, `C78.0`, `M84.5`: the code and everything below it (a prefix of the dotted code);
- `K70-K77`, `D35.2-D35.4`: a range, compared on as many characters as its bounds have,
  so `C00-C76` holds C4A (it sorts between C49 and C50) but not C7A, exactly as the
  catalogue reads ranges of categories;
- `C50.?1`: `?` matches any one character (C50.x1x, the female-breast codes);
- `!C7A.026`: removes what the item would match.

Speed: every code set made before the first code is described (the rules' and the site
families' sets, all built at import or start-up) gets a bit, and each code's description
carries the bits of every set that holds it (`memberships`). "Does the claim have any code
of this set?" is then one AND on the claim's folded bits. A set made later gets no bit and
is answered code by code, which is slower but equally right.
"""

from __future__ import annotations

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
        if "?" in self.low:
            return all(p in ("?", c) for p, c in zip(self.low, head, strict=True))
        return self.low <= head <= self.high


def _parse(token: str) -> _Item:
    low, _, high = token.partition("-")
    high = high or low
    if len(low) != len(high):
        raise ValueError(f"range bounds of different widths: {token!r}")
    return _Item(low, high)


_INDEXED: list[CodeSet] = []
_sealed = False


class CodeSet:
    """A set of normalised (dotted, upper-case) ICD-10-CM codes."""

    __slots__ = ("_excluded", "_included", "_known", "bit", "spec")

    def __init__(self, spec: str) -> None:
        self.spec = spec
        tokens = spec.replace(",", " ").split()
        if not tokens:
            raise ValueError("an empty code set")
        self._included = tuple(_parse(t) for t in tokens if not t.startswith("!"))
        self._excluded = tuple(_parse(t[1:]) for t in tokens if t.startswith("!"))
        # Remembered answers: rules ask about the same few hundred codes all day long.
        self._known: dict[str, bool] = {}
        self.bit = 0 if _sealed else 1 << len(_INDEXED)
        if self.bit:
            _INDEXED.append(self)

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


def memberships(code: str) -> int:
    """The bits of every indexed code set that holds `code`.

    The first call closes the index: sets made afterwards get no bit, because codes
    already described would not carry it.
    """
    global _sealed
    _sealed = True
    mask = 0
    for codes in _INDEXED:
        if code in codes:
            mask |= codes.bit
    return mask
