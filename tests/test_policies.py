"""Payer policies and the review route: precedence, versions, routing, and broken files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stream.core.contracts import Decision, FileSource
from stream.core.decision import Decider
from stream.core.rules import RULESET_VERSION
from stream.core.rules import config as rules_config
from stream.core.rules.config import (
    Policies,
    RulesConfigError,
    load_rules_config,
    parse_rules_config,
)
from stream.core.rules.tomllines import key_lines
from tests.claims import encode, encounter

SOURCE = FileSource(file="claims.jsonl", line=1)


def _policies(text: str) -> Policies:
    return Policies(parse_rules_config(text, "policy.toml"))


def _laterality(payer: str | None, claim_id: str = "CLM-LAT") -> bytes:
    """MET-025 warns (unspecified side with the side documented): nothing else fires."""
    event = encounter(
        ["C64.2", "C78.00"],
        ["71260"],
        primary_status="active",
        reason="Restaging CT chest: right lower lobe metastasis from left renal cell carcinoma.",
        claim_id=claim_id,
    )
    if payer is not None:
        event["payer_id"] = payer
    return encode(event)


def _unknown_primary(payer: str | None, with_error: bool = False) -> bytes:
    """MET-007 warns (C80.1 beside a specified primary); with_error adds MET-001 (error)."""
    codes = ["C34.11", "C79.51", "C80.1"] + (["C99.99"] if with_error else [])
    event = encounter(codes, primary_status="active", claim_id="CLM-UNK")
    if payer is not None:
        event["payer_id"] = payer
    return encode(event)


def _decide(decider: Decider, raw: bytes) -> tuple[str, dict[str, str], dict[str, Any]]:
    output = decider.decide(raw, SOURCE)
    document = json.loads(output.value)
    return output.route, {f["rule_id"]: f["severity"] for f in document["findings"]}, document


@pytest.fixture(scope="module")
def codes(decider: Decider) -> dict[str, Any]:
    """The reference data of the session's decider, shared by the deciders built here."""
    return {"icd10cm": decider.icd10cm, "cpt": decider.cpt}


def _decider(text: str, codes: dict[str, Any]) -> Decider:
    return Decider(_policies(text), **codes)


# --- precedence: payer section, then global section, then the catalogue -------------------

PRECEDENCE = """
[rules.MET-025]
severity = "error"

[payers.ACME.rules.MET-025]
severity = "default"

[payers.BETA.rules.MET-025]
enabled = false

[payers.GAMMA.rules.MET-026]
enabled = false
"""


@pytest.mark.parametrize(
    ("payer", "route", "findings"),
    [
        (None, "rejected", {"MET-025": "error"}),  # the global policy
        ("OTHER", "rejected", {"MET-025": "error"}),  # a payer without a section: global
        ("GAMMA", "rejected", {"MET-025": "error"}),  # a section about another rule: global
        ("ACME", "validated", {"MET-025": "warning"}),  # back to the catalogue's own
        ("BETA", "validated", {}),  # disabled for this payer only
    ],
)
def test_payer_over_global_over_catalogue(
    codes: dict[str, Any], payer: str | None, route: str, findings: dict[str, str]
) -> None:
    decider = _decider(PRECEDENCE, codes)
    got_route, got_findings, _ = _decide(decider, _laterality(payer))
    assert (got_route, got_findings) == (route, findings)


def test_without_configuration_the_catalogue_decides(decider: Decider) -> None:
    route, findings, document = _decide(decider, _laterality("ACME"))
    assert (route, findings) == ("validated", {"MET-025": "warning"})
    assert document["ruleset_version"] == RULESET_VERSION


def test_a_payer_section_overrides_key_by_key(codes: dict[str, Any]) -> None:
    policies = _policies(
        """
        [rules.MET-007]
        route = "review"
        severity = "warning"

        [payers.ACME.rules.MET-007]
        severity = "error"
        """
    )
    acme, other = policies.for_payer("ACME").states["MET-007"], policies.for_payer("X")
    assert (acme.enabled, acme.severity, acme.review) == (True, "error", True)  # route inherited
    assert other.states["MET-007"].severity == "warning"


def test_a_payer_can_enable_what_the_global_policy_disables(codes: dict[str, Any]) -> None:
    decider = _decider(
        "[rules.MET-025]\nenabled = false\n[payers.ACME.rules.MET-025]\nenabled = true\n", codes
    )
    assert _decide(decider, _laterality("ACME"))[1] == {"MET-025": "warning"}
    assert _decide(decider, _laterality("OTHER"))[1] == {}


# --- versions: global hash plus the payer's -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ('[rules.MET-005]\nseverity = "warning"\n', f"{RULESET_VERSION}+cfg.e6421bf7"),
        (
            '[rules.MET-026]\nenabled = false\n[rules.MET-031]\nseverity="warning"\n',
            f"{RULESET_VERSION}+cfg.fe146214",
        ),
        (
            '[rules.MET-026]\nenabled = false\nseverity="error"\n[rules.MET-001]\nenabled=true\n',
            f"{RULESET_VERSION}+cfg.a2c37faa",
        ),
        ("", RULESET_VERSION),
        ("[rules.MET-001]\nenabled = true\n", RULESET_VERSION),  # changes nothing
    ],
)
def test_files_of_the_single_policy_format_keep_their_version(text: str, version: str) -> None:
    """Versions computed by the stage before payer policies existed: a deployment that keeps
    its file keeps its ruleset version."""
    policies = _policies(text)
    assert policies.default.version == version
    assert policies.version == version
    assert not policies.payers


