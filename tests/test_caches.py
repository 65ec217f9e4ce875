"""The hot path's caches: each keeps at most its budget, drops the least recently used entry
first, and remembers only keys the contract has bounded. And no rule's cost grows faster
than the claim: MET-004 asks once per add-on code, not once per line."""

from __future__ import annotations

import datetime as dt
import gc
import random
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from stream.core.claim import build_claim
from stream.core.codes.codeset import CodeIndex, CodeSet
from stream.core.codes.cpt import PROCEDURE_ANSWERS_KEPT, ProcedureCodes
from stream.core.contracts import (
    MAX_CODE_LENGTH,
    NORMAL_FORMS_KEPT,
    Decision,
    EncounterEvent,
    FileSource,
    _remembered_normal_form,
    normalize_icd10cm,
)
from stream.core.decision import CodeDetails, Decider
from stream.core.memo import Lru
from stream.core.rules import RULES_BY_ID
from stream.core.rules.base import WORD_ANSWERS_KEPT, WORD_CACHE_TEXT_LENGTH, any_of
from tests.claims import encode, encounter

SOURCE = FileSource(file="caches.jsonl", line=1)


# --- the cache ---------------------------------------------------------------------------------


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: Lru[str, int] = Lru(3)
    for n, key in enumerate("abc"):
        cache.put(key, n)
    assert cache.get("a") == 0  # a is now the most recently used
    cache.put("d", 3)
    assert list(cache.entries) == ["c", "a", "d"]  # b, the least recently used, went
    assert cache.get("b") is None
    cache.put("c", 9)  # a new value is a use too
    cache.put("e", 4)
    assert list(cache.entries) == ["d", "c", "e"]
    assert len(cache) == 3
    with pytest.raises(ValueError, match="at least one entry"):
        Lru(0)


# --- each cache of the hot path -------------------------------------------------------------


def test_normal_forms_keep_their_budget_and_the_newest_codes() -> None:
    codes = [f"Z{n:06d}" for n in range(NORMAL_FORMS_KEPT + 100)]
    for code in codes:
        normalize_icd10cm(code)
    assert _remembered_normal_form.cache_info().currsize == NORMAL_FORMS_KEPT
    hits = _remembered_normal_form.cache_info().hits
    assert normalize_icd10cm(codes[-1]) == f"{codes[-1][:3]}.{codes[-1][3:]}"
    assert _remembered_normal_form.cache_info().hits == hits + 1  # the newest is held
    long = " " * MAX_CODE_LENGTH + "c34.11"
    misses = _remembered_normal_form.cache_info().misses
    assert normalize_icd10cm(long) == "C34.11"
    assert _remembered_normal_form.cache_info().misses == misses  # not from an event: not kept


def test_word_finders_keep_their_budget_and_only_short_texts() -> None:
    finder = any_of(("metastatic",))
    for n in range(WORD_ANSWERS_KEPT + 50):
        assert finder.search(f"visit {n}: metastatic") is not None
    remembered = finder._remembered.cache_info()
    assert remembered.currsize == WORD_ANSWERS_KEPT
    long = "x " * WORD_CACHE_TEXT_LENGTH + "metastatic"
    assert finder.search(long) is not None
    assert finder._remembered.cache_info().misses == remembered.misses  # searched, not kept


def _valid_codes(decider: Decider, count: int) -> list[str]:
    codes = sorted(decider.icd10cm.calendar._billable)
    return random.Random(19).sample(codes, count)


