"""The review route in batch mode, in the counts, on the status page, in `tail`; parallel
batch; and `rules --payer`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from stream.cli.main import app
from stream.core.contracts import Decision, FileSource
from stream.core.decision import Decider
from stream.core.rules.config import Policies, parse_rules_config
from stream.core.tally import Tally
from stream.kafka.tail import describe
from stream.ops.metrics import StageMetrics
from stream.ops.status import StatusSnapshot, render_status
from tests.claims import encode, encounter
from tests.reference import StageRunner
from tests.stage_kafka import EXAMPLES

runner = StageRunner()
REVIEW = '[rules.MET-007]\nroute = "review"\n[payers.ACME.rules.MET-025]\nseverity = "error"\n'


def _lines() -> list[bytes]:
    unknown_primary = encounter(["C34.11", "C79.51", "C80.1"], primary_status="active")
    with_error = encounter(["C34.11", "C79.51", "C80.1", "C99.99"], claim_id="CLM-2")
    laterality = encounter(
        ["C64.2", "C78.00"],
        ["71260"],
        primary_status="active",
        reason="Restaging CT chest: right lower lobe metastasis from left renal cell carcinoma.",
        claim_id="CLM-3",
    )
    acme = {**laterality, "payer_id": "ACME", "claim_id": "CLM-4"}
    clean = encounter(["C34.11", "C79.51"], primary_status="active", claim_id="CLM-5")
    return [encode(e) for e in (unknown_primary, with_error, laterality, acme, clean)] + [
        b"not json"
    ]


def _check(tmp_path: Path, config: str | None, *extra: str) -> tuple[Path, str]:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(_lines()) + b"\n")
    out = tmp_path / "out"
    args = ["check", str(source), "--out", str(out), *extra]
    if config is not None:
        (tmp_path / "policy.toml").write_text(config)
        args += ["--rules-config", str(tmp_path / "policy.toml")]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return out, result.output


def _claims(path: Path) -> list[str]:
    return [json.loads(line)["claim_id"] for line in path.read_bytes().splitlines()]


def test_check_writes_review_jsonl_when_a_rule_routes_to_review(tmp_path: Path) -> None:
    out, output = _check(tmp_path, REVIEW)
    assert _claims(out / "review.jsonl") == ["CLM-TEST-1"]
    assert _claims(out / "rejected.jsonl") == ["CLM-2", "CLM-4"]
    assert _claims(out / "validated.jsonl") == ["CLM-3", "CLM-5"]
    assert len((out / "dead-letter.jsonl").read_bytes().splitlines()) == 1
    decision = Decision.model_validate_json((out / "review.jsonl").read_bytes())
    assert decision.review_rules == ("MET-007",)
    assert "review" in output
    assert str(out / "review.jsonl") in output
    assert "payer policies: ACME" in output


def test_check_without_a_route_writes_the_three_files_of_before(tmp_path: Path) -> None:
    out, output = _check(tmp_path, None)
    assert sorted(p.name for p in out.iterdir()) == [
        "dead-letter.jsonl",
        "rejected.jsonl",
        "validated.jsonl",
    ]
    assert _claims(out / "validated.jsonl") == ["CLM-TEST-1", "CLM-3", "CLM-4", "CLM-5"]
    assert "review.jsonl" not in output
    assert " review " not in output


def test_a_broken_policy_file_is_a_usage_error_naming_the_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(_lines()[0] + b"\n")
    config = tmp_path / "policy.toml"
    config.write_text(
        '[rules.MET-007]\nroute = "review"\n\n[payers.ACME.rules.MET-025]\nlevel = 1\n'
    )
    for command in (
        ["check", str(source), "--out", str(tmp_path / "o")],
        ["rules"],
        ["whatif", str(source), "--out", str(tmp_path / "w")],
    ):
        result = runner.invoke(app, [*command, "--rules-config", str(config)])
        assert result.exit_code == 2, result.output
        assert "line 5: payers.ACME.rules.MET-025.level: unknown key" in " ".join(
            result.output.split()
        )
        assert "Traceback" not in result.output


@pytest.mark.parametrize("jobs", ["2", "0"])
def test_parallel_check_writes_what_one_job_writes_in_input_order(
    tmp_path: Path, jobs: str
) -> None:
    """Every line of the example stream, six times over: the files are the same (but for the
    decision time) whatever the number of jobs."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(EXAMPLES.read_bytes() * 6)
    config = tmp_path / "policy.toml"
    config.write_text(REVIEW)
    outputs = {}
    for run in ("1", jobs):
        out = tmp_path / f"out-{run}"
        result = runner.invoke(
            app,
            ["check", str(source), "--out", str(out), "--jobs", run, "--rules-config", str(config)],
        )
        assert result.exit_code == 0, result.output
        outputs[run] = {
            path.name: [_without_times(line) for line in path.read_bytes().splitlines()]
            for path in sorted(out.glob("*.jsonl"))
        }
    assert outputs["1"] == outputs[jobs]
    lines = sum(len(v) for v in outputs[jobs].values())
    assert lines == 6 * len(EXAMPLES.read_bytes().splitlines())
    sources = [document["source"]["line"] for document in outputs[jobs]["validated.jsonl"]]  # type: ignore[index]
    assert sources == sorted(sources)  # input order


def _without_times(line: str | bytes) -> dict[str, object]:
    document: dict[str, object] = json.loads(line)
    document.pop("decided_at", None)
    document.pop("received_at", None)
    return document


