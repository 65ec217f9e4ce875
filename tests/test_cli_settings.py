"""Every command that reads the settings stops at once, with exit status 2 and the setting
named, when they are wrong: before a broker starts, a client connects or a file is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream.cli.main import app

runner = CliRunner()

SASL_WITHOUT_MECHANISM = {
    "CLAIMS_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    "CLAIMS_SECURITY_PROTOCOL": "SASL_SSL",
    "CLAIMS_SASL_USERNAME": "stage",
    "CLAIMS_SASL_PASSWORD": "s3cret",
    "CLAIMS_SASL_MECHANISM": None,
}


COMMANDS: dict[str, list[str]] = {
    "worker": ["worker"],
    "run": ["run"],
    "check": ["check", "{events}", "--out", "{out}"],
    "send": ["send", "{events}"],
    "ingest": ["ingest", "{events}"],
    "tail": ["tail"],
    "topics create": ["topics", "create"],
    "topics list": ["topics", "list"],
    "acls": ["acls"],
    "rules": ["rules"],
    "broker status": ["broker", "status"],
    "broker stop": ["broker", "stop"],
}
"""Each command that reads the settings, with the arguments it needs to start (but `broker
start` and `broker reset`, which read them the same way: were that to break, the test would
start or wipe a broker)."""


def arguments(command: str, folder: Path) -> list[str]:
    events = folder / "events.jsonl"
    events.write_text("{}\n")
    names = {"events": str(events), "out": str(folder / "out")}
    return [argument.format(**names) for argument in COMMANDS[command]]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_sasl_without_a_mechanism_stops_every_command(tmp_path: Path, command: str) -> None:
    # A local broker's state, were the command to go further, stays in the test's folder.
    env = {**SASL_WITHOUT_MECHANISM, "CLAIMS_LOCAL_BROKER_HOME": str(tmp_path / "kafka")}
    result = runner.invoke(app, arguments(command, tmp_path), env=env)
    assert result.exit_code == 2, result.output
    assert "invalid settings: CLAIMS_SECURITY_PROTOCOL=SASL_SSL needs CLAIMS_SASL_MECHANISM" in (
        result.output
    )
    assert not (tmp_path / "out").exists()  # stopped before any work


def test_a_wrong_record_size_is_named(tmp_path: Path) -> None:
    result = runner.invoke(app, arguments("check", tmp_path), env={"CLAIMS_MAX_RECORD_BYTES": "12"})
    assert result.exit_code == 2
    assert (
        "invalid settings: CLAIMS_MAX_RECORD_BYTES: Input should be greater than or equal to 1024"
        in (result.output)
    )
