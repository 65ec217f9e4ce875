"""The Prometheus configuration, rules and rule unit tests under deploy/prometheus.

The tests marked ``ops`` run the real promtool (Prometheus 2.42, installed by
deploy/ops-tools.sh); they fail when it is missing. The others only read the YAML.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support import PROMETHEUS_DIR, load_dashboard_generator, require_tool

CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERT_RULES = PROMETHEUS_DIR / "alert-rules.yml"
RECORDING_RULES = PROMETHEUS_DIR / "recording-rules.yml"
RULE_FILES = sorted(PROMETHEUS_DIR.glob("*-rules.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))

RUNBOOK = "https://github.com/claims-stage/claims-stage/blob/main/docs/operations.md#runbook-"
EXPECTED_ALERTS = {
    "ClaimsStageWorkerDown",
    "ClaimsStageAbsent",
    "ClaimsStageStalled",
    "ClaimsStageLagGrowing",
    "ClaimsStageDeadLetterBudgetBurnFast",
    "ClaimsStageDeadLetterBudgetBurnSlow",
    "ClaimsStageRejectionRateAnomaly",
    "ClaimsStageReviewRateAnomaly",
    "ClaimsStageEndToEndLatencyHigh",
    "ClaimsStageVersionSkew",
    "ClaimsStageCodeSetsEndSoon",
    "ClaimsStageCodeSetMissing",
    "ClaimsStageTransactionAborts",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules(path: Path) -> Iterator[dict[str, Any]]:
    for group in _load(path)["groups"]:
        yield from group["rules"]


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in _rules(ALERT_RULES) if "alert" in rule]


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"


# --- promtool ---------------------------------------------------------------------------


def test_rule_and_test_files_exist() -> None:
    assert [p.name for p in RULE_FILES] == ["alert-rules.yml", "recording-rules.yml"]
    assert len(TEST_FILES) >= 2


@pytest.mark.ops
def test_promtool_check_config() -> None:
    result = _promtool("check", "config", str(CONFIG))
    _ok(result)
    # check config also checks the rule files it names
    assert "2 rule files found" in result.stdout


@pytest.mark.ops
@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(rule_file: Path) -> None:
    _ok(_promtool("check", "rules", str(rule_file)))


@pytest.mark.ops
@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(test_file: Path) -> None:
    result = _promtool("test", "rules", str(test_file))
    _ok(result)
    assert "SUCCESS" in result.stdout


@pytest.mark.ops
def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """Every dashboard query, with its variables filled in, is valid PromQL for promtool."""
    module = load_dashboard_generator()
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": module.expand_variables(q["expr"])}
        for i, q in enumerate(module.panel_queries())
    ]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _ok(_promtool("check", "rules", str(rule_file)))


# --- the tests can fail -------------------------------------------------------------------

NEVER = "vector(0) > 1"  # returns nothing, ever
ALWAYS = "vector(1)"  # returns a series at every evaluation


def _mutated_run(tmp: Path, alert: str, expr: str) -> subprocess.CompletedProcess[str]:
    """Copy the rules and tests into tmp, replace every rule of alert by expr, run its tests."""
    shutil.copytree(PROMETHEUS_DIR, tmp, ignore=shutil.ignore_patterns("prometheus.yml"))
    rules = _load(tmp / ALERT_RULES.name)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = expr
    (tmp / ALERT_RULES.name).write_text(yaml.safe_dump(rules, sort_keys=False))
    files = [str(f) for f in sorted((tmp / "tests").glob("*.yml")) if alert in f.read_text()]
    assert files, f"no promtool test mentions {alert}"
    return _promtool("test", "rules", *files)


@pytest.mark.ops
def test_alert_tests_fail_when_the_alert_is_broken(tmp_path: Path) -> None:
    """Each alert's tests catch both an alert that never fires and one that always fires."""
    alerts = sorted({rule["alert"] for rule in _alert_rules()})
    jobs = [
        (alert, kind, expr)
        for alert in alerts
        for kind, expr in (("never", NEVER), ("always", ALWAYS))
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                lambda job: _mutated_run(tmp_path / f"{job[0]}-{job[1]}", job[0], job[2]), jobs
            )
        )
    survivors = [
        f"{alert} made to fire {kind}"
        for (alert, kind, _), result in zip(jobs, results, strict=True)
        if result.returncode == 0
    ]
    assert not survivors, f"promtool tests still pass with: {survivors}"


