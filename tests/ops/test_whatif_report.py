"""The what-if report as a policy analyst sees it: rendered by real headless Chromium.

`whatif` runs on the example stream with the example policy (docs/policy.toml); Chromium
loads the page from disk, must log nothing on its console, takes a screenshot (also kept as
docs/whatif-report.png) and dumps the DOM after rendering, which must show the run's counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.cli.main import app
from tests.reference import StageRunner

from .browser import console_messages, dump_dom, keep_for_docs, parse_dom, png_size, screenshot
from .support import REPO

pytestmark = pytest.mark.ops

WIDTH, HEIGHT = 1280, 1900
DOCS_SCREENSHOT = REPO / "docs" / "whatif-report.png"
EXAMPLES = REPO / "schemas" / "examples" / "encounters.jsonl"
POLICY = REPO / "docs" / "policy.toml"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whatif")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)  # relative paths, as a user types them, in the page and screenshot
        result = StageRunner().invoke(
            app,
            [
                "whatif",
                str(EXAMPLES.relative_to(REPO)),
                "--rules-config",
                str(POLICY.relative_to(REPO)),
                "--out",
                str(out),
            ],
        )
    assert result.exit_code == 0, result.output
    return out


def test_the_console_check_sees_a_broken_page(tmp_path: Path) -> None:
    """The check below can fail: a page with a script error does log to the console."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><p>x</p><script>console.error('boom'); nope();</script>")
    messages = console_messages(page.as_uri())
    assert any("boom" in m for m in messages), messages
    assert any("nope is not defined" in m for m in messages), messages


def test_the_report_renders_without_console_messages(report: Path) -> None:
    assert console_messages((report / "report.html").as_uri()) == []


def test_the_rendered_report_shows_the_run(report: Path, tmp_path: Path) -> None:
    url = (report / "report.html").as_uri()
    shot = tmp_path / "whatif-report.png"
    screenshot(url, shot, WIDTH, HEIGHT)
    assert png_size(shot) == (WIDTH, HEIGHT)
    assert shot.stat().st_size > 50_000, "a blank page compresses to almost nothing"
    keep_for_docs(shot, DOCS_SCREENSHOT)

    dom = parse_dom(dump_dom(url))
    changes = [json.loads(line) for line in (report / "changes.jsonl").read_bytes().splitlines()]
    assert int(dom.text["changed"]) == len(changes)
    moved = [c for c in changes if c["route_before"] != c["route_after"]]
    assert int(dom.text["route-changes"]) == len(moved)
    assert int(dom.text["added"]) == sum(len(c["findings_added"]) for c in changes)
    assert int(dom.text["removed"]) == sum(len(c["findings_removed"]) for c in changes)
    svgs = {attributes.get("id") for tag, attributes in dom.tags if tag == "svg"}
    assert {"routes-before", "routes-after", "rules-chart", "payers-chart"} <= svgs
    assert dom.urls() == []
