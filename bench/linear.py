"""Does any rule's cost grow faster than the claim?

    python -m bench.linear [--lines 1000] [--factor 8] [--rounds 5]

Builds claims of N and FACTOR x N procedure lines (past the contract's limit of 999 lines,
built without it, so that a rule's growth shows plainly), each with 25 diagnoses that wake
most rules and procedure lines that mix every procedure code a rule names, add-on codes
and distinct unknown codes, then times every rule's check on both. A rule that grows
linearly takes about FACTOR times as long on the larger claim; the table prints the ratio
and flags a rule whose ratio is more than twice FACTOR. The contract's own check of the
event (`EncounterEvent.model_validate_json`), the claim's enrichment and the whole
`decide()` are timed the same way, within the contract (at most 999 lines).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial

import orjson

from stream.core.claim import Claim, build_claim
from stream.core.codes.cpt import ProcedureCodes
from stream.core.contracts import (
    MAX_PROCEDURE_LINES,
    DiagnosisEntry,
    EncounterContext,
    EncounterEvent,
    FileSource,
    ProcedureEntry,
)
from stream.core.decision import Decider
from stream.core.rules import CATALOGUE

DIAGNOSES = (
    *("C34.11", "C79.51", "C78.00", "C77.1", "C79.31", "C80.1", "Z85.3", "C50.911", "C61"),
    *("C18.7", "C79.9", "G89.3", "Z51.11", "Z51.5", "R64", "C90.00", "C91.00", "C83.390"),
    *("D49.6", "C7B.00", "C22.0", "C79.52", "C78.7", "C71.1", "Z92.3"),
)
"""25 codes valid in FY2026 that wake most rules: primaries, secondaries, history,
unknown primary, encounters for therapy, pain, cachexia, haematological malignancies."""
REASON = "Restaging PET-CT, newly diagnosed; rule out progression, unspecified side; pain control"


def _rule_procedure_codes() -> list[str]:
    """A few codes of every procedure set a rule module names (large ranges: their ends)."""
    import stream.core.rules as rules_package

    codes: set[str] = set()
    for module in vars(rules_package).values():
        for value in vars(module).values() if hasattr(module, "__dict__") else ():
            if isinstance(value, ProcedureCodes):
                codes |= set(sorted(value.codes())[:20]) if _small(value) else _ends(value)
    return sorted(codes)


def _small(codes: ProcedureCodes) -> bool:
    return all(high - low < 100 for low, high in codes._ranges)


def _ends(codes: ProcedureCodes) -> set[str]:
    return set(codes._exact) | {f"{n:05d}" for pair in codes._ranges for n in pair}


def procedure_lines(count: int, named: Sequence[str]) -> Iterator[ProcedureEntry]:
    """`count` lines: every third a code a rule names, every third an add-on, the rest
    distinct unknown codes."""
    add_ons = ("10004", "10006", "10008", "10010", "10012", "47001", "38900")
    for line in range(1, count + 1):
        if line % 3 == 0:
            code = named[line % len(named)]
        elif line % 3 == 1:
            code = add_ons[line % len(add_ons)]
        else:
            code = f"Z{line:04d}"[-5:] if line < 10_000 else f"Q{line}"[:10]
        yield ProcedureEntry.model_construct(
            line=line, code=code, units=1, modifiers=None, diagnosis_pointers=(1, 2)
        )


def event(lines: int, named: Sequence[str]) -> EncounterEvent:
    """An outpatient event of `lines` procedure lines, built past the contract's limits."""
    return EncounterEvent.model_construct(
        schema_version=1,
        event_id="linear",
        event_type="encounter.coded",
        claim_id="LINEAR",
        setting="outpatient",
        date_of_service=dt.date(2026, 3, 2),
        discharge_date=None,
        context=EncounterContext.model_construct(
            reason_for_encounter=REASON,
            treatment_directed_at="both",
            primary_status="active",
            tnm="cT2 N1 M1b",
        ),
        diagnoses=tuple(
            DiagnosisEntry.model_construct(sequence=n, code=code)
            for n, code in enumerate(DIAGNOSES, start=1)
        ),
        procedures=tuple(procedure_lines(lines, named)),
    )


def cpu_seconds(work: Callable[[], object], rounds: int) -> float:
    """The least CPU time of `rounds` runs."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def _row(name: str, small: float, large: float, factor: int) -> str:
    ratio = large / small if small > 0 else float("nan")
    flag = "  superlinear?" if ratio > 2 * factor else ""
    return f"{name:16} {small * 1e3:10.3f} {large * 1e3:10.3f} {ratio:8.1f}{flag}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=1_000)
    parser.add_argument("--factor", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    decider = Decider()
    named = _rule_procedure_codes()
    sizes = (args.lines, args.lines * args.factor)
    claims: list[Claim] = [
        build_claim(event(n, named), decider.icd10cm, decider.cpt) for n in sizes
    ]
    print(f"CPU ms per rule on claims of {sizes[0]:,} and {sizes[1]:,} procedure lines")
    print(f"{'':16} {sizes[0]:>10,} {sizes[1]:>10,} {'ratio':>8}")
    for rule in CATALOGUE:
        small, large = (cpu_seconds(partial(rule.check, claim), args.rounds) for claim in claims)
        print(_row(rule.rule_id, small, large, args.factor))
    within = (MAX_PROCEDURE_LINES // args.factor, MAX_PROCEDURE_LINES)
    raws = [orjson.dumps(event(n, named).model_dump(mode="json")) for n in within]
    events = [EncounterEvent.model_validate_json(raw) for raw in raws]
    source = FileSource(file="linear", line=1)
    print(f"\nCPU ms within the contract, {within[0]:,} and {within[1]:,} lines")
    parts: dict[str, list[Callable[[], object]]] = {
        "contract": [partial(EncounterEvent.model_validate_json, raw) for raw in raws],
        "enrichment": [partial(build_claim, e, decider.icd10cm, decider.cpt) for e in events],
        "decide()": [partial(decider.decide, raw, source) for raw in raws],
    }
    for name, (small_work, large_work) in parts.items():
        small, large = cpu_seconds(small_work, args.rounds), cpu_seconds(large_work, args.rounds)
        print(_row(name, small, large, args.factor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
