"""Every alert's runbook link lands on a runbook in docs/operations.md."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"


def test_every_alert_has_a_runbook_heading_in_the_operations_page() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alert-rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    page = OPERATIONS.read_text()
    headings = set(re.findall(r"^#{2,4} Runbook: (\w+)$", page, flags=re.MULTILINE))
    assert alerts, "no alerts found"
    assert alerts == headings
