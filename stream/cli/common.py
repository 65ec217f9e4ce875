"""What every command shares: the Typer app, the consoles, settings and usage errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from stream.core.codes.releases import LoadedRelease
from stream.core.codes.store import CodeSetStore, StoreError
from stream.core.rules.config import Policies, RulesConfigError
from stream.settings import Settings

if TYPE_CHECKING:
    from stream.core.decision import Decider
    from stream.kafka.access import Needs

app = typer.Typer(
    name="claims-stage",
    help="A real-time claims-editing stage for metastatic cancer coding.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Soft wrap: a line is written whole and the terminal folds it, so what a pipe, a file or a
# log receives has no line breaks that depend on a width (or on the length of a path).
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

USAGE_ERROR = 2


def fail(message: str) -> typer.Exit:
    # escaped: messages quote TOML tables such as [rules.MET-007], which are not markup
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
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


def require_access(settings: Settings, needs: Needs) -> None:
    """Exit 2 with the cause named unless this user may do what the command needs: a
    wrong password, an untrusted certificate or a missing ACL ends here, not in a client
    retrying forever."""
    from stream.kafka.access import AccessError, check_access

    try:
        check_access(settings, needs)
    except AccessError as error:
        hint = ""
        if error.cause == "missing topics":
            hint = (
                ". The worker does not let the broker auto-create them with one partition; "
                "run `claims-stage topics create` first."
            )
        raise fail(f"{error}{hint}") from error


def load_policies(settings: Settings | None, rules_config: Path | None) -> Policies:
    """The global and per-payer policies of a rules configuration; a usage error if broken."""
    try:
        return Policies.from_file(rules_config or (settings.rules_config if settings else None))
    except RulesConfigError as error:
        raise fail(str(error)) from error


def load_code_sets(settings: Settings) -> tuple[LoadedRelease, ...]:
    """The loaded ICD-10-CM releases of the store (`CLAIMS_CODE_SETS_DIR`); a usage error
    when it cannot be read, or when a directory named on purpose is missing (an unmounted
    volume must not make the stage judge by the built-in code sets alone)."""
    directory = settings.code_sets_dir
    if not directory.is_dir():
        if "code_sets_dir" in settings.model_fields_set:
            raise fail(
                f"CLAIMS_CODE_SETS_DIR={directory} is not a directory: mount the code-set "
                "store there, or unset the variable to use the built-in code sets alone"
            )
        return ()
    from stream.core.codes.icd10cm import bundled_text  # the descriptions: about 2 s

    try:
        return CodeSetStore(directory).releases(known=bundled_text)
    except StoreError as error:
        raise fail(f"the code-set store cannot be read: {error}") from error


def build_decider(settings: Settings, policies: Policies | None = None) -> Decider:
    """The decider of a command: its policies, the built-in and the loaded code sets."""
    from stream.core.decision import Decider

    return Decider(policies, releases=load_code_sets(settings))


RulesConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--rules-config",
        help="TOML policy file: rules disabled, severities, review routes, globally or "
        "per payer (default: $CLAIMS_RULES_CONFIG).",
        show_default=False,
    ),
]
