"""Every alert's runbook link lands on a runbook in the README."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_alert_has_a_runbook_heading_in_the_readme() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alert-rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    readme = (ROOT / "README.md").read_text()
    headings = set(re.findall(r"^#### Runbook: (\w+)$", readme, flags=re.MULTILINE))
    assert alerts, "no alerts found"
    assert alerts == headings
