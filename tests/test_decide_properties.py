"""Properties of `decide`: whatever the bytes, it returns exactly one well-formed record."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.contracts import DeadLetter, Decision, KafkaSource
from stream.core.decision import Decider, Output
from tests.claims import encounter

SOURCE = KafkaSource(topic="encounters", partition=0, offset=1)
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CODES = st.sampled_from(
    ["C34.11", "C7951", "c50.912", "C78.03", "C78.0", "Z85.3", "Z08", "C80.1", "C79.9",
     "C80.0", "C7A.012", "C7B.02", "C83.38", "C77.0", "C90.00", "C90.01", "G89.3", "R64",
     "E88.A", "Z51.11", "Z51.0", "Z51.5", "J91.0", "M84.551A", "M84.451A", "T86.19",
     "C80.2", "C61", "C18.2", "C18.3", "R18.0", "", "  ", "X", "C3.411", "Ü12"]
)  # fmt: skip
PROCEDURES = st.sampled_from(
    ["71260", "32405", "10006", "10005", "38900", "47001", "61510", "78815", "A9595",
     "77770", "96413", "20206", "1234F", "ABC", "", "36556"]
)  # fmt: skip


def check_output(raw: bytes | None, output: Output) -> None:
    """The record is complete and consistent, and a dead letter keeps its input whole.

    A dead letter of kind `internal_error` is the stage failing on the record: `decide`
    never raises, so a crash would otherwise pass for a well-formed output."""
    assert output.route in ("validated", "rejected", "dead_letter")
    if output.route == "dead_letter":
        letter = DeadLetter.model_validate_json(output.value)
        assert letter.error.kind != "internal_error", letter.error.message
        kept = (
            letter.raw_value.encode()
            if letter.raw_value_encoding == "utf-8"
            else base64.b64decode(letter.raw_value)
        )
        assert kept == (raw or b"")
        assert letter.error.message
    else:
        decision = Decision.model_validate_json(output.value)
        assert decision.outcome == output.route
        assert json.loads(output.value)["encounter"] == json.loads(raw or b"")


@PROPERTY
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes(decider: Decider, raw: bytes) -> None:
    check_output(raw, decider.decide(raw, SOURCE, key=raw[:8]))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@PROPERTY
@given(value=JSON_VALUES)
def test_arbitrary_json(decider: Decider, value: Any) -> None:
    raw = json.dumps(value).encode()
    check_output(raw, decider.decide(raw, SOURCE))


FIELDS = ["schema_version", "event_id", "claim_id", "setting", "date_of_service",
          "diagnoses", "procedures", "context", "patient", "occurred_at", "discharge_date",
          "event_type", "payer_id", "encounter_id", "unknown_field"]  # fmt: skip


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid-looking claim with random codes and context, then a few random mutations."""
    event = encounter(
        draw(st.lists(CODES, min_size=1, max_size=8)),
        draw(st.lists(PROCEDURES, max_size=5)),
        setting=draw(st.sampled_from(["inpatient", "outpatient", "professional"])),
        treatment_directed_at=draw(st.sampled_from([None, "primary", "secondary", "both"])),
        primary_status=draw(st.sampled_from([None, "active", "eradicated", "unknown"])),
        tnm=draw(st.sampled_from([None, "T2N1M1", "cT2 N0 M0", "TXNXMX", "M1a", ""])),
        reason=draw(st.one_of(st.none(), st.text(max_size=80))),
        date_of_service=draw(st.sampled_from(["2026-05-15", "2020-06-01", "2019-01-01"])),
    )
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        field = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()):
            event.pop(field, None)
        else:
            event[field] = draw(JSON_VALUES)
    return event


@PROPERTY
@given(event=mutated_events())
def test_mutated_events(decider: Decider, event: dict[str, Any]) -> None:
    raw = json.dumps(event).encode()
    check_output(raw, decider.decide(raw, SOURCE))


@PROPERTY
@given(event=mutated_events(), cut=st.integers(min_value=0, max_value=400))
def test_truncated_events(decider: Decider, event: dict[str, Any], cut: int) -> None:
    raw = json.dumps(event).encode()[:cut]
    check_output(raw, decider.decide(raw, SOURCE))


class CrashingDecider(Decider):
    """A decider whose decision fails on every claim it reads."""

    def _decision(self, *args: object, **kwargs: object) -> Output:
        raise RuntimeError("planted")


def test_the_properties_fail_when_decide_fails_on_a_claim(decider: Decider) -> None:
    crashing = CrashingDecider(decider.policies, icd10cm=decider.icd10cm, cpt=decider.cpt)
    raw = json.dumps(encounter(["C34.11", "C78.01"])).encode()
    output = crashing.decide(raw, SOURCE)
    assert json.loads(output.value)["error"]["kind"] == "internal_error"
    with pytest.raises(AssertionError, match="the stage failed on this record"):
        check_output(raw, output)
    check_output(raw, decider.decide(raw, SOURCE))  # the same claim, decided
