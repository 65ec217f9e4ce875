"""The catalogue and the codes: `rules`, `explain`, `code` and `schemas`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from stream.cli.common import (
    RulesConfigOption,
    app,
    err,
    fail,
    load_code_sets,
    load_policies,
    load_settings,
    out,
    reference_data,
)
from stream.cli.listing import (
    REFERENCE_START,
    MissingMarkersError,
    markdown_table,
    replace_generated_sections,
    rule_document,
)
from stream.core.codes.calendar import CodeCalendar, CodeSetPeriod
from stream.core.codes.cpt import ProcedureInfo
from stream.core.codes.icd10cm import CodeInfo, Icd10cmCatalog
from stream.core.contracts import json_schemas, normalize_icd10cm
from stream.core.decision import Decider
from stream.core.rules import CATALOGUE, RULE_ID_RANGE, RULES_BY_ID
from stream.core.rules.code_validity import invalid_reason, split_advice
from stream.core.rules.config import Policies


@app.command()
def rules(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")] = False,
    update: Annotated[
        list[Path] | None,
        typer.Option(
            "--update",
            metavar="FILE",
            help="Rewrite the generated parts of this Markdown file (rule table, rule "
            "reference, inline values); repeat it for several files.",
        ),
    ] = None,
    rules_config: RulesConfigOption = None,
    payer: Annotated[
        str | None,
        typer.Option("--payer", help="Show the rules as this payer's policy runs them."),
    ] = None,
) -> None:
    """The rule catalogue as a table, generated from the rules' own metadata.

    With a rules configuration, as its global policy runs them; with --payer, as that
    payer's policy does (its own section over the global one).
    """
    if update:
        update_documents(update)
        return
    if markdown:
        print(markdown_table())
        return
    policies = load_policies(load_settings(), rules_config)
    ruleset = policies.for_payer(payer)
    title = f"Ruleset {ruleset.version}"
    if payer is not None:
        title += f" for payer {payer}"
    table = Table(title=title, title_justify="left")
    for column in ("ID", "severity", "route", "title", "citation"):
        table.add_column(column, overflow="fold")
    for rule in CATALOGUE:
        severity, route = policy_cells(policies, payer, rule.rule_id)
        table.add_row(rule.rule_id, severity, route, rule.title, rule.citation)
    out.print(table)
    if payer is not None and payer not in policies.payers:
        section = payer in policies.config.payers
        out.print(
            f"{payer} {'has a section that changes nothing' if section else 'has no section'}"
            ": its claims are judged by the global policy.",
            highlight=False,
        )


def update_documents(paths: list[Path], decider: Decider | None = None) -> None:
    """Rewrite the generated parts of each document; the rule reference's examples are
    decided by one stage for all of them (`decider`, or one made here when a document has a
    rule reference). Nothing is written unless every file reads."""
    documents: dict[Path, str] = {}
    for path in paths:
        try:
            documents[path] = path.read_text("utf-8")
        except OSError as error:
            raise fail(f"cannot update {path}: {error.strerror}") from error
    if decider is None and any(REFERENCE_START in text for text in documents.values()):
        decider = Decider()
    written: dict[Path, str] = {}
    for path, document in documents.items():
        try:
            written[path] = replace_generated_sections(document, decider)
        except MissingMarkersError as error:
            raise fail(f"{path}: {error}") from error
    for path, text in written.items():
        if documents[path] == text:
            continue
        try:
            path.write_text(text, "utf-8")
        except OSError as error:
            raise fail(f"cannot update {path}: {error.strerror}") from error
        out.print(f"updated the generated parts of {path}", highlight=False)


def policy_cells(policies: Policies, payer: str | None, rule_id: str) -> tuple[str, str]:
    """(severity, route) of a rule as the payer's policy runs it, each saying where a
    setting comes from: `(ACME)` the payer's section, `(configured)` the global one."""
    rule = RULES_BY_ID[rule_id]
    state = policies.for_payer(payer).states[rule_id]
    payer_override = policies.config.payers.get(payer or "")
    payer_rules = payer_override.rules if payer_override else {}

    def origin(key: str) -> str:
        if rule_id in payer_rules and getattr(payer_rules[rule_id], key) is not None:
            return f" ({payer})"
        if (
            rule_id in policies.config.rules
            and getattr(policies.config.rules[rule_id], key) is not None
        ):
            return " (configured)"
        return ""

    if not state.enabled:
        return f"[dim]disabled{origin('enabled')}[/]", ""
    severity = (state.severity or rule.severity_label) + origin("severity")
    route = ("review" if state.review else "by outcome") + origin("route")
    return severity, route


