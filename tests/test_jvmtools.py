"""The local cluster's tool runner: runs start together, and each failure is named."""

from __future__ import annotations

import sys
from pathlib import Path

from stream.kafka.local.jvmtools import run_together

PYTHON = sys.executable


def test_only_the_failed_runs_are_reported_with_their_exit_and_output() -> None:
    failures = run_together(
        [
            ("fine", [PYTHON, "-c", "print('ok')"]),
            ("broken", [PYTHON, "-c", "import sys; print('no keystore'); sys.exit(3)"]),
        ],
        timeout=30,
    )
    assert failures == ["broken failed (exit 3):\nno keystore\n"]


RENDEZVOUS = """
import pathlib, sys, time
here, label, runs = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
(here / label).touch()
for _ in range(400):  # up to 20 s for the others to arrive
    if len(list(here.iterdir())) == runs:
        sys.exit(0)
    time.sleep(0.05)
print(f"{label} waited alone: {sorted(p.name for p in here.iterdir())}")
sys.exit(1)
"""


def test_runs_go_side_by_side(tmp_path: Path) -> None:
    # Each run waits until every run has begun: run one after another, the first would wait
    # for the others in vain and fail.
    runs = 4
    failures = run_together(
        [
            (f"run {n}", [PYTHON, "-c", RENDEZVOUS, str(tmp_path), f"run-{n}", str(runs)])
            for n in range(runs)
        ],
        timeout=30,
    )
    assert failures == []
    assert len(list(tmp_path.iterdir())) == runs


def test_a_run_past_its_timeout_is_killed_and_reported() -> None:
    # SIGKILL (exit -9) comes only from the runner's timeout: the run would sleep 10 minutes.
    (failure,) = run_together([("stuck", [PYTHON, "-c", "import time; time.sleep(600)"])], 1)
    assert failure.startswith("stuck failed (exit -9)")
