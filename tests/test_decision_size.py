"""A decision too large for the output topics is never sent: its input goes to the
dead-letter topic as `decision_too_large`, kept whole, and the record still has one output."""

from __future__ import annotations

import base64
import datetime as dt

from stream.core.contracts import DeadLetter, KafkaSource
from stream.core.decision import MAX_OUTPUT_BYTES, Decider, decision_too_large
from tests.claims import encode, encounter

SOURCE = KafkaSource(topic="encounters", partition=2, offset=41)
RECEIVED = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def test_the_limit_is_the_output_topics_default_record_size(decider: Decider) -> None:
    assert decider.max_output_bytes == MAX_OUTPUT_BYTES == 1024 * 1024


def test_a_decision_over_the_limit_is_a_dead_letter_that_keeps_the_input(
    decider: Decider,
) -> None:
    raw = encode(encounter(["C34.90", "C79.51"]))
    decision = decider.decide(raw, SOURCE)
    assert decision.route != "dead_letter"
    small = Decider(
        decider.policies, decider.icd10cm, decider.cpt, max_output_bytes=len(decision.value) - 1
    )
    output = small.decide(raw, SOURCE, key=b"CLM-1")
    assert output.route == "dead_letter"
    assert output.dead_letter_kind == "decision_too_large"
    assert (output.event_id, output.claim_id) == (decision.event_id, decision.claim_id)
    assert output.key == b"CLM-1"
    assert dict(output.headers)["error_kind"] == b"decision_too_large"
    letter = DeadLetter.model_validate_json(output.value)
    assert letter.raw_value.encode() == raw
    assert f"{len(decision.value):,} bytes" in letter.error.message
    assert f"at most {len(decision.value) - 1:,} bytes" in letter.error.message
    assert letter.source == SOURCE


def test_a_decision_of_exactly_the_limit_is_sent(decider: Decider) -> None:
    raw = encode(encounter(["C34.90", "C79.51"]))
    size = len(decider.decide(raw, SOURCE).value)
    exact = Decider(decider.policies, decider.icd10cm, decider.cpt, max_output_bytes=size)
    assert exact.decide(raw, SOURCE).route != "dead_letter"


def test_the_workers_letter_for_a_refused_decision_keeps_a_binary_input() -> None:
    raw = b"\xff\xfe not text"
    letter = decision_too_large(
        raw, SOURCE, None, RECEIVED, "refused", event_id="e-1", claim_id="c-1"
    )
    document = DeadLetter.model_validate_json(letter.value)
    assert document.error.kind == "decision_too_large"
    assert document.raw_value_encoding == "base64"
    assert base64.b64decode(document.raw_value) == raw
    assert (letter.event_id, letter.claim_id) == ("e-1", "c-1")
