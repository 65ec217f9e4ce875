"""The 837 reader on claims as other senders write them: every claim gives one output, a
failure is contained to the smallest unit it touches, faults in segments the stage does not
read are notes, and the encodings, envelopes and guide labels found in the field are read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stream.core.adapters import x12, x12_segments
from stream.core.decision import Decider
from tests.readers import (
    SOURCE,
    decision,
    event,
    letter,
    note_types,
    outputs,
    recount,
    verdict,
)
from tests.readers import (
    x12 as write_x12,
)

GOOD_A = event("CLM-A", ["C34.11", "C79.51"], ["71260"])
GOOD_B = event("CLM-B", ["C50.912"], ["99214"], patient="PT-2")
GOOD_C = event("CLM-C", ["C18.7", "C78.7"], ["96413"], patient="PT-3")


def _insert_after(text: str, prefix: str, *segments: str, occurrence: int = 0) -> str:
    lines = text.splitlines()
    at = [n for n, line in enumerate(lines) if line.startswith(prefix)][occurrence] + 1
    lines[at:at] = list(segments)
    return recount("\n".join(lines))


def _replace_segment(text: str, prefix: str, new: str, occurrence: int = 0) -> str:
    lines = text.splitlines()
    at = [n for n, line in enumerate(lines) if line.startswith(prefix)][occurrence]
    lines[at] = new
    return "\n".join(lines) + "\n"


def _alone(decider: Decider, *events: dict[str, Any]) -> list[dict[str, Any]]:
    return [verdict(o) for o in outputs(decider, write_x12(list(events)))]


# --- nothing crashes, nothing is lost -----------------------------------------------------------


def _crashing(events: list[dict[str, Any]]) -> str:
    """A transaction set on which pyx12 raises IndexError: five diagnosis pointers in SV107,
    which takes four."""
    text = write_x12(events)
    line = next(x for x in text.splitlines() if x.startswith("SV1*"))
    parts = line.rstrip("~").split("*")
    parts[7] = "1:2:3:4:5"
    return text.replace(line, "*".join(parts) + "~", 1)


def test_pyx12_failing_on_a_transaction_set_fails_its_claims_alone(decider: Decider) -> None:
    sick = [event("CLM-X", ["C34.11", "C79.51", "Z51.11", "C50.912", "R64"], ["96413"])]
    sick.append(event("CLM-Y", ["C34.11"], ["71260"], patient="PT-9"))
    text = write_x12([GOOD_A], control=1) + _crashing(sick) + write_x12([GOOD_C], control=3)
    results = outputs(decider, text)
    assert len(results) == 4  # one output per CLM
    assert verdict(results[0]) == _alone(decider, GOOD_A)[0]
    assert verdict(results[3]) == _alone(decider, GOOD_C)[0]  # pyx12's maps are not spoilt
    for output, claim_id in zip(results[1:3], ("CLM-X", "CLM-Y"), strict=True):
        dead = letter(output)
        assert dead.origin is not None
        assert dead.origin.submitter_claim_id == claim_id
        assert dead.error.details[0].type == "x12_unreadable"
        assert "IndexError" in dead.error.message
        assert f"CLM*{claim_id}*" in dead.raw_value  # its own claim, with its envelope
        assert dead.raw_value.startswith("ISA*")


def test_a_failure_of_the_stage_reading_one_claim_fails_that_claim_alone(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading = x12._read_claim_segment

    def failing(draft: Any, data: Any, segment: Any, loops: Any, position: int) -> None:
        if segment.text.startswith("CLM*CLM-B*"):
            raise TypeError("a bug")
        reading(draft, data, segment, loops, position)

    monkeypatch.setattr(x12, "_read_claim_segment", failing)
    results = outputs(decider, write_x12([GOOD_A, GOOD_B, GOOD_C]))
    assert [o.route for o in results] == ["validated", "dead_letter", "validated"]
    dead = letter(results[1])
    assert dead.error.kind == "internal_error"
    assert "CLM*CLM-B*" in dead.raw_value


def test_bytes_that_are_not_utf8_fail_the_claim_only_where_the_stage_reads_them(
    decider: Decider,
) -> None:
    text = write_x12([GOOD_A, GOOD_B, GOOD_C])
    data = text.encode().replace(b"CLM*CLM-B*", b"CLM*CLM-\xe9B*")
    # a subscriber's name in Latin-1: a segment the stage does not read
    name = next(x for x in text.splitlines() if x.startswith("NM1*IL*") and "PT-3" not in x)
    data = data.replace(name.encode(), name.encode().replace(b"*1*", b"*1*M\xfcLLER", 1))
    results = outputs(decider, data)
    assert len(results) == 3
    dead = letter(results[1])
    assert dead.error.kind == "not_utf8"
    assert dead.raw_value_encoding == "base64"  # the claim's input, byte for byte
    assert "x12_not_utf8" in note_types(results[0])
    assert results[0].route != "dead_letter"


def test_a_transaction_set_cut_short_fails_its_own_claims(decider: Decider) -> None:
    whole = write_x12([GOOD_A], control=1)
    cut = write_x12([GOOD_B, GOOD_C], control=2)
    cut = cut[: cut.index("\nSE*") + 1]
    results = outputs(decider, whole + cut)
    assert next(o.route for o in results) != "dead_letter"
    assert [letter(o).error.details[-1].type for o in results[1:]] == [
        "x12_mandatory_segment_missing",
        "x12_mandatory_segment_missing",
    ]


def test_every_kind_of_breakage_in_one_file_gives_one_output_per_claim(decider: Decider) -> None:
    sick = [event("CLM-X", ["C34.11", "C79.51", "Z51.11", "C50.912", "R64"], ["96413"])]
    parts = [
        write_x12([GOOD_A], control=1),
        _crashing(sick),
        "GS*HC*SENDER*RECEIVER*20260601*0930*9*X*005010X222A1~\n",  # a group with no ISA
        write_x12([GOOD_B], control=2).replace("ISA*00*          *00*", "ISA*00*        *00*"),
        write_x12([GOOD_C], control=3).replace("005010X222A1", "005010X224A2"),  # 837D
        write_x12([GOOD_A, GOOD_B], control=4).rsplit("\nSE*", 1)[0],  # cut
    ]
    data = "".join(parts).encode()
    claims = data.count(b"\nCLM*")
    results = outputs(decider, data)
    decided = [o for o in results if o.route != "dead_letter"]
    dead = [letter(o) for o in results if o.route == "dead_letter"]
    assert len(results) == claims  # every claim one output, none lost, none invented
    assert [o.claim_id for o in decided] == ["CLM-A"]
    assert sorted(d.origin.submitter_claim_id or "" for d in dead if d.origin) == sorted(
        ["CLM-X", "CLM-B", "CLM-C", "CLM-A", "CLM-B"]
    )


# --- judged by what the stage reads --------------------------------------------------------


def test_a_fault_in_a_segment_the_stage_does_not_read_is_a_note(decider: Decider) -> None:
    # PWK02 AD: valid in the guide's DME examples, not in pyx12's map of 2400 PWK
    text = _insert_after(write_x12([GOOD_A, GOOD_B]), "SV1*", "PWK*CT*AD~", occurrence=1)
    first, second = outputs(decider, text)
    assert verdict(first) == _alone(decider, GOOD_A)[0]
    assert verdict(second) == _alone(decider, GOOD_B)[0]
    origin = decision(second).origin
    assert origin is not None
    assert origin.notes is not None
    note = next(n for n in origin.notes if n.segment == "PWK")
    assert (note.loop, note.element, note.type) == ("2400", "PWK02", "x12_invalid_code_value")
    assert note.position is not None
    assert "(AD) is not a valid code" in note.message
    assert "PWK" not in json.dumps(json.loads(first.value).get("origin"))


def test_a_fault_in_a_billing_provider_loop_is_a_note_of_each_claim_below(
    decider: Decider,
) -> None:
    text = write_x12([GOOD_A, GOOD_B])
    taxonomy = next(x for x in text.splitlines() if x.startswith("PRV*BI*PXC*"))
    text = text.replace(taxonomy, taxonomy.replace("*PXC*", "*ZZ*"), 1)
    results = outputs(decider, text)
    assert [verdict(o) for o in results] == _alone(decider, GOOD_A, GOOD_B)
    for output in results:
        notes = decision(output).origin.notes  # type: ignore[union-attr]
        assert notes is not None
        assert [(n.segment, n.loop, n.element) for n in notes] == [("PRV", "2000A", "PRV02")]


@pytest.mark.parametrize(
    ("change", "decided", "kind"),
    [
        (lambda t: _insert_after(t, "HI*", "HI*BH:11:D8:20260510~"), True, "occurrence code"),
        (lambda t: _insert_after(t, "HI*", "ZZZ*1*2~"), True, "unknown segment"),
        (lambda t: _insert_after(t, "HI*", "DTP*434*RD8*20260514-20260514~"), True, "837I date"),
        (lambda t: _insert_after(t, "CLM*", "DTP*431*D8*20261301~"), True, "onset date"),
        (lambda t: t.replace("HI*ABK:C3411", "HI*ABK:C3411:X:Y:Z", 1), False, "diagnosis"),
        (lambda t: t.replace("*19560302*", "*19560230*", 1), False, "birth date"),
        (lambda t: t.replace("DTP*472*D8*20260514", "DTP*472*D8*20261314", 1), False, "date"),
        (lambda t: t.replace("SV1*HC:71260*", "SV1*HC:71260:ZZZ*", 1), False, "modifier"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_fault_fails_the_claim_when_the_stage_reads_the_segment(
    decider: Decider, change: Any, decided: bool, kind: str
) -> None:
    (output,) = outputs(decider, change(write_x12([GOOD_A])))
    assert (output.route != "dead_letter") == decided
    if decided:
        assert note_types(output)
        assert verdict(output) == _alone(decider, GOOD_A)[0]


def test_hl_numbering_is_a_note_and_a_wrong_hl_parent_fails_the_claims(decider: Decider) -> None:
    text = write_x12([GOOD_A])
    renumbered = text.replace("HL*1**20*1~", "HL*63**20*1~").replace(
        "HL*2*1*22*0~", "HL*64*63*22*0~"
    )
    (output,) = outputs(decider, renumbered)
    assert note_types(output).count("x12_hl_numbering") == 2
    (output,) = outputs(decider, text.replace("HL*2*1*22*0~", "HL*2*7*22*0~"))
    assert letter(output).error.details[0].type == "x12_hl_parent"


# --- X12 as it arrives ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: b"\xef\xbb\xbf" + t.encode(),
        lambda t: t.encode("utf-16"),  # with its byte-order mark
        lambda t: t.encode("utf-16-le"),
        lambda t: t.encode("utf-16-be"),
        lambda t: t.replace("\n", "").encode(),  # no line breaks at all
        lambda t: t.replace("\n", "\r\n").encode(),
    ],
    ids=["UTF-8 BOM", "UTF-16", "UTF-16LE", "UTF-16BE", "one line", "CRLF"],
)
def test_an_837_is_read_whatever_its_encoding(decider: Decider, encode: Any) -> None:
    text = write_x12([GOOD_A, GOOD_B])
    assert [verdict(o) for o in outputs(decider, encode(text))] == _alone(decider, GOOD_A, GOOD_B)


@pytest.mark.parametrize(
    ("guide", "label", "events"),
    [
        ("837p", "005010X222A2", [GOOD_A, GOOD_B]),
        (
            "837i",
            "005010X223A3",
            [
                event(
                    "CLM-I",
                    ["C18.7"],
                    setting="inpatient",
                    date="2026-05-02",
                    discharge="2026-05-09",
                )
            ],
        ),
    ],
)
def test_the_2014_guides_are_read_with_the_maps_before_them(
    decider: Decider, guide: Any, label: str, events: list[dict[str, Any]]
) -> None:
    text = write_x12(events, guide=guide)
    labelled = text.replace("005010X222A1", label).replace("005010X223A2", label)
    results = outputs(decider, labelled)
    assert [verdict(o) for o in results] == [verdict(o) for o in outputs(decider, text)]
    for output in results:
        origin = decision(output).origin
        assert origin is not None
        assert origin.implementation_guide == label
        assert note_types(output)[0] == "x12_guide_read_as"


def test_a_transaction_without_its_interchange_envelope_is_one_dead_letter(
    decider: Decider,
) -> None:
    text = write_x12([GOOD_A, GOOD_B])
    bare = text[text.index("GS*") : text.index("IEA*")]
    (output,) = outputs(decider, bare)
    dead = letter(output)
    assert dead.error.details[0].type == "x12_no_envelope"
    assert "no ISA" in dead.error.message
    assert "the 2 claims" in dead.error.message
    assert dead.raw_value == bare.strip()


def test_text_before_the_first_isa_is_kept_in_a_bounded_dead_letter(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(x12_segments, "MAX_UNENVELOPED_CHARS", 100)
    text = "ST*837*0001*005010X222A1~\n" + "NTE*ADD*" + "X" * 5000 + "~\n" + write_x12([GOOD_A])
    first, second = outputs(decider, text)
    assert len(letter(first).raw_value) == 100
    assert "first 100 characters" in letter(first).error.message
    assert verdict(second) == _alone(decider, GOOD_A)[0]  # the interchange after it is read


def test_minutes_of_anesthesia_are_not_units(decider: Decider) -> None:
    anesthesia = event("CLM-M", ["C34.11"], ["00520"])
    anesthesia["procedures"][0].update(units=1, minutes=88)
    (output,) = outputs(decider, write_x12([anesthesia]))
    assert "SV1*HC:00520*" in write_x12([anesthesia])
    assert "*MJ*88*" in write_x12([anesthesia])
    read_event = json.loads(output.value)["encounter"]
    assert read_event["procedures"][0]["units"] == 1
    assert read_event["procedures"][0]["minutes"] == 88
    native = decider.decide(json.dumps(anesthesia).encode(), SOURCE)
    assert verdict(output) == verdict(native)


@pytest.mark.parametrize(
    ("change", "type_"),
    [
        (
            lambda t: t.replace("ISA*00*          *00*", "ISA*00*         *00*", 1),
            "x12_isa_not_fixed_width",
        ),
        (lambda t: t.replace("*^*00501*", "*U*00401*", 1), "x12_envelope_version"),
        (
            lambda t: t.replace("ST*837*0001*005010X222A1", "ST*837*0001*005010X223A2", 1),
            "x12_guide_mismatch",
        ),
        (lambda t: t.replace("005010X222A1", "005010X224A2"), "x12_unsupported_guide"),
    ],
    ids=["ISA field short", "4010 envelope", "ST03 not GS08", "837D"],
)
def test_an_envelope_fault_fails_each_claim_in_it_with_its_own_dead_letter(
    decider: Decider, change: Any, type_: str
) -> None:
    results = outputs(decider, change(write_x12([GOOD_A, GOOD_B])))
    assert len(results) == 2
    for output, claim_id in zip(results, ("CLM-A", "CLM-B"), strict=True):
        dead = letter(output)
        assert type_ in [d.type for d in dead.error.details]
        assert dead.origin is not None
        assert dead.origin.submitter_claim_id == claim_id


def test_interchanges_with_different_delimiters_in_one_file(decider: Decider) -> None:
    first = write_x12([GOOD_A], control=1)
    other = write_x12([GOOD_B], control=2)
    other = other.replace("*", "|").replace(":", ">").replace("~\n", "'\n")
    other = other.replace("ISA|00|", "ISA|00|", 1).replace("|^|00501|", "|^|00501|")
    assert [verdict(o) for o in outputs(decider, first + other)] == _alone(decider, GOOD_A, GOOD_B)


def test_what_holds_no_claim_is_one_dead_letter_that_says_so(decider: Decider) -> None:
    text = write_x12([GOOD_A])
    empty_set = "\n".join(
        x
        for x in text.splitlines()
        if not x.startswith(("HL*", "CLM*", "HI*", "LX*", "SV1*", "DTP*"))
    )
    (output,) = outputs(decider, recount(empty_set))
    assert "holds no claim" in letter(output).error.message
    envelope_only = "\n".join(
        x for x in text.splitlines() if x.startswith(("ISA*", "GS*", "GE*", "IEA*"))
    ).replace("GE*1*", "GE*0*")
    (output,) = outputs(decider, envelope_only)
    assert "no transaction set" in letter(output).error.message


def test_segments_outside_any_interchange_holding_a_claim_are_a_dead_letter(
    decider: Decider,
) -> None:
    text = write_x12([GOOD_A])
    claim = [x for x in text.splitlines() if x.startswith(("CLM*", "HI*"))]
    results = outputs(decider, text + "\n".join(claim) + "\n")
    assert results[0].route != "dead_letter"
    assert letter(results[1]).error.details[0].type == "x12_no_envelope"


# --- bounded -------------------------------------------------------------------------------


def test_a_segment_without_a_terminator_is_cut(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(x12_segments, "MAX_SEGMENT_CHARS", 500)
    text = write_x12([GOOD_A, GOOD_B])
    # a note that runs into the next claim's CLM: no terminator between them
    broken = text.replace("CLM*CLM-B*", "NTE*ADD*" + "Y" * 2000 + "CLM*CLM-B*", 1)
    results = outputs(decider, broken)
    assert len(results) == 2  # the CLM swallowed by the segment is a dead letter of its loop
    assert verdict(results[0]) == _alone(decider, GOOD_A)[0]
    dead = letter(results[1])
    assert "x12_segment_too_long" in [d.type for d in dead.error.details]
    assert "loop 2000B holds no claim" in dead.error.message
    assert "Y" * 400 in dead.raw_value
    assert "Y" * 600 not in dead.raw_value


def test_claims_are_released_before_the_end_of_a_huge_transaction_set(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(x12, "MAX_HELD_CLAIMS", 2)
    third = event("CLM-C", ["C18.7"], ["96413"], patient="PT-2")
    text = write_x12([GOOD_A, GOOD_B, third])
    wrong_count = _replace_segment(text, "SE*", "SE*99*0001~")
    results = outputs(decider, wrong_count)
    assert [o.route == "dead_letter" for o in results] == [False, False, True]
    assert "x12_released_early" in note_types(results[0])
    assert letter(results[2]).error.details[-1].type == "x12_segment_count_mismatch"
