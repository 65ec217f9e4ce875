"""The stage's CPT and HCPCS reference table (catalogue Appendix B).

CPT descriptors are the AMA's; `data/cpt_reference.csv` carries the project's own short
paraphrases, a category for enrichment and dashboards, the add-on flag with the primary
procedures an add-on needs (MET-004), and the dates a code is active (MET-003): the date
it became active and the deletion date of deleted codes. An empty `active_from` means the
code was active before 2022-10-01, the first date the stage judges (the exact date is not
recorded). Procedure codes are matched exactly as received.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import re
from dataclasses import dataclass
from importlib import resources

from stream.core.contracts import MAX_CODE_LENGTH
from stream.core.memo import Lru

CPT_RELEASE = "2026"

CPT_FORMAT = re.compile(r"^[0-9]{4}[0-9FTU]$")
"""CPT Category I (five digits), II (…F), III (…T) and PLA (…U)."""
HCPCS_FORMAT = re.compile(r"^[A-V][0-9]{4}$")
"""HCPCS Level II: a letter and four digits."""

PROCEDURE_ANSWERS_KEPT = 1_024
"""Entry budget of each procedure set's remembered answers (a code of at most 10 characters
and a boolean, about 100 bytes an entry): claims bill the same few hundred codes."""
UNKNOWN_CODES_KEPT = 16_384
"""Entry budget of the descriptions of codes outside the reference table remembered (a code
of at most 10 characters and its `ProcedureInfo`, about 300 bytes an entry)."""
UNKNOWN_CODE = "unknown to the reference table"
UNRECOGNISED_FORMAT = "unrecognised procedure code format"


class ProcedureCodes:
    """A set of procedure codes: exact codes and numeric ranges of all-digit codes.

    Spec items are separated by spaces: `38500`, `38570-38572`, `!47000`. Ranges hold
    only five-digit codes, so a Category II code such as 1234F is never in `10021-69990`.
    """

    __slots__ = ("_exact", "_excluded", "_ranges", "_remembered", "spec")

    def __init__(self, spec: str) -> None:
        self.spec = spec
        exact: set[str] = set()
        excluded: set[str] = set()
        ranges: list[tuple[int, int]] = []
        for token in spec.split():
            if token.startswith("!"):
                excluded.add(token[1:])
            elif "-" in token:
                low, high = token.split("-")
                ranges.append((int(low), int(high)))
            else:
                exact.add(token)
        self._exact = frozenset(exact)
        self._excluded = frozenset(excluded)
        self._ranges = tuple(ranges)
        self._remembered = functools.lru_cache(maxsize=PROCEDURE_ANSWERS_KEPT)(self._matches)

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, str):
            return False
        if len(code) > MAX_CODE_LENGTH:  # not from a contract-checked event: not remembered
            return self._matches(code)
        return self._remembered(code)

    def codes(self) -> frozenset[str]:
        """Every code in the set, ranges spelled out (for small, explicit sets)."""
        spelled = {f"{n:05d}" for low, high in self._ranges for n in range(low, high + 1)}
        return frozenset((self._exact | spelled) - self._excluded)

    def _matches(self, code: str) -> bool:
        if code in self._excluded:
            return False
        if code in self._exact:
            return True
        if len(code) == 5 and code.isdigit():
            number = int(code)
            return any(low <= number <= high for low, high in self._ranges)
        return False

    def __repr__(self) -> str:
        return f"ProcedureCodes({self.spec!r})"


@dataclass(frozen=True, slots=True)
class ProcedureInfo:
    """What the stage knows about one procedure code."""

    code: str
    known: bool
    description: str | None
    category: str | None
    add_on_primaries: ProcedureCodes | None
    """The procedures one of which must be on the claim for this add-on code (MET-004)."""
    active_from: dt.date | None
    """The first day the code may be billed; None: before any date the stage judges."""
    deleted_on: dt.date | None

    @property
    def add_on(self) -> bool:
        return self.add_on_primaries is not None


class CptCatalog:
    """Lookups in the reference table; a code not in it is reported, never an error."""

    def __init__(self) -> None:
        self.release = CPT_RELEASE
        text = (
            resources.files("stream.core.codes")
            .joinpath("data/cpt_reference.csv")
            .read_text("utf-8")
        )
        self._entries: dict[str, ProcedureInfo] = {}
        """The reference table: fixed, not a cache."""
        self._unknown: Lru[str, ProcedureInfo] = Lru(UNKNOWN_CODES_KEPT)
        self._unknown_entries = self._unknown.entries
        for row in csv.DictReader(text.splitlines()):
            primaries = row["add_on_primaries"].strip()
            active = row["active_from"].strip()
            deleted = row["deleted_on"].strip()
            self._entries[row["code"]] = ProcedureInfo(
                code=row["code"],
                known=True,
                description=row["description"],
                category=row["category"],
                add_on_primaries=ProcedureCodes(primaries) if primaries else None,
                active_from=dt.date.fromisoformat(active) if active else None,
                deleted_on=dt.date.fromisoformat(deleted) if deleted else None,
            )

    def lookup(self, code: str) -> ProcedureInfo:
        entry = self._entries.get(code)
        if entry is not None:
            return entry
        unknown = self._unknown_entries  # the hot path: `Lru.get` inline
        entry = unknown.get(code)
        if entry is not None:
            unknown.move_to_end(code)
            return entry
        well_formed = bool(CPT_FORMAT.match(code) or HCPCS_FORMAT.match(code))
        entry = ProcedureInfo(
            code=code,
            known=False,
            description=UNKNOWN_CODE if well_formed else UNRECOGNISED_FORMAT,
            category=None,
            add_on_primaries=None,
            active_from=None,
            deleted_on=None,
        )
        # Codes outside the table recur too (most drug and lab codes): remembered, within a
        # budget, so arbitrary input cannot grow the memory forever.
        if len(code) <= MAX_CODE_LENGTH:  # a code the contract let through
            self._unknown.put(code, entry)
        return entry