def test_each_payer_policy_has_its_own_version() -> None:
    policies = _policies(PRECEDENCE)
    global_version = policies.default.version
    assert global_version.startswith(f"{RULESET_VERSION}+cfg.")
    for payer in ("ACME", "BETA", "GAMMA"):
        version = policies.for_payer(payer).version
        assert version.startswith(global_version + ".payer."), version
    versions = {policies.for_payer(p).version for p in ("ACME", "BETA", "GAMMA")}
    assert len(versions) == 3
    assert policies.for_payer("OTHER") is policies.default
    assert policies.version.startswith(global_version + ".payers.")


def test_a_payer_change_alone_leaves_the_global_version() -> None:
    policies = _policies("[payers.ACME.rules.MET-025]\nseverity = 'error'\n")
    assert policies.default.version == RULESET_VERSION
    assert policies.for_payer("ACME").version.startswith(f"{RULESET_VERSION}+payer.")


def test_a_section_that_changes_nothing_is_the_global_policy() -> None:
    policies = _policies("[rules.MET-025]\nenabled = false\n[payers.ACME.rules.MET-025]\n")
    assert policies.for_payer("ACME") is policies.default
    assert not policies.payers


def test_decisions_carry_the_version_of_the_policy_that_judged_them(
    codes: dict[str, Any],
) -> None:
    decider = _decider(PRECEDENCE, codes)
    for payer in ("ACME", "BETA", "OTHER"):
        output = decider.decide(_laterality(payer), SOURCE)
        expected = decider.policies.for_payer(payer).version
        assert json.loads(output.value)["ruleset_version"] == expected
        assert dict(output.headers)["ruleset_version"] == expected.encode()


