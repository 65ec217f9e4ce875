"""837 and FHIR on a real broker: `claims-stage ingest` plus the worker give one output per
claim, the worker decides FHIR Claim records itself, and every decision is the claim's
native decision."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from stream.core.contracts import FileSource
from stream.core.decision import Decider
from tests.claims import claims_in
from tests.stage_kafka import ROOT, Record, StageDeployment, read_outputs

pytestmark = pytest.mark.integration

CLAIMS = ROOT / "schemas" / "examples" / "claims"
INGESTED = {
    # file: (decisions, dead letters), as schemas/examples/claims/README.md lists them
    "837p.x12": (claims_in(CLAIMS / "837p.x12"), 0),
    "837i.x12": (claims_in(CLAIMS / "837i.x12"), 0),
    "bundle.json": (claims_in(CLAIMS / "bundle.json"), 0),
    "837p-errors.x12": (2, 6),
    "bundle-errors.json": (2, 4),
}
SENT = ("claims.jsonl", claims_in(CLAIMS / "claims.jsonl"))  # FHIR Claims: the worker reads them


def _group(document: dict[str, Any]) -> str:
    """Which input file an output answers, from its origin."""
    origin = document["origin"]
    if origin["format"] == "fhir-r4":
        return {"claims-export": "bundle.json", "claims-with-errors": "bundle-errors.json"}.get(
            origin.get("bundle_id"), "claims.jsonl"
        )
    # interchange control numbers: 1xxxxxxxx 837p.x12, 2xxxxxxxx 837i.x12, 3xxxxxxxx errors
    return {"1": "837p.x12", "2": "837i.x12", "3": "837p-errors.x12"}[
        origin["interchange_control_number"][0]
    ]


def _run(deployment: StageDeployment, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "stream", *args],
        env=deployment.env(0),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_ingest_and_the_worker_give_one_output_per_claim(
    deployment: StageDeployment, decider: Decider
) -> None:
    deployment.create_topics()
    _, port = deployment.start_worker()
    deployment.wait_healthy(port)

    for name, (decisions, letters) in INGESTED.items():
        summary = _run(deployment, "ingest", str(CLAIMS / name))
        assert f"{decisions:,} encounter events" in summary, summary
        assert f"{letters:,} dead letters" in summary, summary
        assert "0 failed" in summary
    _run(deployment, "send", str(CLAIMS / SENT[0]))

    expected = sum(d + letters for d, letters in INGESTED.values()) + SENT[1]
    records = read_outputs(deployment, expected)
    assert len(records) == expected, deployment.logs()

    settings = deployment.settings
    documents: list[tuple[Record, dict[str, Any]]] = [(r, r.document) for r in records]
    answered = Counter((_group(d), d["origin"]["submitter_claim_id"]) for _, d in documents)
    per_file = Counter(group for group, _ in answered)
    assert max(answered.values()) == 1  # one output per claim
    assert per_file == {
        **{name: d + letters for name, (d, letters) in INGESTED.items()},
        SENT[0]: SENT[1],
    }

    native = {}
    for line in (ROOT / "schemas" / "examples" / "encounters.jsonl").read_bytes().splitlines():
        output = decider.decide(line, FileSource(file="native", line=1))
        if output.route != "dead_letter":
            native[output.claim_id] = json.loads(output.value)
    for record, document in documents:
        assert record.key == (document.get("claim_id") or document.get("raw_key") or "").encode()
        if record.topic == settings.dlq_topic:
            assert document["error"]["kind"] == "contract_violation"
            assert document["error"]["details"][0]["loc"]
            assert document["source"]["file"].endswith(_group(document))
            continue
        expected_decision = native[document["claim_id"]]
        for field in ("outcome", "findings", "diagnoses", "procedures"):
            assert document[field] == expected_decision[field], (document["claim_id"], field)
        assert (
            record.topic
            == {
                "validated": settings.validated_topic,
                "rejected": settings.rejected_topic,
            }[document["outcome"]]
        )
    sent = [d for _, d in documents if _group(d) == SENT[0]]
    assert all(d["source"]["topic"] == settings.input_topic for d in sent)
