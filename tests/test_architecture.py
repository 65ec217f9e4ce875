"""The layout is the architecture: each part of `stream/` imports only what it may.

    cli  ->  worker  ->  kafka, ops  ->  core
    cli  ->  kafka/local (the local cluster: only the command line starts one)
    settings and logs: used by every part but the core; they import no part
    inside the core: decision, tally, whatif  ->  rules, codes, contracts, claim, adapters

The core imports no Kafka client, Faust or Prometheus, and neither the settings nor the
logs, so the decision can be tested, run in batch and benchmarked without a broker or an
environment. Every module of the package is checked, `import x`, `from x import y` and
relative imports alike, and the checks are shown to fail on a planted violation.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "stream"

ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "kafka": {"kafka", "settings", "logs"},
    "kafka.local": {"kafka.local", "kafka", "settings", "logs"},
    "ops": {"ops", "core", "settings", "logs"},
    "worker": {"worker", "core", "kafka", "ops", "settings", "logs"},
    "cli": {"cli", "core", "kafka", "kafka.local", "ops", "worker", "settings", "logs"},
    "settings": {"settings"},
    "logs": {"logs", "settings"},
    "__main__": {"__main__", "cli"},
    "__init__": {"__init__"},
}
"""For each part, the parts of `stream` it may import. `stream` itself (its version) is
`__init__`, which imports no part, so every part may import it."""

PARTS_BY_LENGTH = sorted(ALLOWED, key=len, reverse=True)
"""Longest first: `stream.kafka.local.cluster` is in `kafka.local`, not `kafka`."""

TRANSPORT = {"faust", "mode", "confluent_kafka", "aiokafka", "prometheus_client", "aiohttp"}
"""Libraries that talk to a broker or serve metrics: none of them in the core."""

KAFKA_CLIENTS = {"faust", "mode", "confluent_kafka", "aiokafka"}
"""The local cluster drives JVMs with stdlib only: no Kafka client."""

CORE_ABOVE = ("stream.core.decision", "stream.core.whatif", "stream.core.tally")
"""Inside the core, the decision and what counts or compares decisions sit on the rules,
the codes, the contracts and the adapters; nothing beneath imports them, not even for types
(a `TYPE_CHECKING` import is an arrow too)."""

OUTSIDE_THE_PACKAGE = {"bench", "tests", "tools", "schemas", "deploy"}
"""Folders of the repository that an installed package does not have."""


def module_name(root: Path, path: Path) -> str:
    """`<root>/core/rules/base.py` -> `stream.core.rules.base`; `<root>/core/__init__.py`
    -> `stream.core`."""
    parts = ["stream", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, module: str) -> set[str]:
    """Every module `path` (the module named `module`) imports, relative imports resolved;
    for `from a import b`, both `a` and `a.b` (b may be a module)."""
    tree = ast.parse(path.read_text("utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def part_of(module: str) -> str | None:
    """`stream.core.rules.base` -> `core`; `stream.kafka.local` -> `kafka.local`;
    `stream` and `stream.__version__` -> `__init__`; `stream.helpers` -> `helpers` (no
    part); a module outside `stream` -> None."""
    pieces = module.split(".")
    if pieces[0] != "stream":
        return None
    inside = ".".join(pieces[1:])
    for part in PARTS_BY_LENGTH:
        if inside == part or inside.startswith(f"{part}."):
            return part
    # `stream` and its own names (`__version__`), or a module that is in no part.
    return "__init__" if not inside or inside.startswith("__") else inside


def modules(root: Path) -> Iterator[tuple[Path, str, str | None]]:
    """Every module under `root` with its dotted name and its part."""
    for path in sorted(root.rglob("*.py")):
        name = module_name(root, path)
        if path == root / "__init__.py":
            yield path, name, "__init__"
        elif path == root / "__main__.py":
            yield path, name, "__main__"
        else:
            yield path, name, part_of(name)


def _beneath(module: str) -> bool:
    return not module.startswith(CORE_ABOVE) and module != "stream.core"


def boundary_violations(root: Path) -> list[str]:
    """Imports of a part that it may not import, and modules that belong to no part."""
    wrong = set()
    for path, name, part in modules(root):
        where = path.relative_to(root)
        if part not in ALLOWED:
            wrong.add(f"{where} belongs to no part")
            continue
        for imported in imported_modules(path, name):
            other = part_of(imported)
            top = imported.split(".")[0]
            if other not in (None, "__init__", *ALLOWED[part]):
                wrong.add(f"{where} ({part}) imports {imported} ({other})")
            if top in OUTSIDE_THE_PACKAGE:
                wrong.add(f"{where} imports {imported}, which is not shipped")
            if part == "core" and top in TRANSPORT:
                wrong.add(f"{where} (core) imports {imported}")
            if part == "core" and _beneath(name) and imported.startswith(CORE_ABOVE):
                wrong.add(f"{where} (beneath the decision) imports {imported}")
            if part == "kafka.local" and top in KAFKA_CLIENTS:
                wrong.add(f"{where} (kafka.local) imports the Kafka client {imported}")
    return sorted(wrong)


def check_boundaries(root: Path) -> None:
    wrong = boundary_violations(root)
    assert not wrong, "\n".join(wrong)


def test_each_part_imports_only_the_parts_it_may() -> None:
    check_boundaries(PACKAGE)


def test_every_part_is_a_folder_or_a_module_of_the_package() -> None:
    present = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    present |= {p.stem for p in PACKAGE.glob("*.py")}
    present |= {"kafka.local"} if (PACKAGE / "kafka" / "local").is_dir() else set()
    assert present == set(ALLOWED)


# The checks above can fail: each case plants one forbidden import in a copy of the package.


def _all_but_modules(folder: str, names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if name == "__pycache__" or not (name.endswith(".py") or Path(folder, name).is_dir())
    ]


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    root = tmp_path / "stream"
    shutil.copytree(PACKAGE, root, ignore=_all_but_modules)
    check_boundaries(root)  # the copy is as clean as the package
    return root


PLANTED = [
    ("settings.py", "from stream.worker import app\n", "settings.py (settings) imports stream.worker"),
    ("core/claim.py", "import stream.settings\n", "core/claim.py (core) imports stream.settings"),
    ("core/rules/base.py", "from ...logs import configure\n", "(core) imports stream.logs"),
    ("core/whatif.py", "from . import claim\n", None),  # down inside the core: allowed
    ("core/rules/base.py", "from .. import decision\n", "(beneath the decision) imports stream.core.decision"),
    (
        "core/codes/icd10cm.py",
        "if TYPE_CHECKING:\n    from stream.core.decision import Decider\n",
        "(beneath the decision) imports stream.core.decision",
    ),
    ("core/codes/cpt.py", "from stream import settings\n", "imports stream.settings"),
    ("logs.py", "from .cli import main\n", "logs.py (logs) imports stream.cli"),
    ("kafka/topics.py", "from stream.kafka.local import cluster\n", "(kafka) imports stream.kafka.local"),
    ("kafka/local/security.py", "import confluent_kafka\n", "imports the Kafka client"),
    ("worker/agent.py", "from stream.cli.common import out\n", "(worker) imports stream.cli"),
    ("cli/main.py", "from bench import claims\n", "imports bench, which is not shipped"),
    ("ops/health.py", "from ..worker import app\n", "(ops) imports stream.worker.app"),
    ("core/decision.py", "import aiokafka\n", "(core) imports aiokafka"),
    ("helpers.py", "", "helpers.py belongs to no part"),
]  # fmt: skip


@pytest.mark.parametrize(("module", "line", "reported"), PLANTED)
def test_a_planted_import_fails_the_check(
    package_copy: Path, module: str, line: str, reported: str | None
) -> None:
    path = package_copy / module
    source = path.read_text("utf-8") if path.exists() else ""
    # After the docstring and `from __future__`, where an import would really be written.
    path.write_text(source + "\n" + line, "utf-8")
    if reported is None:
        check_boundaries(package_copy)
    else:
        with pytest.raises(AssertionError, match=reported.replace("(", r"\(").replace(")", r"\)")):
            check_boundaries(package_copy)


def test_relative_imports_resolve_from_their_package(tmp_path: Path) -> None:
    (tmp_path / "core" / "rules").mkdir(parents=True)
    module = tmp_path / "core" / "rules" / "__init__.py"
    module.write_text("from . import base\nfrom .. import claim\nfrom ...worker.app import x\n")
    assert imported_modules(module, module_name(tmp_path, module)) >= {
        "stream.core.rules.base",
        "stream.core.claim",
        "stream.worker.app",
    }
