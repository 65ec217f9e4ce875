"""What every command shares: the Typer app, the consoles, settings and usage errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from stream.core.rules.config import RulesConfigError, Ruleset
from stream.settings import Settings

app = typer.Typer(
    name="claims-stage",
    help="A real-time claims-editing stage for metastatic cancer coding.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

USAGE_ERROR = 2


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(USAGE_ERROR)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"CLAIMS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        raise fail(f"invalid settings: {problems}") from error


def load_ruleset(settings: Settings, rules_config: Path | None) -> Ruleset:
    try:
        return Ruleset.from_file(rules_config or settings.rules_config)
    except RulesConfigError as error:
        raise fail(str(error)) from error


RulesConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--rules-config",
        help="TOML file that disables rules or changes their severity "
        "(default: $CLAIMS_RULES_CONFIG).",
        show_default=False,
    ),
]
