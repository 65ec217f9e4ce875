"""The local cluster's tool runner: runs start together, and each failure is named."""

from __future__ import annotations

import sys
import time

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


def test_runs_go_side_by_side() -> None:
    started = time.monotonic()
    failures = run_together(
        [(f"sleep {n}", [PYTHON, "-c", "import time; time.sleep(1)"]) for n in range(4)],
        timeout=30,
    )
    assert failures == []
    assert time.monotonic() - started < 3.5  # one after another would take 4 s and more


def test_a_run_past_its_timeout_is_killed_and_reported() -> None:
    started = time.monotonic()
    (failure,) = run_together([("stuck", [PYTHON, "-c", "import time; time.sleep(60)"])], 1)
    assert failure.startswith("stuck failed (exit -9)")
    assert time.monotonic() - started < 30