def test_rules_for_a_payer(tmp_path: Path) -> None:
    config = tmp_path / "policy.toml"
    config.write_text(
        REVIEW
        + "[rules.MET-026]\nenabled = false\n[payers.MEDICARE.rules.MET-026]\nenabled = true\n"
    )
    policies = Policies(parse_rules_config(config.read_text(), "p"))

    def rows(*args: str) -> tuple[str, dict[str, str]]:
        result = runner.invoke(
            app, ["rules", "--rules-config", str(config), *args], env={"COLUMNS": "250"}
        )
        assert result.exit_code == 0, result.output
        table = {
            line.split("│")[1].strip(): " ".join(line.split("│")[2:4])
            for line in result.output.splitlines()
            if line.startswith("│ MET-")
        }
        return result.output, table

    output, acme = rows("--payer", "ACME")
    assert f"Ruleset {policies.for_payer('ACME').version} for payer ACME" in output
    assert acme["MET-025"].split() == ["error", "(ACME)", "by", "outcome"]
    assert acme["MET-007"].split() == ["warning", "review", "(configured)"]
    assert acme["MET-026"].split() == ["disabled", "(configured)"]
    _, medicare = rows("--payer", "MEDICARE")
    assert medicare["MET-026"].split() == ["warning", "by", "outcome"]  # enabled again
    assert medicare["MET-025"].split() == ["warning", "by", "outcome"]
    output, other = rows("--payer", "UHC")
    assert "UHC has no section: its claims are judged by the global policy." in output
    assert other["MET-025"].split() == ["warning", "by", "outcome"]
    assert f"Ruleset {policies.default.version} for payer UHC" in output


# --- the counts: one tally, read by metrics and the status page ---------------------------


def _tally(tmp_path: Path, decider: Decider) -> Tally:
    policies = Policies(parse_rules_config(REVIEW, "p"))
    review_decider = Decider(policies, decider.icd10cm, decider.cpt)
    tally = Tally()
    for n, line in enumerate(_lines(), start=1):
        tally.record(review_decider.decide(line, FileSource(file="x", line=n)))
    return tally


def test_metrics_count_reviews_among_validated_decisions(tmp_path: Path, decider: Decider) -> None:
    tally = _tally(tmp_path, decider)
    assert dict(tally.routes) == {"review": 1, "rejected": 2, "validated": 2, "dead_letter": 1}
    registry = CollectorRegistry()
    StageMetrics(registry, tally, "v", "2026-04-01")
    text = generate_latest(registry).decode()
    assert 'claims_decisions_total{outcome="validated"} 3.0' in text
    assert 'claims_decisions_total{outcome="rejected"} 2.0' in text
    assert "claims_reviews_total 1.0" in text


def test_reviews_are_exported_at_zero_from_the_start() -> None:
    registry = CollectorRegistry()
    StageMetrics(registry, Tally(), "v", "2026-04-01")
    assert "claims_reviews_total 0.0" in generate_latest(registry).decode()


def test_tallies_merge(tmp_path: Path, decider: Decider) -> None:
    one, two = _tally(tmp_path, decider), _tally(tmp_path, decider)
    merged = Tally()
    merged.merge(one)
    merged.merge(two)
    assert merged.records == 2 * one.records
    assert merged.routes == one.routes + two.routes
    assert merged.findings == one.findings + two.findings
    assert merged.decisions("validated") == 6


def _status(routes: dict[str, int], review_route: bool) -> str:
    now = time.time()
    return render_status(
        StatusSnapshot(
            app_id="claims-stage",
            version="0.1.0",
            ruleset_version="2026.12.0+cfg.1a2b3c4d",
            icd10cm="2026-04-01",
            healthy=True,
            health_reason="ok",
            partitions=[0],
            lag={0: 0},
            lag_seconds={0: 0.0},
            routes=routes,  # type: ignore[arg-type]
            rate_per_s=1.0,
            top_rules=[],
            dead_letter_kinds={},
            code_sets={"FY2026": 100},
            started=now - 60,
            last_decision=now,
            review_route=review_route,
            now=now,
        )
    )


def test_the_status_page_shows_the_review_route_where_the_policies_use_it() -> None:
    page = _status({"validated": 60, "review": 20, "rejected": 20}, review_route=True)
    assert "<td>review</td><td class=n>20</td><td class=n>20.0 %</td>" in page
    assert '<div class=w style="width:20.00%">' in page
    plain = _status({"validated": 80, "rejected": 20}, review_route=False)
    assert "<td>review</td>" not in plain
    assert "<td>validated</td><td class=n>80</td>" in plain


def test_tail_says_review_and_marks_the_rules_that_sent_it() -> None:
    record = {
        "outcome": "validated",
        "claim_id": "CLM-1",
        "event_id": "e1",
        "review_rules": ["MET-007"],
        "findings": [
            {"rule_id": "MET-007", "severity": "warning", "message": "C80.1 beside C34.11"},
            {"rule_id": "MET-018", "severity": "warning", "message": "a symptom first"},
        ],
    }
    text = describe(json.dumps(record).encode())
    assert text.splitlines()[0].startswith("review     claim CLM-1")
    assert text.splitlines()[1].endswith("[review]")
    assert not text.splitlines()[2].endswith("[review]")
    del record["review_rules"]
    assert describe(json.dumps(record).encode()).startswith("validated  claim CLM-1")