def test_rulesets_are_built_at_start_never_per_claim(
    codes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    decider = _decider(PRECEDENCE, codes)
    built: list[object] = []
    original = rules_config.Ruleset.__init__

    def counting(self: rules_config.Ruleset, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(rules_config.Ruleset, "__init__", counting)
    for n, payer in enumerate(["ACME", "BETA", "GAMMA", "OTHER", None] * 20):
        decider.decide(_laterality(payer, claim_id=f"C{n}"), SOURCE)
    assert built == []
    assert _policies(PRECEDENCE) is not None
    assert len(built) == 4  # the check can fail: building policies does build rulesets


# --- the review route -----------------------------------------------------------------------

REVIEW = '[rules.MET-007]\nroute = "review"\n[payers.ACME.rules.MET-007]\nroute = "default"\n'


def test_a_claim_with_no_error_that_a_review_rule_flags_goes_to_review(
    codes: dict[str, Any],
) -> None:
    decider = _decider(REVIEW, codes)
    output = decider.decide(_unknown_primary("OTHER"), SOURCE)
    assert output.route == "review"
    decision = Decision.model_validate_json(output.value)
    assert decision.outcome == "validated"  # the outcome keeps its contract
    assert decision.review_rules == ("MET-007",)
    headers = dict(output.headers)
    assert headers["route"] == b"review"
    assert headers["outcome"] == b"validated"


def test_an_error_still_rejects_a_claim_a_review_rule_flags(codes: dict[str, Any]) -> None:
    output = _decider(REVIEW, codes).decide(_unknown_primary(None, with_error=True), SOURCE)
    assert output.route == "rejected"
    document = json.loads(output.value)
    assert "review_rules" not in document
    assert "route" not in dict(output.headers)


def test_a_payer_can_take_a_rule_off_the_review_route(codes: dict[str, Any]) -> None:
    output = _decider(REVIEW, codes).decide(_unknown_primary("ACME"), SOURCE)
    assert output.route == "validated"


def test_without_a_route_the_outputs_are_as_before(decider: Decider) -> None:
    output = decider.decide(_unknown_primary(None), SOURCE)
    assert output.route == "validated"
    assert "review_rules" not in json.loads(output.value)
    assert [name for name, _ in output.headers] == ["event_id", "outcome", "ruleset_version"]
    assert not decider.policies.routes_to_review


def test_the_contract_keeps_review_to_validated_decisions(codes: dict[str, Any]) -> None:
    output = _decider(REVIEW, codes).decide(_unknown_primary("OTHER"), SOURCE)
    document = json.loads(output.value)
    wrong_rule = {**document, "review_rules": ["MET-001"]}
    with pytest.raises(ValueError, match="review_rules names only rules"):
        Decision.model_validate_json(json.dumps(wrong_rule))
    rejected = json.loads(
        _decider(REVIEW, codes).decide(_unknown_primary(None, True), SOURCE).value
    )
    rejected["review_rules"] = ["MET-007"]
    with pytest.raises(ValueError, match="never to review"):
        Decision.model_validate_json(json.dumps(rejected))


# --- broken files: a usage error naming the line ------------------------------------------

BROKEN: dict[str, tuple[str, str]] = {
    "unknown rule, global": ("[rules.MET-026]\nenabled = false\n\n[rules.MET-099]\n", "line 4: "),
    "unknown rule, payer": (
        "[payers.ACME.rules.MET-025]\nseverity = 'error'\n[payers.ACME.rules.MET-42]\n",
        "line 3: payers.ACME.rules.MET-42: unknown rule ID MET-42",
    ),
    "unknown key": (
        "# c\n[payers.ACME.rules.MET-025]\nseverty = 'error'\n",
        "line 3: payers.ACME.rules.MET-025.severty: unknown key 'severty'",
    ),
    "bad severity": (
        "[rules.MET-001]\n\nseverity = 'fatal'  # no\n",
        'line 3: rules.MET-001.severity = "fatal": must be "error", "warning" or "default"',
    ),
    "bad route": (
        "[rules.MET-007]\nroute = 'reveiw'\n",
        'line 2: rules.MET-007.route = "reveiw": must be "review" or "default"',
    ),
    "enabled as text": (
        "[payers.MEDICARE.rules.MET-018]\nenabled = 'no'\n",
        'line 2: payers.MEDICARE.rules.MET-018.enabled = "no": must be true or false',
    ),
    "unknown table": ("\n\n[rule.MET-001]\nenabled = false\n", "line 3: rule: unknown key 'rule'"),
    "unknown payer key": (
        "[payers.ACME]\nrulez = 1\n",
        "line 2: payers.ACME.rulez: unknown key 'rulez': a payer section takes",
    ),
    "inline table": (
        "[payers.X.rules]\nMET-005 = { enabled = false, severity = 'fatal' }\n",
        'line 2: payers.X.rules.MET-005.severity = "fatal"',
    ),
    "dotted key": (
        "[payers.X]\nrules.MET-005.route = 1\n",
        "line 2: payers.X.rules.MET-005.route = 1: must be",
    ),
    "rule not a table": (
        "[rules]\nMET-006 = true\n",
        "line 2: rules.MET-006 = true: a rule is a table",
    ),
    "blank payer": ("[payers.' '.rules.MET-001]\nenabled = false\n", "line 1: payers. "),
    "MET-042 disabled for a payer": (
        "[rules.MET-001]\nenabled = true\n[payers.ACME.rules.MET-042]\nenabled = false\n",
        "line 4: payers.ACME.rules.MET-042.enabled: MET-042 cannot be disabled",
    ),
    "not TOML": ("[rules.MET-001\nenabled = false\n", "is not valid TOML: "),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_are_errors_naming_the_line(case: str) -> None:
    text, expected = BROKEN[case]
    with pytest.raises(RulesConfigError) as raised:
        parse_rules_config(text, "policy.toml")
    message = str(raised.value)
    assert message.startswith("policy.toml"), message
    assert expected in message, message


def test_every_problem_of_a_file_is_listed_in_line_order() -> None:
    text = "[rules.MET-007]\nroute = 'x'\n[payers.A.rules.MET-099]\n[rules.MET-001]\nenabled=1\n"
    with pytest.raises(RulesConfigError) as raised:
        parse_rules_config(text, "p.toml")
    lines = str(raised.value).splitlines()
    assert lines[0] == "p.toml: 3 problems:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["line 2", "line 3", "line 5"]


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RulesConfigError, match="cannot read"):
        load_rules_config(tmp_path / "missing.toml")


def test_key_lines_follow_tables_dotted_keys_inline_tables_and_quotes() -> None:
    text = (
        "# [rules.MET-001] in a comment\n"
        '[payers."BCBS IL".rules.MET-025]\n'
        'severity = "error" # a # in a comment\n'
        "[payers.X]\n"
        "rules.MET-006.enabled = false\n"
        "rules.MET-007 = { route = 'review', severity = \"warning\" }\n"
        'note = """\n[rules.MET-009]\n"""\n'
        "[rules.MET-010]\n"
    )
    lines = key_lines(text)
    assert lines[("payers", "BCBS IL", "rules", "MET-025")] == 2
    assert lines[("payers", "BCBS IL", "rules", "MET-025", "severity")] == 3
    assert lines[("payers", "X", "rules", "MET-006", "enabled")] == 5
    assert lines[("payers", "X", "rules", "MET-007", "severity")] == 6
    assert ("rules", "MET-009") not in lines  # inside a multi-line string
    assert ("rules", "MET-001") not in lines  # inside a comment
    assert lines[("rules", "MET-010")] == 10


def test_the_policies_page_shows_the_example_policy() -> None:
    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "policies.md").read_text("utf-8")
    block = page.split("[`docs/policy.toml`](policy.toml):\n\n```toml\n", 1)[1]
    shown = parse_rules_config(block.split("```", 1)[0], "docs/policies.md")
    assert shown == load_rules_config(root / "docs" / "policy.toml")
    assert shown.payers, "the example has payer sections"