def test_code_descriptions_keep_their_budget_and_the_newest_codes(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = decider.icd10cm
    monkeypatch.setattr(catalog._infos, "budget", 4)
    codes = _valid_codes(decider, 10)
    for code in codes:
        catalog.lookup(code)
    assert len(catalog._infos) <= 4
    assert codes[-1] in catalog._infos
    assert codes[0] not in catalog._infos
    bare = codes[-2].replace(".", "").lower()
    assert catalog.lookup(bare).code == codes[-2]
    assert bare in catalog._infos  # the form as sent, beside the normal form
    padded = codes[-3].ljust(MAX_CODE_LENGTH + 2)
    assert catalog.lookup(padded).code == codes[-3]
    assert padded not in catalog._infos  # longer than any code the contract lets through
    assert len(catalog._infos) <= 4


def test_dates_keep_their_budget_and_their_periods(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = decider.icd10cm.calendar
    monkeypatch.setattr(calendar._by_date, "budget", 4)
    days = [calendar.first + dt.timedelta(days=97 * n) for n in range(12)]
    days.append(calendar.last + dt.timedelta(days=1))
    first = [calendar.period_of(day) for day in days]
    again = [calendar.period_of(day) for day in days]
    assert first == again
    assert first[-1] is None  # outside the loaded code sets, remembered as such
    assert first[0] is not None
    assert first[0].start <= days[0] <= first[0].end
    assert len(calendar._by_date) <= 4
    assert days[-1] in calendar._by_date


def test_decision_details_keep_their_budget(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    details = CodeDetails(decider.icd10cm, decider.cpt, diagnoses_kept=5, procedures_kept=5)
    monkeypatch.setattr(decider, "_details", details)
    codes = _valid_codes(decider, 12)
    for n, code in enumerate(codes):
        event = encounter([code], [f"A{n:04d}"], event_id=f"e{n}")
        decision = Decision.model_validate_json(decider.decide(encode(event), SOURCE).value)
        assert decision.diagnoses[0].code == code
        assert decision.diagnoses[0].description == decider.icd10cm.lookup(code).description
        assert decision.procedures[0].code == f"A{n:04d}"
    assert details.diagnosis.cache_info().currsize == 5
    assert details.procedure.cache_info().currsize == 5
    hits = details.diagnosis.cache_info().hits
    decider.decide(encode(encounter([codes[-1]], event_id="again")), SOURCE)
    assert details.diagnosis.cache_info().hits == hits + 1  # the newest is held


def test_code_sets_remember_questions_within_their_budget_but_not_memberships() -> None:
    codes = CodeSet("C34 C78")
    index = CodeIndex([codes])
    assert index.memberships("C34.11") == index.bit(codes)
    assert len(codes._known) == 0  # asked once per code described: nothing kept
    codes._known.budget = 3
    for n in range(10):
        assert f"C34.{n}" in codes
    assert len(codes._known) == 3
    assert "C34.9" in codes._known
    assert ("C34." + "1" * MAX_CODE_LENGTH) in codes
    assert len(codes._known) == 3
    assert "C34." + "1" * MAX_CODE_LENGTH not in codes._known


def test_unknown_procedure_codes_keep_their_budget(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpt = decider.cpt
    monkeypatch.setattr(cpt._unknown, "budget", 4)
    table = len(cpt._entries)
    for n in range(10):
        assert not cpt.lookup(f"Q{n:04d}").known
    assert len(cpt._unknown) <= 4
    assert "Q0009" in cpt._unknown
    assert len(cpt._entries) == table  # the reference table is not a cache
    assert cpt.lookup("71260").known


def test_rule_plans_keep_their_budget(decider: Decider, monkeypatch: pytest.MonkeyPatch) -> None:
    plans = decider.ruleset._plans
    monkeypatch.setattr(plans, "budget", 2)
    for codes in (["C34.11"], ["C79.51"], ["Z85.3"], ["C61", "C79.51"], ["C80.1"]):
        decider.decide(encode(encounter(codes, reason="x", tnm="T1")), SOURCE)
    assert len(plans) <= 2


def test_a_flood_of_distinct_valid_records_leaves_every_cache_within_its_budget(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    budgets: dict[str, Lru[Any, Any]] = {
        "code descriptions": decider.icd10cm._infos,
        "dates": decider.icd10cm.calendar._by_date,
        "unknown procedures": decider.cpt._unknown,
        "plans": decider.ruleset._plans,
    }
    for cache in budgets.values():
        monkeypatch.setattr(cache, "budget", 16)
    details = CodeDetails(decider.icd10cm, decider.cpt, diagnoses_kept=16, procedures_kept=16)
    monkeypatch.setattr(decider, "_details", details)
    codes = _valid_codes(decider, 400)
    for n in range(100):
        event = encounter(
            codes[4 * n : 4 * n + 4],
            [f"{n:05d}", f"Q{n:04d}"],
            reason=f"restaging {n} " * 5,
            tnm=f"T{n % 4}N{n % 3}M{n % 2}",
            event_id=f"flood-{n}",
            date_of_service=(dt.date(2023, 1, 1) + dt.timedelta(days=11 * n)).isoformat(),
        )
        assert decider.decide(encode(event), SOURCE).route != "dead_letter"
    sizes = {name: len(cache) for name, cache in budgets.items()}
    sizes["diagnosis details"] = details.diagnosis.cache_info().currsize
    sizes["procedure details"] = details.procedure.cache_info().currsize
    assert all(size <= 16 for size in sizes.values()), sizes


# --- rules that grow with the claim ---------------------------------------------------------

ADD_ONS = ("10004", "10006", "10008", "10010", "10012", "47001", "38900")


def _lines(count: int) -> Iterator[dict[str, object]]:
    """Every other line an add-on code (most without their primary), the others distinct."""
    for line in range(1, count + 1):
        code = ADD_ONS[line % len(ADD_ONS)] if line % 2 else f"Q{line:04d}"
        yield {"line": line, "code": code}


def _met004_questions(
    decider: Decider, lines: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, int]:
    """The questions MET-004 asks of the add-on tables for a claim of `lines` lines, and
    the claim's distinct procedure codes."""
    event = encounter(["C34.11"])
    event["procedures"] = list(_lines(lines))
    claim = build_claim(
        EncounterEvent.model_validate_json(encode(event)), decider.icd10cm, decider.cpt
    )
    asked = 0
    contains = ProcedureCodes.__contains__

    def counting(codes: ProcedureCodes, code: object) -> bool:
        nonlocal asked
        asked += 1
        return contains(codes, code)

    with monkeypatch.context() as patch:
        patch.setattr(ProcedureCodes, "__contains__", counting)
        found = RULES_BY_ID["MET-004"].check(claim)
    # The same orphans as asking for each line: an add-on without another line's primary.
    expected = sorted(
        p.line
        for p in claim.procedures
        if p.info.add_on_primaries is not None
        and not any(code in p.info.add_on_primaries for code in claim.procedure_codes - {p.code})
    )
    assert found is not None
    assert list(found.procedure_lines) == expected
    return asked, len(claim.procedure_codes)


def test_met004_asks_about_each_add_on_code_once_not_each_line(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most one pass over the claim's codes for each add-on code, however many lines
    repeat it (asking per line made it a pass per line: four times the questions for twice
    the lines). How soon a pass ends depends on the set's order, so the bound is the pass."""
    for lines in (300, 600):
        asked, codes = _met004_questions(decider, lines, monkeypatch)
        assert asked <= len(ADD_ONS) * codes, (lines, asked, codes)


def test_procedure_sets_keep_their_budget_and_only_codes_of_the_contracts_length() -> None:
    codes = ProcedureCodes("77261-77263 77280")
    for n in range(PROCEDURE_ANSWERS_KEPT + 10):
        assert f"{n:05d}" not in codes
    assert "77262" in codes
    assert codes._remembered.cache_info().currsize == PROCEDURE_ANSWERS_KEPT
    misses = codes._remembered.cache_info().misses
    assert "77262" + " " * MAX_CODE_LENGTH not in codes
    assert codes._remembered.cache_info().misses == misses  # too long: not remembered


def test_decision_details_hold_no_more_memory_than_their_text(decider: Decider) -> None:
    """orjson's bytes carry a buffer of 4 KiB or more: a detail kept as it comes would hold
    twenty times its ~200 bytes."""
    details = CodeDetails(decider.icd10cm, decider.cpt)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(500):
            details.procedure(n + 1, f"Q{n:04d}")
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert details.procedure.cache_info().currsize == 500
    assert held / 500 < 1_500, held / 500
