"""The documentation: a README that is a front door, pages in docs/ it links to, links that
land, and generated parts that follow the rules.

Links are checked as GitHub renders them: a relative link names a file of the repository, and
an anchor (`page.md#a-heading`) a heading of that page, slugged the way GitHub slugs it
(lower case, punctuation dropped, spaces to hyphens, `-1`, `-2` for repeats), or an explicit
`<a id>`. Links inside code are text, not links.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from stream.cli.listing import (
    REFERENCE_START,
    TABLE_START,
    has_generated_sections,
    inline_values,
    replace_generated_sections,
)
from stream.core.decision import Decider
from stream.core.rules import CATALOGUE
from stream.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
DOCUMENTS = [README, *PAGES]
README_LINES = 300

_FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)[^`].*?\1", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
_HAND_WRITTEN_RANGE = re.compile(r"MET-001\s*(?:…|\.\.\.?|-|\u2013|to)\s*MET-\d{3}")


def without_code(text: str) -> str:
    """The Markdown with fenced blocks and code spans blanked (their lines kept)."""
    text = _FENCE.sub(lambda match: "\n" * match[0].count("\n"), text)
    return _CODE_SPAN.sub(lambda match: " " * len(match[0]), text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"<[^>]+>", "", heading)  # inline HTML
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page offers: its headings' slugs (repeats numbered) and explicit ids."""
    plain = re.sub(_FENCE, "", text)
    seen: Counter[str] = Counter()
    found = set(_EXPLICIT_ANCHOR.findall(plain))
    for heading in _HEADING.findall(plain):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def links(text: str) -> list[str]:
    """The targets of the page's links and images, outside code."""
    return _LINK.findall(without_code(text))


def link_problems(page: Path) -> list[str]:
    """Each relative link of the page that names no file, or no anchor of its page."""
    problems = []
    for target in links(page.read_text("utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            problems.append(f"{page.name}: {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            problems.append(f"{page.name}: {target}: no such heading in {linked.name}")
    return problems


def test_the_readme_is_a_front_door() -> None:
    lines = README.read_text("utf-8").count("\n")
    assert lines <= README_LINES, f"README.md has {lines} lines; move the manual to docs/"


def test_every_page_in_docs_is_linked_from_the_readme() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(README.read_text())}
    assert PAGES
    assert [page.name for page in PAGES if page.resolve() not in linked] == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_links_land_on_a_file_and_a_heading(document: Path) -> None:
    assert link_problems(document) == []


def test_the_link_check_sees_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text(
        "# Other\n\n## A heading: with `code`\n\n## Twice\n\n## Twice\n"
    )
    page = tmp_path / "page.md"
    page.write_text(
        "[fine](other.md#a-heading-with-code) [repeat](other.md#twice-1) [here](#top)\n\n"
        "# Top\n\n[gone](missing.md) [no anchor](other.md#nowhere) `[in code](missing.md)`\n"
        "```\n[in a block](missing.md#x)\n```\n"
    )
    assert link_problems(page) == [
        "page.md: missing.md: no such file",
        "page.md: other.md#nowhere: no such heading in other.md",
    ]


def test_every_alert_runbook_url_lands_on_its_runbook() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alert-rules.yml").read_text())
    urls = [
        rule["annotations"]["runbook_url"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert urls
    for url in urls:
        path, _, anchor = url.split("/blob/main/", 1)[1].partition("#")
        assert anchor in anchors((ROOT / path).read_text()), url


def test_the_generated_parts_follow_the_rules(decider: Decider) -> None:
    rules_page = (DOCS / "rules.md").read_text("utf-8")
    assert TABLE_START in rules_page
    assert REFERENCE_START in rules_page
    assert "<!-- rule-range -->" in README.read_text("utf-8")
    for document in DOCUMENTS:
        text = document.read_text("utf-8")
        if has_generated_sections(text):
            assert replace_generated_sections(text, decider) == text, (
                f"{document.relative_to(ROOT)} drifted from the rules: run `make regen`"
            )


def test_the_rule_range_is_never_written_by_hand() -> None:
    """`MET-001 … MET-042` in a page goes stale with the next rule: it is an inline value."""
    range_now = inline_values()["rule-range"]
    assert range_now.endswith(CATALOGUE[-1].rule_id)
    for document in DOCUMENTS:
        generated = re.sub(r"<!-- ([a-z-]+) -->.*?<!-- /\1 -->", "", document.read_text("utf-8"))
        assert _HAND_WRITTEN_RANGE.findall(generated) == [], document.name


def test_inline_values_are_not_inside_code() -> None:
    """A marker inside a code span or block would be shown as text, and never replaced."""
    for document in DOCUMENTS:
        text = document.read_text("utf-8")
        for name in inline_values():
            marker = f"<!-- {name} -->"
            assert text.count(marker) == without_code(text).count(marker), (document.name, name)


def test_the_settings_table_names_every_setting_and_no_other() -> None:
    page = (DOCS / "operations.md").read_text("utf-8")
    table = page.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    shown = set(re.findall(r"`(CLAIMS_[A-Z0-9_]+)`", table))
    assert shown == {f"CLAIMS_{name.upper()}" for name in Settings.model_fields}