@pytest.mark.ops
def test_recording_rule_tests_fail_when_the_rules_are_broken(tmp_path: Path) -> None:
    """With every recording rule replaced by a constant, each rule's own test fails."""
    shutil.copytree(PROMETHEUS_DIR, tmp_path / "p", ignore=shutil.ignore_patterns("prometheus.yml"))
    path = tmp_path / "p" / RECORDING_RULES.name
    rules = _load(path)
    names = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            names.append(rule["record"])
            rule["expr"] = "vector(-1)"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    tests = sorted((tmp_path / "p" / "tests").glob("recording-rules*.yml"))
    result = _promtool("test", "rules", *map(str, tests))
    assert result.returncode != 0
    failed_exprs = "\n".join(
        line for line in result.stderr.splitlines() if line.strip().startswith("expr:")
    )
    untested = [
        name
        for name in names
        if not re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", failed_exprs)
    ]
    assert not untested, f"no failing promql_expr_test for: {untested}"


# --- rule metadata (YAML only) ------------------------------------------------------------


def test_the_expected_alerts_are_defined() -> None:
    assert {rule["alert"] for rule in _alert_rules()} == EXPECTED_ALERTS


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_severity_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    labels = rule.get("labels", {})
    annotations = rule.get("annotations", {})
    assert labels.get("severity") in {"page", "ticket"}
    assert labels.get("family"), "the family label drives Alertmanager's inhibition"
    assert annotations.get("summary")
    assert annotations.get("description")
    assert annotations.get("runbook_url") == RUNBOOK + rule["alert"].lower()
    assert rule.get("for"), "every alert waits a while before firing"


def test_recording_rule_names_follow_level_metric_operations() -> None:
    names = [rule["record"] for rule in _rules(RECORDING_RULES)]
    assert len(names) == len(set(names))
    bad = [n for n in names if not re.fullmatch(r"[a-z_]+:[a-z][a-z0-9_]*:[a-z0-9_]+", n)]
    assert not bad


def _alert_cases() -> dict[str, dict[str, int]]:
    """For every alert name: how many promtool cases expect it firing, and how many silent."""
    cases: dict[str, dict[str, int]] = {}
    for path in TEST_FILES:
        for test in _load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                counts = cases.setdefault(case["alertname"], {"firing": 0, "silent": 0})
                counts["firing" if case.get("exp_alerts") else "silent"] += 1
    return cases


def test_every_alert_has_a_firing_and_a_silent_promtool_case() -> None:
    cases = _alert_cases()
    for alert in EXPECTED_ALERTS:
        assert cases.get(alert, {}).get("firing", 0) >= 1, f"{alert}: no firing case"
        assert cases.get(alert, {}).get("silent", 0) >= 1, f"{alert}: no non-firing case"
    assert set(cases) <= EXPECTED_ALERTS, "a test names an alert that does not exist"


def test_firing_cases_check_labels_and_annotations() -> None:
    for path in TEST_FILES:
        for test in _load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    assert alert.get("exp_labels", {}).get("severity"), (path.name, test["name"])
                    assert set(alert.get("exp_annotations", {})) == {
                        "summary",
                        "description",
                        "runbook_url",
                    }, (path.name, test["name"])


def test_every_recording_rule_has_a_promql_test() -> None:
    exprs = "\n".join(
        case["expr"]
        for path in TEST_FILES
        for test in _load(path)["tests"]
        for case in test.get("promql_expr_test", [])
    )
    untested = [
        rule["record"]
        for rule in _rules(RECORDING_RULES)
        if not re.search(rf"(?<![\w:]){re.escape(rule['record'])}(?![\w:])", exprs)
    ]
    assert not untested


def test_config_loads_the_rule_files_beside_it() -> None:
    config = _load(CONFIG)
    assert sorted(config["rule_files"]) == sorted(p.name for p in RULE_FILES)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["claims-stage"]["metrics_path"] == "/metrics"
    targets = [t for sc in jobs["claims-stage"]["static_configs"] for t in sc["targets"]]
    assert "127.0.0.1:6066" in targets
