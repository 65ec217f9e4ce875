"""The command line, `claims-stage`: the project's front door, batch mode included."""

from stream.cli.main import main

__all__ = ["main"]