@app.command()
def explain(
    ctx: typer.Context,
    rule_id: Annotated[str, typer.Argument(metavar="RULE", help="A rule ID such as MET-005.")],
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the Markdown source instead.")
    ] = False,
) -> None:
    """Print one rule's documentation: what it checks, why, which claims it reads, and an
    example that fails and one that passes, decided by the stage."""
    digits = "".join(c for c in rule_id if c.isdigit())
    wanted = f"MET-{int(digits):03d}" if digits else rule_id
    rule = RULES_BY_ID.get(wanted)
    if rule is None:
        raise fail(f"no rule {rule_id!r}; `claims-stage rules` lists them ({RULE_ID_RANGE})")
    releases = load_code_sets(load_settings())
    decider = reference_data(ctx).decider(Policies(), releases=releases)
    document = f"## {rule.rule_id} {rule.title}\n\n{rule_document(rule, decider)}"
    if markdown or not out.is_terminal:
        # Rendered Markdown is laid out for a width; a pipe or a file gets the source, whole.
        print(document)
        return
    out.print(Markdown(document))


def _on_date(text: str | None) -> dt.date:
    if text is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise fail(f"--on {text!r} is not a date: write it YYYY-MM-DD, e.g. 2026-10-01") from None


def _ranges(calendar: CodeCalendar, mask: int) -> str:
    """`2024-10-01..2027-03-31` for the periods in a mask, joined where they touch."""
    runs: list[list[dt.date]] = []
    for period in calendar.periods_in(mask):
        if runs and runs[-1][1] + dt.timedelta(days=1) == period.start:
            runs[-1][1] = period.end
        else:
            runs.append([period.start, period.end])
    return ", ".join(f"{start}..{end}" for start, end in runs)


def _standing(catalog: Icd10cmCatalog, info: CodeInfo, day: dt.date, period: CodeSetPeriod) -> bool:
    """Print what a code is on a date in the code set that judges it; whether it is valid."""
    calendar = catalog.calendar
    where = f"on {day} (ICD-10-CM {period.name})"
    valid = bool(info.valid_periods & period.bit)
    if info.billable_periods & period.bit:
        out.print(f"{where}: valid on that date, billable", highlight=False)
    elif valid:
        advice = split_advice(calendar, info.code, period) or (
            f"report a code below it: {', '.join(calendar.children(info.code, period))}"
        )
        out.print(
            f"{where}: valid on that date, a header (not billable); {advice}", highlight=False
        )
    else:
        reason = invalid_reason(calendar, info.code, day)
        out.print(f"{where}: not valid on that date; {reason}", highlight=False)
    return valid


def _print_loaded_text(calendar: CodeCalendar, code: str) -> None:
    """The newest loaded release's description of a code the date's code set does not
    describe (a code not valid on that date, newer than the bundled descriptions)."""
    for period in reversed(calendar.periods):
        text = period.loaded.codes.descriptions.get(code) if period.loaded else None
        if text is not None:
            out.print(f"{period.name} ({period.source}) describes it: {text}", highlight=False)
            return


