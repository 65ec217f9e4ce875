"""How the rules write code lists: from the set that decides, for the claim's date.

A rule's message or documentation that names a list of codes renders it from the
`CodeSet` (or `ProcedureCodes`) its check reads, never retypes it, so that what the stage
says and what it does cannot part. Codes are facts of a date:

- a message lists only the items that name a code valid in the claim's code set
  (`valid_on`): a FY2024 claim is not told to code C83.390, which takes effect on
  2024-10-01;
- the documentation lists every item, with the dates of those that do not exist in every
  loaded code set (`dated`): `C83.390 (from 2024-10-01)`.
"""

from __future__ import annotations

from collections.abc import Callable

from stream.core.claim import Claim
from stream.core.codes.calendar import ONE_DAY, CodeCalendar
from stream.core.codes.codeset import CodeSet, display_spec, written
from stream.core.codes.cpt import CptCatalog, ProcedureCodes

CodeList = CodeSet | ProcedureCodes
"""A list of diagnosis or procedure codes a rule reads."""


def plain(codes: CodeList) -> str:
    """Every item as written: `C71.0-C71.5, C71.8`; `49082, 49083, 32554-32557`."""
    return display_spec(codes.spec)


def item_codes(item: str) -> tuple[str, ...]:
    """The codes an ICD-10-CM item names, to look up by date: a code or prefix, or the two
    bounds of a range. None for a chapter (`O`) or a pattern (`C50.#1`), which name no
    single code."""
    if item.endswith("-"):
        item = item[:-1].removesuffix(".")
    low, _, high = item.partition("-")
    if len(low) < 3 or any(c in low for c in "#?"):
        return ()
    return (low, high) if high else (low,)


def _valid_mask(calendar: CodeCalendar, item: str) -> int | None:
    """The code-set periods in which an item names a valid code; None when it names no
    single code (it is then shown whatever the date)."""
    codes = item_codes(item)
    if not codes:
        return None
    mask = 0
    for code in codes:
        mask |= calendar.valid_mask(code)
    return mask


def valid_on(codes: CodeSet, claim: Claim) -> str:
    """The set's items that name a code valid in the claim's code set, for a message."""
    period = claim.code_set

    def shown(item: str) -> str | None:
        mask = _valid_mask(claim.calendar, item)
        return written(item) if mask is None or mask & period.bit else None

    return display_spec(codes.spec, shown)


class DatedListing:
    """Writes code lists for documents: every item, dated where it is not valid in every
    loaded code set (diagnoses) or not active on every loaded date (procedures)."""

    def __init__(self, calendar: CodeCalendar, cpt: CptCatalog) -> None:
        self.calendar = calendar
        self.cpt = cpt
        self._every = (1 << len(calendar.periods)) - 1

    def __call__(self, codes: CodeList) -> str:
        return display_spec(
            codes.spec, self._diagnosis if isinstance(codes, CodeSet) else self._procedure
        )

    def _diagnosis(self, item: str) -> str:
        mask = _valid_mask(self.calendar, item)
        if mask is None or mask == self._every:
            return written(item)
        if not mask:
            return f"{written(item)} (in no loaded code set)"
        periods = self.calendar.periods_in(mask)
        start, end = periods[0].start, periods[-1].end
        if start == self.calendar.first:
            return f"{written(item)} (until {end})"
        if end == self.calendar.last:
            return f"{written(item)} (from {start})"
        return f"{written(item)} ({start}..{end})"

    def _procedure(self, item: str) -> str:
        info = self.cpt.lookup(item)
        first, last = self.calendar.first, self.calendar.last
        if info.active_from is not None and info.active_from > first:
            return f"{item} (from {info.active_from})"
        if info.deleted_on is not None and info.deleted_on <= first:
            return f"{item} (deleted {info.deleted_on})"
        if info.deleted_on is not None and info.deleted_on <= last:
            return f"{item} (until {info.deleted_on - ONE_DAY})"
        return item


def dated(calendar: CodeCalendar, cpt: CptCatalog) -> Callable[[CodeList], str]:
    """A writer of code lists for documents (`DatedListing`)."""
    return DatedListing(calendar, cpt)


# --- named sets that rules of more than one module read ---------------------------------

MALIGNANT_PLEURAL_EFFUSION = CodeSet("J91.0")
MALIGNANT_PERICARDIAL_EFFUSION = CodeSet("I31.31")
MALIGNANT_ASCITES = CodeSet("R18.0")
MALIGNANT_EFFUSIONS = (
    MALIGNANT_PLEURAL_EFFUSION | MALIGNANT_ASCITES | MALIGNANT_PERICARDIAL_EFFUSION
)
"""Effusions and ascites coded as malignant: manifestations (MET-017) and the encounters of
I.C.2.f (MET-013)."""

RADIATION_ENCOUNTER = CodeSet("Z51.0")
"""Encounter for antineoplastic radiation therapy (external beam: MET-015, MET-035)."""
THERAPY_ENCOUNTER = RADIATION_ENCOUNTER | CodeSet("Z51.11 Z51.12")
"""Encounters for antineoplastic radiation, chemotherapy and immunotherapy."""
PALLIATIVE_CARE = CodeSet("Z51.5")
TREATMENT_ENCOUNTER = THERAPY_ENCOUNTER | PALLIATIVE_CARE
"""Encounters for treatment, which a follow-up code (Z08, MET-012) cannot stand beside."""

FRACTURE_IN_NEOPLASM = CodeSet("M84.5-")
"""Pathological fracture in neoplastic disease."""
SECONDARY_BONE = CodeSet("C79.51")
SECONDARY_MARROW = CodeSet("C79.52")
SECONDARY_MERKEL = CodeSet("C7B.1")
"""Secondary Merkel cell carcinoma: no organ-specific code (MET-006, MET-030)."""
