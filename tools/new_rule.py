"""Write the stubs of a new rule: its function in its family's module, and its case file.

    python tools/new_rule.py MET-043 conflicts [NAME]     # make new-rule ID=MET-043 FAMILY=conflicts

The function is declared with `@rule` at the end of `stream/core/rules/<family>.py` (the
catalogue gathers it from there: nothing else registers it) and named `met043_<NAME>`; the
case file is `stream/core/rules/cases/MET-043.toml` with the rule's two examples. Both are
stubs marked TODO: the rule finds nothing and its examples name no real code, so the tests
fail until they are written. Then `make regen` regenerates everything else.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "stream" / "core" / "rules"
sys.path.insert(0, str(ROOT))  # this checkout's package, whatever the environment installed

from stream.core.rules import FAMILIES, RULES_BY_ID  # noqa: E402

NEEDED_IMPORTS = {
    "Claim": "from stream.core.claim import Claim",
    "Hit": "from stream.core.rules.base import Hit",
    "rule": "from stream.core.rules.base import rule",
}

FUNCTION = '''

@rule(
    "{rule_id}",
    title="TODO: what the rule asks of a claim, in one line",
    severity="warning",  # TODO: "error" rejects the claim
    citation="TODO: the guideline, edit or policy it rests on",
    carc="16",  # TODO: the claim adjustment reason code a payer would send
    rarc="M76",  # TODO: the remark code, or None
)
def {function}(claim: Claim) -> Hit | None:
    """TODO: one or two sentences: what the rule asks of a claim.

    ## What it checks
    TODO: the exact condition, branch by branch. A code list the check reads is a code set
    of this module, named here in braces (a placeholder), never typed.

    ## Why
    TODO: the guideline, edit or policy behind it, and why its severity is what it is.
    """
    return None  # TODO: the check
'''

CASE_FILE = """\
# {rule_id}: the rule's two examples, then a case for each branch of the rule.
# A case: name, setting, diagnoses (in sequence order), procedures, treatment_directed_at,
# primary_status, tnm, reason, date_of_service (default 2026-05-15), discharge_date, note,
# expect (every finding on the claim: rule ID -> severity), and for the example that fails
# [case.finding] (see stream/core/rules/casebook.py). A rule the stage adds beyond the
# catalogue names its examples "stage violating" and "stage compliant".

[[case]]
name = "catalogue violating"
setting = "outpatient"
diagnoses = ["TODO"]
expect = {{"{rule_id}" = "warning"}}

[case.finding]  # what the finding of the rule itself must say
diagnoses = [1]
names = ["TODO"]

[[case]]
name = "catalogue compliant"
setting = "outpatient"
diagnoses = ["TODO"]
expect = {{}}
"""


class UsageError(Exception):
    """An ID, family or name the scaffold cannot use."""


def families() -> dict[str, Path]:
    """The rule families by module name, with their files."""
    return {module.__name__.rsplit(".", 1)[1]: Path(str(module.__file__)) for module in FAMILIES}


def check_arguments(rule_id: str, family: str, name: str) -> Path:
    """The family module's file, once the arguments are usable."""
    if not re.fullmatch(r"MET-\d{3}", rule_id):
        raise UsageError(f"a rule ID reads MET-0xx, not {rule_id!r}")
    if rule_id in RULES_BY_ID or (RULES / "cases" / f"{rule_id}.toml").exists():
        raise UsageError(f"{rule_id} exists already")
    known = families()
    if family not in known:
        raise UsageError(f"no family {family!r}; the families are: {', '.join(sorted(known))}")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise UsageError(f"a function name is lower-case words joined by _, not {name!r}")
    return known[family]


def missing_imports(source: str) -> list[str]:
    """The import lines the stub needs that the module lacks."""
    imported = {
        alias.asname or alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    return [line for name, line in NEEDED_IMPORTS.items() if name not in imported]


def add_imports(source: str, lines: list[str]) -> str:
    """The source with the import lines after its last top-level import."""
    if not lines:
        return source
    last = max(
        node.end_lineno or node.lineno
        for node in ast.parse(source).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    )
    text = source.splitlines(keepends=True)
    return "".join([*text[:last], *(line + "\n" for line in lines), *text[last:]])


def scaffold(rule_id: str, family: str, name: str) -> list[Path]:
    """Write the function stub and the case file; the files written."""
    module = check_arguments(rule_id, family, name)
    function = f"met{rule_id[4:]}_{name}"
    source = module.read_text("utf-8")
    source = add_imports(source, missing_imports(source))
    module.write_text(
        source.rstrip("\n") + "\n" + FUNCTION.format(rule_id=rule_id, function=function),
        "utf-8",
    )
    cases = RULES / "cases" / f"{rule_id}.toml"
    cases.write_text(CASE_FILE.format(rule_id=rule_id), "utf-8")
    return [module, cases]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("rule_id", metavar="ID", help="the new rule's ID, MET-0xx")
    parser.add_argument("family", metavar="FAMILY", help="its family's module, e.g. conflicts")
    parser.add_argument("name", metavar="NAME", nargs="?", default="check", help="met0xx_NAME")
    args = parser.parse_args(argv)
    try:
        written = scaffold(args.rule_id, args.family, args.name)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    print("fill in every TODO, then run make regen")
    return 0


if __name__ == "__main__":
    sys.exit(main())
