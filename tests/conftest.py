"""Shared fixtures: one Stage per test session (loading ICD-10-CM takes about two seconds)."""

from __future__ import annotations

import pytest

from stream.decide import Stage


@pytest.fixture(scope="session")
def stage() -> Stage:
    return Stage()
