"""The ruleset version is the catalogue's, not a number remembered by hand.

`stream/core/rules/ruleset.py` holds the version and the fingerprint of the catalogue it was
given for; `make regen` writes the next version when the fingerprint changes. A change to a
rule's check, metadata or code sets without it fails here; a change to documentation,
comments or layout does not change the fingerprint.
"""

from __future__ import annotations

import pytest

from stream.core.rules import FAMILIES, RULESET_VERSION
from stream.core.rules.fingerprint import (
    NOT_DECIDING,
    catalogue_fingerprint,
    deciding_modules,
    next_version,
)
from stream.core.rules.ruleset import FINGERPRINT

RULE = '''"""A family."""

from stream.core.rules.base import rule


@rule("MET-999", title="A title", severity="warning", citation="c", carc="16", rarc=None)
def met999(claim: object) -> None:
    """What it asks.

    ## What it checks
    Something.
    """
    # why the check reads as it does
    return None if claim else f"{claim!r} is {'empty'}"
'''


def test_the_version_was_given_for_this_catalogue() -> None:
    assert catalogue_fingerprint() == FINGERPRINT, (
        f"the catalogue changed since version {RULESET_VERSION} was given: run `make regen`"
    )


def test_every_family_module_is_in_the_fingerprint() -> None:
    modules = deciding_modules()
    for family in FAMILIES:
        assert f"{family.__name__.rsplit('.', 1)[1]}.py" in modules
    assert {"base.py", "code_lists.py", "config.py"} <= set(modules)
    assert not NOT_DECIDING & set(modules)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('severity="warning"', 'severity="error"'),
        ('title="A title"', 'title="Another title"'),
        ("return None if claim", "return None if not claim"),
        ("{'empty'}", "{'blank'}"),  # inside an f-string
    ],
)
def test_a_change_that_decides_differently_changes_the_fingerprint(before: str, after: str) -> None:
    assert before in RULE
    changed = RULE.replace(before, after)
    assert catalogue_fingerprint({"family.py": changed}) != catalogue_fingerprint(
        {"family.py": RULE}
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("Something.", "Something else, documented better."),  # a docstring
        ("# why the check reads as it does", "# a comment rewritten"),
        ('"""A family."""', '"""The family, described."""'),
        ("    return None", "\n    return None"),  # a blank line
        ('carc="16", rarc=None)', 'carc="16",\n    rarc=None)'),  # the layout
    ],
)
def test_documentation_and_layout_keep_the_fingerprint(before: str, after: str) -> None:
    assert before in RULE
    changed = RULE.replace(before, after)
    assert catalogue_fingerprint({"family.py": changed}) == catalogue_fingerprint(
        {"family.py": RULE}
    )


def test_the_next_version_counts_up_its_last_number() -> None:
    assert next_version("2026.12.0") == "2026.12.1"
    assert next_version("2026.12.9") == "2026.12.10"
    with pytest.raises(ValueError, match="ends in a number"):
        next_version("2026.12.x")