def _show_icd10cm(catalog: Icd10cmCatalog, code: str, day: dt.date) -> bool:
    """Print a diagnosis code's status on a date and over the loaded code sets."""
    calendar = catalog.calendar
    period, in_force = calendar.judge(day)
    info = catalog.lookup_on(code, period)
    out.print(f"[bold]{info.code}[/]  {info.description}", highlight=False)
    if not info.described:
        _print_loaded_text(calendar, info.code)
    if not in_force:
        out.print(
            f"on {day}: no loaded ICD-10-CM code set covers that date (loaded: "
            f"{calendar.coverage}); a claim of that date is judged by {period.name}, the "
            f"nearest, with a MET-042 warning",
            highlight=False,
        )
    valid = _standing(catalog, info, day, period)
    if period.loaded is not None and info.valid_periods & period.bit:
        out.print(f"description: the loaded release ({period.source})", highlight=False)
    if info.billable_periods:
        out.print(f"billable: {_ranges(calendar, info.billable_periods)}", highlight=False)
    header = info.valid_periods & ~info.billable_periods
    if header:
        out.print(f"header:   {_ranges(calendar, header)}", highlight=False)
    if not info.described:
        out.print(
            f"description: the bundled descriptions ({catalog.descriptions}) predate this "
            "code; it is described by the nearest code above it",
            highlight=False,
        )
    out.print(f"kind: {info.kind}")
    out.print(f"chapter: {info.chapter}\nblock:   {info.block}", highlight=False)
    if info.family:
        out.print(f"site family (MET-010): {info.family.name}")
    return valid


def _show_procedure(procedure: ProcedureInfo, day: dt.date) -> bool:
    out.print(f"[bold]{procedure.code}[/]  {procedure.description}", highlight=False)
    out.print(f"category: {procedure.category}")
    if procedure.add_on_primaries is not None:
        out.print(f"add-on code; needs one of: {procedure.add_on_primaries.spec}")
    if procedure.active_from:
        out.print(f"active from {procedure.active_from}")
    if procedure.deleted_on:
        out.print(f"deleted on {procedure.deleted_on}")
    active = (procedure.active_from is None or day >= procedure.active_from) and (
        procedure.deleted_on is None or day < procedure.deleted_on
    )
    out.print(f"on {day}: {'active' if active else 'not active'} on that date (MET-003)")
    return active


@app.command()
def code(
    ctx: typer.Context,
    value: Annotated[str, typer.Argument(metavar="CODE", help="An ICD-10-CM or CPT/HCPCS code.")],
    on: Annotated[
        str | None,
        typer.Option(
            "--on",
            metavar="DATE",
            help="The claim date to judge the code on (YYYY-MM-DD; default today): the "
            "discharge date of an inpatient claim, the date of service otherwise.",
        ),
    ] = None,
) -> None:
    """Look a code up the way the stage sees it on a date (ICD-10-CM first, then CPT/HCPCS).

    Exits 0 when the code is valid (ICD-10-CM) or active (CPT/HCPCS) on the date, 1 when
    it is not or is no code at all.
    """
    day = _on_date(on)
    catalog, procedures = reference_data(ctx).catalogs(load_code_sets(load_settings()))
    icd = catalog.lookup(value)
    if icd.known:
        if not _show_icd10cm(catalog, value, day):
            raise typer.Exit(1)
        return
    procedure = procedures.lookup(value.strip())
    if procedure.known:
        if not _show_procedure(procedure, day):
            raise typer.Exit(1)
        return
    out.print(
        f"{normalize_icd10cm(value)} is not an ICD-10-CM code in any loaded code set "
        f"({catalog.calendar.coverage}); as a procedure code it is {procedure.description}",
        highlight=False,
    )
    raise typer.Exit(1)


@app.command()
def schemas(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write into.")] = Path("schemas"),
    check_only: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the files differ from the models.")
    ] = False,
) -> None:
    """Export the JSON Schema of every contract (encounter event, decision, dead letter)."""
    stale = []
    for name, schema in json_schemas().items():
        path = out_dir / f"{name}.schema.json"
        text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
        if check_only:
            if not path.exists() or path.read_text("utf-8") != text:
                stale.append(str(path))
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        out.print(f"wrote {path}")
    if stale:
        err.print(f"out of date with the contracts: {', '.join(stale)} (run `make schemas`)")
        raise typer.Exit(1)
