"""What every command shares: the Typer app, the consoles, settings and usage errors."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from stream.core.codes.releases import LoadedRelease
from stream.core.codes.store import CodeSetStore, StoreError
from stream.core.contracts import MAX_RECORD_BYTES
from stream.core.rules.config import Policies, RulesConfigError
from stream.settings import Settings

if TYPE_CHECKING:
    from stream.core.codes.cpt import CptCatalog
    from stream.core.codes.icd10cm import Icd10cmCatalog
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
        problems = "; ".join(_setting_problem(e) for e in error.errors())
        raise fail(f"invalid settings: {problems}") from error


def _setting_problem(error: Any) -> str:
    """One setting's problem, named: `CLAIMS_PARTITIONS: ...`; a problem of several settings
    together (SASL without a password) names them in its own words."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    return f"CLAIMS_{'_'.join(str(p) for p in error['loc']).upper()}: {message}"


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


RulesConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--rules-config",
        help="TOML policy file: rules disabled, severities, review routes, globally or "
        "per payer (default: $CLAIMS_RULES_CONFIG).",
        show_default=False,
    ),
]


class ReferenceData:
    """Where the commands get their Decider and code catalogues: built from the packaged
    code sets (about two seconds for ICD-10-CM) and the releases loaded into the code-set
    store, which the command reads (`load_code_sets`) and passes in.

    It is the app's Click context object, so a caller of the app may pass its own
    (`app(obj=...)`, `CliRunner.invoke(app, args, obj=...)`): the tests pass one that
    shares a session's reference data among every command they run.
    """

    def decider(
        self,
        policies: Policies,
        max_record_bytes: int = MAX_RECORD_BYTES,
        releases: Sequence[LoadedRelease] = (),
    ) -> Decider:
        from stream.core.decision import Decider

        return Decider(policies, max_record_bytes=max_record_bytes, releases=releases)

    def catalogs(self, releases: Sequence[LoadedRelease] = ()) -> tuple[Icd10cmCatalog, CptCatalog]:
        from stream.core.codes.calendar import load_calendar
        from stream.core.codes.cpt import CptCatalog
        from stream.core.codes.icd10cm import Icd10cmCatalog

        return Icd10cmCatalog(load_calendar(releases=releases) if releases else None), CptCatalog()


def reference_data(ctx: typer.Context) -> ReferenceData:
    """The running command's reference data: the caller's, or the packaged code sets."""
    return ctx.ensure_object(ReferenceData)


def freeze_long_lived_objects() -> None:
    """Exempt everything alive now from garbage collection, for the rest of the process.

    Called by the commands that decide many claims (check, whatif, worker, run) once their
    Decider is built: the ICD-10-CM tables are millions of long-lived objects, and without
    this each full collection (triggered by cyclic garbage such as exceptions with
    tracebacks, which dead letters produce) walks all of them again: about 15 % of a
    batch's time. A process-wide setting, so it is the command's to make, not the core's.
    """
    gc.collect()
    gc.freeze()
