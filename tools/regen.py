"""Regenerate everything generated from the rules, the contracts and the scenarios: `make regen`.

    python tools/regen.py              # every step, in order
    python tools/regen.py --step docs  # one step (`make readme`)
    python tools/regen.py --list       # the steps, what each writes

A rule is its function (with its metadata) and its case file; everything else that names
it is generated, here, in this order (each step reads what the ones before wrote):

1. version: the ruleset version (`stream/core/rules/ruleset.py`), the next one when the
   catalogue's fingerprint changed (`stream.core.rules.fingerprint`);
2. schemas: the JSON Schema of every contract (`schemas/*.schema.json`);
3. snapshots: every rule case's findings (`tests/__snapshots__/test_rule_cases.ambr`), by
   the rule-case tests (which also fail when a case does not get the findings it expects);
4. examples: the example stream (`schemas/examples/`), which refuses to write when the stage
   disagrees with what a line was written to be;
5. claims: the 837 and FHIR example claims (`schemas/examples/claims/`), from the stream;
6. docs: the generated parts of the README and `docs/*.md` (the rule table and reference in
   `docs/rules.md`, the rule range and the ruleset version wherever a page names them);
7. dashboard: the Grafana dashboard (`deploy/grafana/claims-stage.json`).

The version is written by a process of its own, before this one imports the stage, so
that every later step sees it; the snapshots are the tests' own run; the other steps share
one stage in this process. A failing step stops the run with its exit status. Review the
diff: a changed message shows in the snapshot, a changed decision in the example stream.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, whatever the environment installed

if TYPE_CHECKING:
    from stream.core.decision import Decider

RULESET = ROOT / "stream" / "core" / "rules" / "ruleset.py"
DOCUMENTS = ("README.md", "docs/*.md")


class StepFailedError(Exception):
    """A step that could not write what it generates; its exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def update_ruleset_version(path: Path = RULESET) -> str | None:
    """Give the catalogue the next version when its fingerprint changed; the new version,
    or None when the catalogue is the one the version was given for."""
    from stream.core.rules.fingerprint import catalogue_fingerprint, next_version

    text = path.read_text("utf-8")
    recorded = dict(re.findall(r'^(RULESET_VERSION|FINGERPRINT) = "([^"]*)"$', text, re.M))
    fingerprint = catalogue_fingerprint()
    if recorded.get("FINGERPRINT") == fingerprint:
        return None
    version = next_version(recorded["RULESET_VERSION"])
    text = re.sub(r'^RULESET_VERSION = ".*"$', f'RULESET_VERSION = "{version}"', text, flags=re.M)
    text = re.sub(r'^FINGERPRINT = ".*"$', f'FINGERPRINT = "{fingerprint}"', text, flags=re.M)
    path.write_text(text, "utf-8")
    return version


def _run(*arguments: str) -> None:
    """A command of this checkout in a fresh interpreter, its package first on the path."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, *arguments], cwd=ROOT, env={**os.environ, "PYTHONPATH": path}, check=False
    )
    if done.returncode != 0:
        raise StepFailedError(done.returncode)


def version() -> None:
    _run(str(Path(__file__).resolve().relative_to(ROOT)), "--in-process", "version")


def _write_version() -> None:
    written = update_ruleset_version()
    print(
        f"ruleset version {written}: the catalogue changed" if written else "ruleset version kept"
    )


def schemas() -> None:
    _run("-m", "stream", "schemas", "--out", "schemas")


def snapshots() -> None:
    _run(
        "-m",
        "pytest",
        "tests/test_rule_cases.py",
        "--snapshot-update",
        "-qq",
        "-p",
        "no:cacheprovider",
    )


@cache
def stage() -> Decider:
    """One stage for every step that decides."""
    from stream.core.decision import Decider

    return Decider()


def _script(relative: str) -> ModuleType:
    """A generator script of this checkout, imported by its path."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem + "_" + path.parent.name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def examples() -> None:
    status: int = _script("schemas/examples/generate.py").main([], stage())
    if status:
        raise StepFailedError(status)


def claims() -> None:
    status: int = _script("schemas/examples/claims/generate.py").main([], stage())
    if status:
        raise StepFailedError(status)


def documents() -> list[Path]:
    """The README and the pages of docs/ that have generated parts."""
    from stream.cli.listing import has_generated_sections

    found = sorted({path for pattern in DOCUMENTS for path in ROOT.glob(pattern)})
    return [path for path in found if has_generated_sections(path.read_text("utf-8"))]


def docs() -> None:
    import typer

    from stream.cli.catalogue import update_documents

    try:
        update_documents(documents(), stage())
    except typer.Exit as error:
        raise StepFailedError(error.exit_code) from error


def dashboard() -> None:
    status: int = _script("deploy/grafana/generate_dashboard.py").main([])
    if status:
        raise StepFailedError(status)


STEPS: dict[str, tuple[str, Callable[[], None]]] = {
    "version": ("stream/core/rules/ruleset.py", version),
    "schemas": ("schemas/*.schema.json", schemas),
    "snapshots": ("tests/__snapshots__/test_rule_cases.ambr", snapshots),
    "examples": ("schemas/examples/", examples),
    "claims": ("schemas/examples/claims/", claims),
    "docs": ("README.md and docs/*.md", docs),
    "dashboard": ("deploy/grafana/claims-stage.json", dashboard),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--list", action="store_true", help="print the steps and exit")
    parser.add_argument("--step", choices=list(STEPS), help="run this step only")
    parser.add_argument("--in-process", choices=["version"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_process:
        _write_version()
        return 0
    if args.list:
        for name, (writes, _) in STEPS.items():
            print(f"{name}: {writes}")
        return 0
    for name, (writes, step) in STEPS.items():
        if args.step not in (None, name):
            continue
        print(f"--- {name}: {writes}", flush=True)
        try:
            step()
        except StepFailedError as failure:
            print(f"regen stopped: {name} failed (exit {failure.status})", file=sys.stderr)
            return failure.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
