"""`claims-stage`: the project's front door."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.table import Table

from stream.contracts import json_schemas, normalize_icd10cm
from stream.rules import CATALOGUE, RULES_BY_ID
from stream.rules.listing import markdown_table, replace_generated_section
from stream.ruleset import RulesConfigError, Ruleset
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


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(USAGE_ERROR)


def _ruleset(settings: Settings, rules_config: Path | None) -> Ruleset:
    try:
        return Ruleset.from_file(rules_config or settings.rules_config)
    except RulesConfigError as error:
        raise _fail(str(error)) from error


RulesConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--rules-config",
        help="TOML file that disables rules or changes their severity "
        "(default: $CLAIMS_RULES_CONFIG).",
        show_default=False,
    ),
]


@app.command()
def check(
    input_path: Annotated[
        str,
        typer.Argument(metavar="INPUT", help="JSON Lines file of encounter events; - reads stdin."),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the three output files.")],
    rules_config: RulesConfigOption = None,
) -> None:
    """Decide every line of a JSON Lines file, with no broker.

    Writes OUT/validated.jsonl, OUT/rejected.jsonl and OUT/dead-letter.jsonl: one output
    line per input line. Exits 0 when every line was processed, whatever the outcomes.
    """
    from stream.batch import OUTPUT_FILES, read_lines, run_batch
    from stream.decide import Stage

    settings = Settings()
    ruleset = _ruleset(settings, rules_config)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".claims-stage-write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise _fail(f"cannot write to {out_dir}: {error.strerror}") from error

    source: BinaryIO
    size = 0
    if input_path == "-":
        source, name = sys.stdin.buffer, "-"
    else:
        path = Path(input_path)
        try:
            source, size = path.open("rb"), path.stat().st_size
        except OSError as error:
            raise _fail(f"cannot read {input_path}: {error.strerror}") from error
        name = str(path)
    stage = Stage(ruleset=ruleset)
    with source:
        if size >= 1 << 20 and err.is_terminal:
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task("deciding", total=size)
                summary = run_batch(
                    stage,
                    read_lines(source),
                    out_dir,
                    name,
                    lambda n: bar.advance(task, n),
                )
        else:
            summary = run_batch(stage, read_lines(source), out_dir, name)

    rate = summary.lines / summary.seconds if summary.seconds else 0.0
    out.print(
        f"[bold]{summary.lines:,}[/] lines decided in {summary.seconds:.2f} s "
        f"({rate:,.0f}/s) with ruleset {ruleset.version}"
    )
    outcomes = Table(title="Outcomes", title_justify="left", show_edge=False)
    outcomes.add_column("route")
    outcomes.add_column("records", justify="right")
    outcomes.add_column("file")
    for route, file_name in OUTPUT_FILES.items():
        outcomes.add_row(route, f"{summary.routes[route]:,}", str(out_dir / file_name))
    out.print(outcomes)
    if summary.findings:
        top = Table(title="Most frequent findings", title_justify="left", show_edge=False)
        for column in ("rule", "severity", "count", "title"):
            top.add_column(column, justify="right" if column == "count" else "left")
        for (rule_id, severity), count in summary.findings.most_common(10):
            top.add_row(rule_id, severity, f"{count:,}", RULES_BY_ID[rule_id].title)
        out.print(top)
    if summary.dead_letter_kinds:
        kinds = ", ".join(f"{k} {n:,}" for k, n in summary.dead_letter_kinds.most_common())
        out.print(f"Dead letters by kind: {kinds}")


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
        document = update.read_text("utf-8")
        update.write_text(replace_generated_section(document, markdown_table()), "utf-8")
        out.print(f"updated the rule table in {update}")
        return
    if markdown:
        print(markdown_table())
        return
    ruleset = _ruleset(Settings(), rules_config)
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
        raise _fail(f"no rule {rule_id!r}; `claims-stage rules` lists them (MET-001..MET-041)")
    out.print(f"[bold]{rule.rule_id}[/]  {rule.title}", highlight=False)
    out.print(f"severity: {rule.severity_label}", highlight=False)
    out.print(f"citation: {rule.citation}", highlight=False)
    out.print(f"X12: CARC {rule.carc}" + (f", RARC {rule.rarc}" if rule.rarc else ""))
    for paragraph in rule.documentation.split("\n\n"):
        out.print()
        out.print(" ".join(paragraph.split()), highlight=False)


@app.command()
def code(
    value: Annotated[str, typer.Argument(metavar="CODE", help="An ICD-10-CM or CPT/HCPCS code.")],
) -> None:
    """Look a code up the way the stage sees it (ICD-10-CM first, then CPT/HCPCS)."""
    from stream.cpt import CptCatalog
    from stream.icd10cm import Icd10cmCatalog

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


def main() -> None:
    app()
