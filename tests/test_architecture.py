"""The layout is the architecture: each part of `stream/` imports only what it may.

    cli  ->  worker  ->  kafka, ops  ->  core
    (settings and logs may be used by every part but the core)

The core imports no Kafka client, Faust or Prometheus, so the decision can be tested, run in
batch and benchmarked without a broker.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "stream"

ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "kafka": {"kafka", "settings", "logs"},
    "ops": {"ops", "core", "settings", "logs"},
    "worker": {"worker", "core", "kafka", "ops", "settings", "logs"},
    "cli": {"cli", "core", "kafka", "ops", "worker", "settings", "logs"},
}
"""For each part, the parts of `stream` it may import (`stream` itself, for the version, too)."""

TRANSPORT = {"faust", "mode", "confluent_kafka", "aiokafka", "prometheus_client", "aiohttp"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def part_of(module: str) -> str | None:
    """`stream.core.rules.base` -> `core`; `stream.settings` -> `settings`; `stream` -> None."""
    pieces = module.split(".")
    if pieces[0] != "stream" or len(pieces) < 2:
        return None
    return pieces[1]


def modules_of(part: str) -> list[Path]:
    return sorted((PACKAGE / part).rglob("*.py"))


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_the_parts_it_may(part: str) -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in modules_of(part)
        for module in imported_modules(path)
        if (other := part_of(module)) is not None
        and other not in ALLOWED[part]
        and (PACKAGE / other).exists()
    }
    assert not wrong, sorted(wrong)


def test_the_core_imports_no_kafka_faust_or_prometheus() -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in modules_of("core")
        for module in imported_modules(path)
        if module.split(".")[0] in TRANSPORT
    }
    assert not wrong, sorted(wrong)


def test_every_module_belongs_to_a_part() -> None:
    loose = {p.name for p in PACKAGE.glob("*.py")} - {
        "__init__.py",
        "__main__.py",
        "settings.py",
        "logs.py",
    }
    assert not loose, f"modules outside the parts: {sorted(loose)}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(
        ALLOWED
    )


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from confluent_kafka import Producer\nimport stream.worker.app\n")
    assert imported_modules(module) >= {"confluent_kafka", "stream.worker.app"}
    assert part_of("stream.worker.app") == "worker"
