"""Shared helpers of the operations tests (Prometheus rules, Alertmanager, Grafana dashboard)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
ALERTMANAGER_DIR = DEPLOY / "alertmanager"
GRAFANA_DIR = DEPLOY / "grafana"


def require_tool(*names: str) -> str:
    """The path of the first program found among names; fail (never skip) when none is."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"{' or '.join(names)} not found on PATH: install the ops tools with "
        "`bash deploy/ops-tools.sh` (CI does)",
        pytrace=False,
    )


def load_dashboard_generator() -> ModuleType:
    """deploy/grafana/generate_dashboard.py as a module (deploy/ is no package)."""
    path = GRAFANA_DIR / "generate_dashboard.py"
    spec = importlib.util.spec_from_file_location("generate_dashboard", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
