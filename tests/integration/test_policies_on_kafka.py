"""Payer policies and the review route on a real broker, and `whatif --topic` reading a
topic as an onlooker (no consumer group joined, nothing committed)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from stream.cli.main import app
from stream.core.contracts import Decision, KafkaSource
from stream.core.decision import Decider
from stream.core.rules.config import Policies
from stream.kafka.send import send_lines
from tests.reference import StageRunner
from tests.stage_kafka import (
    HOST,
    ROOT,
    StageDeployment,
    example_lines,
    read_outputs,
    scrape,
    wait_for,
)

pytestmark = pytest.mark.integration

POLICY = ROOT / "docs" / "policy.toml"
runner = StageRunner()


def _expected_routes(lines: list[bytes], policies: Policies) -> dict[str, tuple[str, bytes]]:
    """event_id -> (route, ruleset version) as batch mode decides each claim."""
    decider = Decider(policies)
    expected: dict[str, tuple[str, bytes]] = {}
    for offset, line in enumerate(lines):
        output = decider.decide(line, KafkaSource(topic="t", partition=0, offset=offset))
        if output.route != "dead_letter":
            assert output.event_id is not None
            expected[output.event_id] = (output.route, dict(output.headers)["ruleset_version"])
    return expected


def test_the_review_route_on_a_real_broker(deployment: StageDeployment) -> None:
    deployment.worker_env = {"CLAIMS_RULES_CONFIG": str(POLICY)}
    deployment.create_topics()
    _, port = deployment.start_worker()
    deployment.wait_healthy(port)
    lines = example_lines()
    assert send_lines(deployment.settings, lines).delivered == len(lines)

    policies = Policies.from_file(POLICY)
    expected = _expected_routes(lines, policies)
    reviews = sum(1 for route, _ in expected.values() if route == "review")
    assert reviews >= 3, "the policy routes claims of the example stream to review"

    records = read_outputs(deployment, len(lines))
    assert len(records) == len(lines), deployment.logs()
    settings = deployment.settings
    topic_of = {
        "validated": settings.validated_topic,
        "review": settings.review_topic,
        "rejected": settings.rejected_topic,
    }
    decided = [r for r in records if r.topic != settings.dlq_topic]
    assert len(decided) == len(expected)
    for record in decided:
        decision = Decision.model_validate_json(record.value)
        route, version = expected[decision.event_id]
        assert record.topic == topic_of[route], (decision.claim_id, record.topic, route)
        assert record.headers["ruleset_version"] == version
        assert decision.ruleset_version == version.decode()
        assert decision.ruleset_version == policies.for_payer(decision.encounter.payer_id).version
        if route == "review":
            assert record.headers["route"] == b"review"
            assert record.headers["outcome"] == b"validated"
            assert decision.review_rules
        else:
            assert "route" not in record.headers
            assert decision.review_rules == ()

    routes = Counter(route for route, _ in expected.values())

    def counted() -> bool:
        metrics = scrape(port)
        return (
            metrics.get("claims_reviews_total") == routes["review"]
            and metrics.get('claims_decisions_total{outcome="validated"}')
            == routes["validated"] + routes["review"]
            and metrics.get('claims_decisions_total{outcome="rejected"}') == routes["rejected"]
        )

    wait_for(counted, 30, "the metrics to count the review route")
    info = [k for k in scrape(port) if k.startswith("claims_stage_info{")]
    assert len(info) == 1
    assert f'ruleset_version="{policies.version}"' in info[0]

    with urllib.request.urlopen(f"http://{HOST}:{port}/status", timeout=5) as reply:
        page = reply.read().decode()
    assert f"<td>review</td><td class=n>{routes['review']:,}</td>" in page

    tail = runner.invoke(
        app,
        ["tail", "--from-beginning", "--idle", "5"],
        env={**deployment.env(0), "COLUMNS": "200"},
    )
    assert tail.exit_code == 0, tail.output
    assert tail.output.count(f"{settings.review_topic} review ") == routes["review"], tail.output


def _change_set(out: Path) -> set[tuple[str, str, str, str, str]]:
    changes = set()
    for line in (out / "changes.jsonl").read_bytes().splitlines():
        change = json.loads(line)
        changes.add(
            (
                change["claim_id"],
                change["route_before"],
                change["route_after"],
                json.dumps(sorted((f["rule_id"], f["severity"]) for f in change["findings_added"])),
                json.dumps(
                    sorted((f["rule_id"], f["severity"]) for f in change["findings_removed"])
                ),
            )
        )
    return changes


def _groups(bootstrap: str) -> set[str]:
    # The client must outlive its future: a client collected first never completes it.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=30).result(timeout=60)
    return {group.group_id for group in listed.valid}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_whatif_over_a_topic_reads_as_an_onlooker(
    deployment: StageDeployment, tmp_path: Path, jobs: str
) -> None:
    deployment.create_topics()
    settings = deployment.settings
    lines = example_lines()
    half = len(lines) // 2
    assert send_lines(settings, lines[:half]).delivered == half
    time.sleep(1.5)  # record timestamps are in milliseconds: a clear gap between the halves
    since = dt.datetime.now(dt.UTC)
    time.sleep(1.5)
    assert send_lines(settings, lines[half:]).delivered == len(lines) - half
    groups_before = _groups(deployment.bootstrap)

    env = deployment.env(0)
    from_file = tmp_path / "file"
    file_input = tmp_path / "second-half.jsonl"
    file_input.write_bytes(b"\n".join(lines[half:]) + b"\n")
    result = runner.invoke(
        app,
        ["whatif", str(file_input), "--rules-config", str(POLICY), "--out", str(from_file)],
    )
    assert result.exit_code == 0, result.output

    from_topic = tmp_path / "topic"
    result = runner.invoke(
        app,
        [
            "whatif",
            "--topic",
            settings.input_topic,
            "--since",
            since.isoformat(),
            "--rules-config",
            str(POLICY),
            "--out",
            str(from_topic),
            "--jobs",
            jobs,
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert f"topic {settings.input_topic}" in (from_topic / "report.html").read_text()
    assert _change_set(from_topic) == _change_set(from_file)
    assert _change_set(from_file), "the second half of the example stream has changes"
    sources = [
        json.loads(line)["source"]
        for line in (from_topic / "changes.jsonl").read_bytes().splitlines()
    ]
    assert all(source["topic"] == settings.input_topic for source in sources)
    judged = result.output
    expected_claims = len(_expected_routes(lines[half:], Policies()))
    assert f"{expected_claims} claims judged" in judged

    # An onlooker: no group of its own left behind, and the stage's group untouched.
    assert _groups(deployment.bootstrap) == groups_before
    assert not any(group.startswith("claims-stage-whatif") for group in groups_before)
    assert deployment.committed() == 0

    # Up to a time before the second half: the first half only.
    upto = tmp_path / "until"
    early = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    result = runner.invoke(
        app,
        [
            "whatif",
            "--topic",
            settings.input_topic,
            "--since",
            early.isoformat(),
            "--until",
            since.isoformat(),
            "--rules-config",
            str(POLICY),
            "--out",
            str(upto),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    first_half = len(_expected_routes(lines[:half], Policies()))
    assert f"{first_half} claims judged" in result.output


def test_whatif_over_a_missing_topic_is_a_usage_error(
    deployment: StageDeployment, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "whatif",
            "--topic",
            "no-such-topic",
            "--since",
            "2026-01-01",
            "--rules-config",
            str(POLICY),
            "--out",
            str(tmp_path),
        ],
        env=deployment.env(0),
    )
    assert result.exit_code == 2, result.output
    assert "no-such-topic" in result.output


def test_the_review_topic_is_needed_only_by_a_policy_with_a_review_route(
    deployment: StageDeployment,
) -> None:
    """A deployment created before the review route exists keeps running; a policy that
    routes to review makes the worker refuse to start until the review topic exists."""
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    settings = deployment.settings
    admin = AdminClient({"bootstrap.servers": deployment.bootstrap})
    older = [settings.input_topic, settings.validated_topic, settings.rejected_topic]
    futures = admin.create_topics(
        [
            NewTopic(name, num_partitions=deployment.partitions)
            for name in [*older, settings.dlq_topic]
        ]
    )
    for future in futures.values():
        future.result(30)

    deployment.worker_env = {"CLAIMS_RULES_CONFIG": str(POLICY)}
    refused = subprocess.run(
        [sys.executable, "-m", "stream", "worker"],
        env=deployment.env(0),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert refused.returncode == 2, refused.stderr
    assert f"missing topics on {deployment.bootstrap}: {settings.review_topic}" in " ".join(
        refused.stderr.split()
    )

    deployment.worker_env = {}
    _, port = deployment.start_worker()
    assert deployment.wait_healthy(port)["status"] == "ok"
