"""The catalogue and the codes: `rules`, `explain`, `code` and `schemas`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stream.cli.common import RulesConfigOption, app, err, fail, load_ruleset, load_settings, out
from stream.core.contracts import json_schemas, normalize_icd10cm
from stream.core.rules import CATALOGUE, RULE_ID_RANGE, RULES_BY_ID
from stream.core.rules.listing import (
    MissingMarkersError,
    markdown_table,
    replace_generated_sections,
)


@app.command()
def rules(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")] = False,
    update: Annotated[
        Path | None,
        typer.Option("--update", help="Rewrite the generated rule table inside this file."),
    ] = None,
    rules_config: RulesConfigOption = None,
) -> None:
    """The rule catalogue as a table, generated from the rules' own metadata."""
    if update is not None:
        try:
            document = update.read_text("utf-8")
            update.write_text(replace_generated_sections(document), "utf-8")
        except OSError as error:
            raise fail(f"cannot update {update}: {error.strerror}") from error
        except MissingMarkersError as error:
            raise fail(f"{update}: {error}") from error
        out.print(f"updated the generated rule sections in {update}")
        return
    if markdown:
        print(markdown_table())
        return
    ruleset = load_ruleset(load_settings(), rules_config)
    active = {a.rule.rule_id: a for a in ruleset.active}
    table = Table(title=f"Ruleset {ruleset.version}", title_justify="left")
    for column in ("ID", "severity", "title", "citation"):
        table.add_column(column, overflow="fold")
    for rule in CATALOGUE:
        state = active.get(rule.rule_id)
        severity = rule.severity_label
        if state is None:
            severity = "[dim]disabled[/]"
        elif state.severity is not None:
            severity = f"{state.severity} (configured)"
        table.add_row(rule.rule_id, severity, rule.title, rule.citation)
    out.print(table)


@app.command()
def explain(
    rule_id: Annotated[str, typer.Argument(metavar="RULE", help="A rule ID such as MET-005.")],
) -> None:
    """Print one rule's documentation: what it checks, why, and its codes."""
    digits = "".join(c for c in rule_id if c.isdigit())
    wanted = f"MET-{int(digits):03d}" if digits else rule_id
    rule = RULES_BY_ID.get(wanted)
    if rule is None:
        raise fail(f"no rule {rule_id!r}; `claims-stage rules` lists them ({RULE_ID_RANGE})")
    out.print(f"[bold]{rule.rule_id}[/]  {rule.title}", highlight=False)
    out.print(f"severity: {rule.severity_label}", highlight=False)
    out.print(f"citation: {rule.citation}", highlight=False)
    out.print(f"evaluated on: {rule.scope}", highlight=False)
    out.print(f"X12: CARC {rule.carc}" + (f", RARC {rule.rarc}" if rule.rarc else ""))
    for paragraph in rule.documentation.split("\n\n"):
        out.print()
        out.print(" ".join(paragraph.split()), highlight=False)


@app.command()
def code(
    value: Annotated[str, typer.Argument(metavar="CODE", help="An ICD-10-CM or CPT/HCPCS code.")],
) -> None:
    """Look a code up the way the stage sees it (ICD-10-CM first, then CPT/HCPCS)."""
    from stream.core.codes.cpt import CptCatalog
    from stream.core.codes.icd10cm import Icd10cmCatalog

    icd = Icd10cmCatalog().lookup(value)
    if icd.valid:
        out.print(f"[bold]{icd.code}[/]  {icd.description}", highlight=False)
        out.print(f"ICD-10-CM {Icd10cmCatalog().release}: billable={icd.billable} kind={icd.kind}")
        out.print(f"chapter: {icd.chapter}\nblock:   {icd.block}", highlight=False)
        if icd.family:
            out.print(f"site family (MET-010): {icd.family.name}")
        return
    procedure = CptCatalog().lookup(value.strip())
    if procedure.known:
        out.print(f"[bold]{procedure.code}[/]  {procedure.description}", highlight=False)
        out.print(f"category: {procedure.category}")
        if procedure.add_on_primaries is not None:
            out.print(f"add-on code; needs one of: {procedure.add_on_primaries.spec}")
        if procedure.deleted_on:
            out.print(f"deleted on {procedure.deleted_on}")
        return
    out.print(
        f"{normalize_icd10cm(value)} is not an ICD-10-CM code; as a procedure code it is "
        f"{procedure.description}"
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
