"""`claims-stage check`: batch mode over a file, with no broker."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.table import Table

from stream.cli.batch import BatchSummary, BatchWorkerError, output_files, run_batch
from stream.cli.common import (
    RulesConfigOption,
    app,
    err,
    fail,
    freeze_long_lived_objects,
    load_code_sets,
    load_policies,
    load_settings,
    out,
    reference_data,
)
from stream.cli.readers import FORMAT_NAMES, InputReading, read_input
from stream.core.rules import RULES_BY_ID
from stream.core.rules.config import Policies

PROGRESS_FROM_BYTES = 1 << 20
"""Files at least this large show a progress bar on a terminal."""

JobsOption = Annotated[
    int,
    typer.Option(
        "--jobs",
        min=0,
        help="Worker processes: 1 decides in this process, 0 uses every core. Outputs are "
        "written in input order whatever the number.",
    ),
]


@app.command()
def check(
    ctx: typer.Context,
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="Encounter events (JSON Lines), an X12 837, a FHIR Bundle, Claims or "
            "ExplanationOfBenefits; - reads stdin.",
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the output files.")],
    rules_config: RulesConfigOption = None,
    jobs: JobsOption = 1,
) -> None:
    """Decide every claim of a file, with no broker.

    The format comes from the content: JSON Lines of encounter events or FHIR Claims and
    ExplanationOfBenefits, a FHIR Bundle, Claim or ExplanationOfBenefit, or X12 837P/837I
    interchanges (split into their claims). Writes
    OUT/validated.jsonl, OUT/rejected.jsonl and OUT/dead-letter.jsonl (and OUT/review.jsonl
    when the policies route claims to review): one output line per input line or claim.
    Exits 0 when every record was processed, whatever the outcomes.
    """
    settings = load_settings()
    policies = load_policies(settings, rules_config)
    releases = load_code_sets(settings)
    ensure_writable(out_dir)
    with reading_input(input_path, "deciding") as reading:
        decider = reference_data(ctx).decider(policies, settings.max_record_bytes, releases)
        freeze_long_lived_objects()
        try:
            summary = run_batch(decider, reading.records, out_dir, jobs)
        except BatchWorkerError as error:
            raise fail(str(error)) from error
    print_summary(summary, out_dir, policies, reading.unit)


@contextmanager
def reading_input(input_path: str, label: str) -> Iterator[InputReading]:
    """The records of an input, whatever its format, with a progress bar on a terminal;
    says what it read (the format, the reader's notes) once done.

    Every batch command reads its input here (`check`, `whatif`), so each reads what the
    other does.
    """
    with open_input(input_path) as (source, name, size), byte_progress(size, label) as advance:
        reading = read_input(source, name, advance)
        yield reading
    if reading.format != "json-lines":
        out.print(f"read {name} as {FORMAT_NAMES[reading.format]}", highlight=False)
    for note in reading.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)


def ensure_writable(out_dir: Path) -> None:
    """Fail with a usage error before any work when the output folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".claims-stage-write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise fail(f"cannot write to {out_dir}: {error.strerror}") from error


@contextmanager
def open_input(input_path: str) -> Iterator[tuple[BinaryIO, str, int]]:
    """The input as a binary stream, its name for `source`, and its size (0 for stdin)."""
    if input_path == "-":
        yield sys.stdin.buffer, "-", 0
        return
    path = Path(input_path)
    try:
        source, size = path.open("rb"), path.stat().st_size
    except OSError as error:
        raise fail(f"cannot read {input_path}: {error.strerror}") from error
    with source:
        yield source, str(path), size


@contextmanager
def byte_progress(
    total: int, label: str, minimum: int = PROGRESS_FROM_BYTES
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over `total` bytes on a terminal, from `minimum` bytes; None (no bar)
    otherwise."""
    if total < minimum or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)

        def advance(done: int) -> None:
            bar.advance(task, done)

        yield advance


def print_summary(
    summary: BatchSummary, out_dir: Path, policies: Policies, unit: str = "lines"
) -> None:
    """Counts per route, the most frequent findings and the dead-letter kinds."""
    tally = summary.tally
    rate = tally.records / summary.seconds if summary.seconds else 0.0
    jobs = f", {summary.jobs} jobs" if summary.jobs > 1 else ""
    out.print(
        f"[bold]{tally.records:,}[/] {unit} decided in {summary.seconds:.2f} s "
        f"({rate:,.0f}/s{jobs}) with ruleset {policies.version}"
    )
    if policies.payers:
        out.print(f"payer policies: {', '.join(sorted(policies.payers))}", highlight=False)
    outcomes = Table(title="Outcomes", title_justify="left", show_edge=False)
    for column in ("route", "records", "file"):
        outcomes.add_column(column, justify="right" if column == "records" else "left")
    for route, file_name in output_files(policies.routes_to_review).items():
        outcomes.add_row(route, f"{tally.routes[route]:,}", str(out_dir / file_name))
    out.print(outcomes)
    if tally.findings:
        top = Table(title="Most frequent findings", title_justify="left", show_edge=False)
        for column in ("rule", "severity", "count", "title"):
            top.add_column(column, justify="right" if column == "count" else "left")
        for (rule_id, severity), count in tally.findings.most_common(10):
            top.add_row(rule_id, severity, f"{count:,}", RULES_BY_ID[rule_id].title)
        out.print(top)
    if tally.dead_letter_kinds:
        kinds = ", ".join(f"{k} {n:,}" for k, n in tally.dead_letter_kinds.most_common())
        out.print(f"Dead letters by kind: {kinds}")
