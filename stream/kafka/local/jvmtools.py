"""The local cluster's JVM tools (kafka-storage, keytool), run side by side.

Each run is a JVM start of a second or more, so the runs a step needs start together and
are waited for together.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

OUTPUT_TAIL = 4000
"""Characters of a failed run's output kept in its message: the end says what went wrong."""


def run_together(runs: Sequence[tuple[str, Sequence[str]]], timeout: float) -> list[str]:
    """Run every command at once; one message per failure, naming the run by its label."""
    running = [
        (
            label,
            subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for label, command in runs
    ]
    failures = []
    for label, process in running:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if process.returncode != 0:
            failures.append(f"{label} failed (exit {process.returncode}):\n{output[-OUTPUT_TAIL:]}")
    return failures
