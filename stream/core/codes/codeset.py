"""Sets of ICD-10-CM codes written the way the catalogue writes them.

A `CodeSet` is built once from a short spec and answers membership in constant time
after the first question about a code. The spec is a space-separated list of items:

- `C22`, `C78.0`, `M84.5`: the code and everything below it (a prefix of the dotted code);
- `K70-K77`, `D35.2-D35.4`: a range, compared on as many characters as its bounds have,
  so `C00-C76` holds C4A (it sorts between C49 and C50) but not C7A, exactly as the
  catalogue reads ranges of categories;
- `C50.#1`: `#` matches any one digit (C50.x1x, the female-breast codes, and not the
  inflammatory C50.A1 of FY2026, whose A is no site); `?` matches any one character;
- `!C7A.026`: removes what the item would match;
- `M84.5-`, `T86.-`: a trailing dash says "and everything below" in print; they match as
  `M84.5` and `T86`.

A set knows its display form (`str(codes)`: `C71.0-C71.5, C71.8, C83.390`; `Z51 other
than Z51.0, Z51.11`), so that messages and documentation render a list from the set that
decides, never retype it. Sets compose: `NET_PRIMARY | NET_HISTORY` holds the codes of
both, `Z51 - TREATMENT` those of `Z51` outside `TREATMENT`; a composed set remembers its
`parts`.

Speed: a `CodeIndex`, built by the stage from the code sets its traits, site families and
rules declare, gives each set a bit, and each code's description carries the bits of
every indexed set that holds it (`memberships`). "Does the claim have any code of this
set?" is then one AND on the claim's folded bits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stream.core.contracts import MAX_NORMAL_CODE_LENGTH
from stream.core.memo import Lru

CODE_SET_ANSWERS_KEPT = 512
"""Entry budget of each set's remembered answers (a code of at most 11 characters and a
boolean, about 100 bytes an entry). The claims' hot path asks the code index instead
(one bit per set, worked out once per code), so few questions reach a set itself."""


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


def _tokens(spec: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The included and the excluded items of a spec, as written."""
    tokens = spec.replace(",", " ").split()
    included = tuple(t for t in tokens if not t.startswith("!"))
    excluded = tuple(t[1:] for t in tokens if t.startswith("!"))
    return included, excluded


def written(item: str) -> str:
    """An item as prose writes it: `C50.#1` is `C50.x1` (x: any digit)."""
    return item.replace("#", "x")


def display_spec(spec: str, show: Callable[[str], str | None] = written) -> str:
    """A spec as prose writes it: `C71.0-C71.5, C71.8`; `Z51 other than Z51.0, Z51.11`.

    `show` renders one item (a code, a prefix or a range, as written), or drops it by
    returning None; procedure-code specs (`ProcedureCodes`) use the same syntax.
    """
    included, excluded = _tokens(spec)
    shown = [text for text in map(show, included) if text]
    left_out = [text for text in map(show, excluded) if text]
    listing = ", ".join(shown)
    return f"{listing} other than {', '.join(left_out)}" if left_out else listing


def _parse(token: str) -> _Item:
    if token.endswith("-"):  # `M84.5-`, `T86.-`: a prefix, written as print writes it
        token = token[:-1].removesuffix(".")
    low, _, high = token.partition("-")
    high = high or low
    if len(low) != len(high):
        raise ValueError(f"range bounds of different widths: {token!r}")
    return _Item(low, high)


class CodeSet:
    """A set of normalised (dotted, upper-case) ICD-10-CM codes."""

    __slots__ = (
        "_excluded",
        "_included",
        "_known",
        "_text",
        "excluded",
        "included",
        "parts",
        "spec",
    )

    def __init__(self, spec: str, parts: tuple[CodeSet, ...] = ()) -> None:
        self.spec = spec
        # The items as written (`M84.5-`, `C71.0-C71.5`), for display.
        self.included, self.excluded = _tokens(spec)
        if not self.included:
            raise ValueError(f"a code set with no codes: {spec!r}")
        self._included = tuple(map(_parse, self.included))
        self._excluded = tuple(map(_parse, self.excluded))
        # The named sets this one was composed from (`|`, `-`); empty for a written set.
        self.parts = parts
        # Remembered answers: rules ask about the same few hundred codes all day long.
        self._known: Lru[str, bool] = Lru(CODE_SET_ANSWERS_KEPT)
        self._text: str | None = None

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, str):
            return False
        known = self._known.get(code)
        if known is None:
            known = self.holds(code)
            if len(code) <= MAX_NORMAL_CODE_LENGTH:  # a code the contract let through
                self._known.put(code, known)
        return known

    def holds(self, code: str) -> bool:
        """Whether the set holds the code, worked out (not remembered): for questions asked
        once per code, such as its memberships in the code index."""
        return any(i.matches(code) for i in self._included) and not any(
            e.matches(code) for e in self._excluded
        )

    def match_width(self, code: str) -> int:
        """How many characters of `code` the most specific matching item names; 0 if none.

        Used where the catalogue says "longer prefixes win" (site families).
        """
        if code not in self:
            return 0
        return max(len(i.low) for i in self._included if i.matches(code))

    def __or__(self, other: CodeSet) -> CodeSet:
        """The codes of either set. Only sets without exclusions compose this way: an
        exclusion of one would take codes away from the other."""
        if self.excluded or other.excluded:
            raise ValueError(f"cannot join sets with exclusions: {self!r} | {other!r}")
        return CodeSet(f"{self.spec} {other.spec}", parts=(*self._named(), *other._named()))

    def __sub__(self, other: CodeSet) -> CodeSet:
        """The codes of this set outside `other` (a set without exclusions of its own)."""
        if other.excluded:
            raise ValueError(f"cannot take away a set with exclusions: {other!r}")
        removed = " ".join(f"!{item}" for item in other.included)
        return CodeSet(f"{self.spec} {removed}", parts=(*self._named(), other))

    def _named(self) -> tuple[CodeSet, ...]:
        return self.parts if self.parts and not self.excluded else (self,)

    def __str__(self) -> str:
        # Messages name sets on the hot path: the text is worked out once.
        if self._text is None:
            self._text = display_spec(self.spec)
        return self._text

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
            if codes.holds(code):  # asked once per code described: nothing to remember
                mask |= bit
        return mask
