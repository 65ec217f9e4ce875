"""`claims-stage`: the project's front door. Each module registers its commands on `app`."""

from __future__ import annotations

from stream.cli import catalogue, check, codes, ingest, kafka, whatif
from stream.cli.common import app

__all__ = ["app", "main"]
_COMMANDS = (catalogue, check, codes, ingest, kafka, whatif)  # imported for their commands


def main() -> None:
    app()
