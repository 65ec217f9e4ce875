"""`claims-stage whatif` on the example stream: its changes and its report's numbers equal an
independent count made here with `decide` under each policy."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stream.cli.main import app
from stream.core.contracts import FileSource
from stream.core.decision import Decider
from stream.core.rules.config import Policies
from stream.core.whatif import SAMPLES_PER_CHANGE
from tests.ops.browser import Dom, parse_dom
from tests.reference import StageRunner
from tests.stage_kafka import EXAMPLES, ROOT, example_lines

runner = StageRunner()
POLICY = ROOT / "docs" / "policy.toml"


@dataclass
class Expected:
    """What whatif must find, counted claim by claim from two full decisions."""

    dead_letters: int = 0
    claims: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    changes: dict[int, dict[str, Any]] = field(default_factory=dict)  # input line -> change
    added: Counter[str] = field(default_factory=Counter)  # rule -> findings added
    removed: Counter[str] = field(default_factory=Counter)
    payers: dict[str, Counter[str]] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)  # change kind -> claims


def independent_count(lines: list[bytes], baseline: Policies, proposed: Policies) -> Expected:
    before, after = Decider(baseline), Decider(proposed)
    expected = Expected()
    for number, line in enumerate(lines, start=1):
        source = FileSource(file="x", line=number)
        a, b = before.decide(line, source), after.decide(line, source)
        if a.route == "dead_letter":
            assert b.route == "dead_letter"
            expected.dead_letters += 1
            continue
        expected.claims += 1
        expected.transitions[(a.route, b.route)] += 1
        document = json.loads(line)
        payer = document.get("payer_id") or "(no payer)"
        counts = expected.payers.setdefault(payer, Counter())
        counts["claims"] += 1
        found_a = {(f.rule_id, f.severity) for f in a.findings}
        found_b = {(f.rule_id, f.severity) for f in b.findings}
        added, removed = found_b - found_a, found_a - found_b
        if a.route == b.route and not added and not removed:
            continue
        expected.changes[number] = {
            "claim_id": document["claim_id"],
            "route_before": a.route,
            "route_after": b.route,
            "added": added,
            "removed": removed,
        }
        counts["changed"] += 1
        counts["route changes"] += a.route != b.route
        counts["added"] += len(added)
        counts["removed"] += len(removed)
        if a.route != b.route:
            expected.kinds[f"route:{a.route}>{b.route}"] += 1
        for rule, _ in added:
            expected.added[rule] += 1
            expected.kinds[f"added:{rule}"] += 1
        for rule, _ in removed:
            expected.removed[rule] += 1
            expected.kinds[f"removed:{rule}"] += 1
    return expected


@pytest.fixture(scope="module")
def expected() -> Expected:
    return independent_count(example_lines(), Policies(), Policies.from_file(POLICY))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("whatif")
    result = runner.invoke(
        app,
        ["whatif", str(EXAMPLES), "--rules-config", str(POLICY), "--out", str(out)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def _changes(out: Path) -> dict[int, dict[str, Any]]:
    lines = (out / "changes.jsonl").read_bytes().splitlines()
    return {json.loads(line)["source"]["line"]: json.loads(line) for line in lines}


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_the_policy_changes_something_of_every_kind(expected: Expected) -> None:
    """The example policy exercises what the report shows; otherwise the test proves little."""
    assert expected.dead_letters > 0
    moves = {pair for pair, n in expected.transitions.items() if pair[0] != pair[1] and n}
    assert {("validated", "review"), ("validated", "rejected"), ("rejected", "validated")} <= moves
    assert expected.added
    assert expected.removed
    assert any(not c["added"] and not c["removed"] for c in expected.changes.values())
    assert any(c["route_before"] == c["route_after"] for c in expected.changes.values())


def test_changes_jsonl_lists_exactly_the_claims_that_change(
    run: tuple[Path, str], expected: Expected
) -> None:
    changes = _changes(run[0])
    assert set(changes) == set(expected.changes)
    for line, change in changes.items():
        want = expected.changes[line]
        assert change["claim_id"] == want["claim_id"]
        assert (change["route_before"], change["route_after"]) == (
            want["route_before"],
            want["route_after"],
        )
        assert {(f["rule_id"], f["severity"]) for f in change["findings_added"]} == want["added"]
        assert {(f["rule_id"], f["severity"]) for f in change["findings_removed"]} == want[
            "removed"
        ]
        if change["route_after"] == "review":
            assert change["review_rules_after"]
    lines = [
        json.loads(x)["source"]["line"]
        for x in (run[0] / "changes.jsonl").read_bytes().splitlines()
    ]
    assert lines == sorted(lines)


def _report(out: Path) -> tuple[str, Dom]:
    page = (out / "report.html").read_text("utf-8")
    return page, parse_dom(page)


def test_the_report_numbers_equal_the_independent_count(
    run: tuple[Path, str], expected: Expected
) -> None:
    _, dom = _report(run[0])
    route_changes = sum(n for (a, b), n in expected.transitions.items() if a != b)
    assert _number(dom.text["claims"]) == expected.claims
    assert _number(dom.text["changed"]) == len(expected.changes)
    assert _number(dom.text["route-changes"]) == route_changes
    assert _number(dom.text["findings-only"]) == len(expected.changes) - route_changes
    assert _number(dom.text["added"]) == sum(expected.added.values())
    assert _number(dom.text["removed"]) == sum(expected.removed.values())
    assert _number(dom.text["dead-letters"]) == expected.dead_letters

    matrix = dom.tables["transitions"]
    routes = ["validated", "review", "rejected"]
    assert matrix[0][1:4] == routes
    for row in matrix[1:4]:
        before = row[0]
        assert [_number(cell) for cell in row[1:4]] == [
            expected.transitions[(before, after)] for after in routes
        ], row
    assert _number(matrix[4][4]) == expected.claims

    rules = {row[0]: (_number(row[2]), _number(row[3])) for row in dom.tables["rules"][1:]}
    assert rules == {
        rule: (expected.added[rule], expected.removed[rule])
        for rule in set(expected.added) | set(expected.removed)
    }

    payers = {row[0]: [_number(cell) for cell in row[1:]] for row in dom.tables["payers"][1:]}
    assert payers == {
        payer: [c["claims"], c["changed"], c["route changes"], c["added"], c["removed"]]
        for payer, c in expected.payers.items()
    }


def test_the_report_has_samples_for_every_change_and_charts(
    run: tuple[Path, str], expected: Expected
) -> None:
    page, dom = _report(run[0])
    samples = {
        attributes["data-change"]: attributes
        for tag, attributes in dom.tags
        if tag == "table" and "data-change" in attributes
    }
    assert set(samples) == set(expected.kinds)
    for kind, claims in expected.kinds.items():
        start = page.index(f'data-change="{kind.replace(">", "&gt;")}"')
        table = page[start : page.index("</table>", start)]
        assert table.count("<tr>") - 1 == min(claims, SAMPLES_PER_CHANGE), kind
    svgs = {attributes.get("id") for tag, attributes in dom.tags if tag == "svg"}
    assert {"rules-chart", "payers-chart", "payers-routes-chart", "routes-before"} <= svgs
    rule_bars = page[
        page.index('id="rules-chart"') : page.index("</svg>", page.index('id="rules-chart"'))
    ]
    assert rule_bars.count("<rect") == sum(
        1
        for rule in set(expected.added) | set(expected.removed)
        for c in (expected.added, expected.removed)
        if c[rule]
    )


def test_the_report_is_self_contained(run: tuple[Path, str]) -> None:
    page, dom = _report(run[0])
    assert dom.urls() == []
    assert not [tag for tag, _ in dom.tags if tag in ("script", "link", "img", "iframe", "object")]
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert "PT-" not in page  # no patient identifier from the example stream
    assert "birth_date" not in page


def test_the_summary_says_what_changes(run: tuple[Path, str], expected: Expected) -> None:
    output = run[1]
    route_changes = sum(n for (a, b), n in expected.transitions.items() if a != b)
    assert f"{expected.claims:,} claims judged" in output
    assert (
        f"{len(expected.changes)} claims change: {route_changes} change route, "
        f"{len(expected.changes) - route_changes} only their findings"
    ) in output
    assert "report.html" in output


def test_parallel_whatif_writes_the_same_changes(tmp_path: Path, run: tuple[Path, str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(EXAMPLES.read_bytes() * 3)
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        result = runner.invoke(
            app,
            [
                "whatif",
                str(source),
                "--rules-config",
                str(POLICY),
                "--out",
                str(out),
                "--jobs",
                jobs,
            ],
        )
        assert result.exit_code == 0, result.output
        outputs.append((out / "changes.jsonl").read_bytes())
        _, dom = _report(out)
        assert _number(dom.text["changed"]) == 3 * len(_changes(run[0]))
    assert outputs[0] == outputs[1]


def test_a_baseline_equal_to_the_proposal_changes_nothing(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "whatif",
            str(EXAMPLES),
            "--rules-config",
            str(POLICY),
            "--baseline",
            str(POLICY),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "changes.jsonl").read_bytes() == b""
    _, dom = _report(tmp_path)
    assert dom.text["changed"] == "0"
    assert (
        "The two configurations run every rule the same way."
        in (tmp_path / "report.html").read_text()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either an INPUT file or --topic"),
        ([str(EXAMPLES), "--topic", "encounters", "--since", "2026-04-01"], "give either"),
        (["--topic", "encounters"], "--topic needs --since"),
        (["--topic", "encounters", "--since", "last tuesday"], "is not an ISO 8601"),
        (
            ["--topic", "encounters", "--since", "2026-04-02", "--until", "2026-04-01"],
            "--until must be later",
        ),
        ([str(EXAMPLES), "--since", "2026-04-01"], "--since and --until go with --topic"),
        (["/nonexistent/claims.jsonl"], "cannot read"),
    ],
)
def test_whatif_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(
        app, ["whatif", *args, "--rules-config", str(POLICY), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize("name", ["837p.x12", "837i.x12", "bundle.json"])
def test_whatif_reads_what_check_reads(tmp_path: Path, run: tuple[Path, str], name: str) -> None:
    """An 837 or a FHIR Bundle of example claims changes as their native events do."""
    claims = ROOT / "schemas" / "examples" / "claims" / name
    result = runner.invoke(
        app, ["whatif", str(claims), "--rules-config", str(POLICY), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "read " in result.output

    def changes(out: Path) -> dict[str, tuple[str, str, list[str], list[str]]]:
        found = {}
        for line in (out / "changes.jsonl").read_bytes().splitlines():
            change = json.loads(line)
            found[change["claim_id"]] = (
                change["route_before"],
                change["route_after"],
                sorted(f"{f['rule_id']} {f['severity']}" for f in change["findings_added"]),
                sorted(f"{f['rule_id']} {f['severity']}" for f in change["findings_removed"]),
            )
        return found

    adapted = changes(tmp_path)
    judged = int(result.output.split(" claims judged")[0].split()[-1])
    native = changes(run[0])
    read_back = check_claim_ids(claims)
    assert len(read_back) == judged
    assert adapted == {claim: native[claim] for claim in read_back if claim in native}
    if name == "bundle.json":  # the 30 claims of every format: some of them change
        assert adapted


def check_claim_ids(claims: Path) -> set[str]:
    """The claim IDs `check` reads from a file of another format."""
    with tempfile.TemporaryDirectory() as folder:
        result = runner.invoke(app, ["check", str(claims), "--out", folder])
        assert result.exit_code == 0, result.output
        return {
            json.loads(line)["claim_id"]
            for name in ("validated", "rejected")
            for line in (Path(folder) / f"{name}.jsonl").read_bytes().splitlines()
        }
