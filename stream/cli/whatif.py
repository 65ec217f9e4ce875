"""`claims-stage whatif`: what a rules configuration would change, before it goes live."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from stream.cli.batch import BatchWorkerError, InputRecord, resolve_jobs, run_chunks
from stream.cli.check import JobsOption, ensure_writable, reading_input
from stream.cli.common import (
    app,
    fail,
    freeze_long_lived_objects,
    load_code_sets,
    load_policies,
    load_settings,
    out,
    reference_data,
)
from stream.cli.report import ROUTE_ORDER, ReportContext, render_report
from stream.core.contracts import KafkaSource
from stream.core.rules import RULES_BY_ID
from stream.core.rules.config import Policies
from stream.core.whatif import ClaimComparison, PolicyComparison, WhatIfTally, policy_changes

CHANGES_FILE = "changes.jsonl"
REPORT_FILE = "report.html"


@dataclass
class ComparedChunk:
    """One chunk's changed claims (`changes.jsonl` lines, in input order) and counts."""

    changes: list[bytes]
    tally: WhatIfTally


class CompareChunk:
    """Judge a chunk of records under both policies (in a worker process or in this one)."""

    def __init__(self, comparison: PolicyComparison) -> None:
        self.comparison = comparison

    def __call__(self, records: list[InputRecord]) -> ComparedChunk:
        compare = self.comparison.compare
        tally = WhatIfTally()
        changes: list[bytes] = []
        for value, source in records:
            result = compare(value, source)
            tally.record(result)
            if isinstance(result, ClaimComparison) and result.changed:
                changes.append(orjson.dumps(result.document()))
        return ComparedChunk(changes, tally)


@app.command()
def whatif(
    ctx: typer.Context,
    rules_config: Annotated[
        Path,
        typer.Option("--rules-config", help="The proposed TOML policy file.", show_default=False),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for changes.jsonl and report.html.")
    ],
    input_path: Annotated[
        str | None,
        typer.Argument(
            metavar="[INPUT]",
            help="Input file, as `check` reads it (- reads stdin); or use --topic.",
            show_default=False,
        ),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="The policy file in force (default: the built-in catalogue, no configuration).",
            show_default=False,
        ),
    ] = None,
    jobs: JobsOption = 1,
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic",
            help="Read this topic instead of a file (as an onlooker: no group, no commit).",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="With --topic: from this time (ISO 8601, e.g. 2026-04-01 or "
            "2026-04-01T08:00:00Z; UTC unless it says otherwise).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="With --topic: up to this time (default: the end of the topic when the read "
            "starts).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Decide every claim under the policy in force and a proposed one, and show the difference.

    Writes OUT/changes.jsonl (one line per claim whose route or findings change) and
    OUT/report.html (one self-contained page: route transitions, findings added and removed
    per rule and per payer, sample claims), and prints a summary. Nothing is sent anywhere.
    """
    proposed = load_policies(None, rules_config)
    before = load_policies(None, baseline) if baseline else Policies()
    span = _topic_span(input_path, topic, since, until)
    releases = load_code_sets(load_settings())
    ensure_writable(out_dir)
    decider = reference_data(ctx).decider(before, releases=releases)
    comparison = PolicyComparison(decider, before, proposed)
    freeze_long_lived_objects()
    started = time.perf_counter()
    with _records(input_path, span) as (records, input_label):
        tally = WhatIfTally()
        try:
            with (out_dir / CHANGES_FILE).open("wb") as changes:
                for chunk in run_chunks(CompareChunk(comparison), records, jobs):
                    changes.writelines(line + b"\n" for line in chunk.changes)
                    tally.merge(chunk.tally)
        except BatchWorkerError as error:
            raise fail(str(error)) from error
    seconds = time.perf_counter() - started
    context = ReportContext(
        input_label=input_label,
        baseline_label=str(baseline) if baseline else "the built-in catalogue",
        proposed_label=str(rules_config),
        baseline_version=before.version,
        proposed_version=proposed.version,
        generated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        seconds=seconds,
        policy_changes=policy_changes(before, proposed),
    )
    (out_dir / REPORT_FILE).write_text(render_report(tally, context), "utf-8")
    print_whatif_summary(tally, context, out_dir, resolve_jobs(jobs))


def parse_moment(text: str, option: str) -> dt.datetime:
    """An ISO 8601 date or time; UTC when it names no offset."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise fail(
            f"{option} {text!r} is not an ISO 8601 date or time (e.g. 2026-04-01 or "
            "2026-04-01T08:00:00Z)"
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class TopicSpan:
    topic: str
    since: dt.datetime
    until: dt.datetime | None


def _topic_span(
    input_path: str | None, topic: str | None, since: str | None, until: str | None
) -> TopicSpan | None:
    """What to read of --topic; None for a file. Usage errors for a wrong combination."""
    if (input_path is None) == (topic is None):
        raise fail("give either an INPUT file or --topic NAME --since TIMESTAMP")
    if topic is None:
        if since or until:
            raise fail("--since and --until go with --topic")
        return None
    if since is None:
        raise fail("--topic needs --since TIMESTAMP: where in the topic to start")
    start = parse_moment(since, "--since")
    end = parse_moment(until, "--until") if until else None
    if end is not None and end <= start:
        raise fail("--until must be later than --since")
    return TopicSpan(topic, start, end)


@contextmanager
def _records(
    input_path: str | None, span: TopicSpan | None
) -> Iterator[tuple[Iterable[InputRecord], str]]:
    """(records, a label for the report) of the file, whatever its format, or the topic."""
    if span is None:
        with reading_input(input_path or "-", "comparing") as reading:
            yield reading.records, input_path or "-"
        return
    from stream.kafka.replay import ReplayError, read_topic

    label = f"topic {span.topic} from {span.since.isoformat()}" + (
        f" to {span.until.isoformat()}" if span.until else ""
    )
    try:
        # The consumer is made when the first record is asked for: after any worker
        # processes have forked, so none of them inherits librdkafka's threads.
        records = (
            (value, KafkaSource.model_construct(topic=span.topic, partition=p, offset=offset))
            for value, p, offset in read_topic(load_settings(), span.topic, span.since, span.until)
        )
        yield records, label
    except ReplayError as error:
        raise fail(str(error)) from error


def print_whatif_summary(
    tally: WhatIfTally, context: ReportContext, out_dir: Path, jobs: int
) -> None:
    rate = tally.records / context.seconds if context.seconds else 0.0
    out.print(
        f"[bold]{tally.claims:,}[/] claims judged under {context.baseline_version} and "
        f"{context.proposed_version} in {context.seconds:.2f} s ({rate:,.0f} records/s"
        f"{f', {jobs} jobs' if jobs > 1 else ''}); {tally.dead_letters:,} records are no "
        "claim (dead letters)",
        highlight=False,
    )
    route_changes = tally.route_changes
    out.print(
        f"[bold]{tally.changed:,}[/] claims change: {route_changes:,} change route, "
        f"{tally.changed - route_changes:,} only their findings",
        highlight=False,
    )
    moves = [
        (before, after, tally.transitions[(before, after)])
        for before in ROUTE_ORDER
        for after in ROUTE_ORDER
        if before != after and tally.transitions[(before, after)]
    ]
    if moves:
        table = Table(title="Route changes", title_justify="left", show_edge=False)
        for column in ("from", "to", "claims"):
            table.add_column(column, justify="right" if column == "claims" else "left")
        for before, after, count in moves:
            table.add_row(before, after, f"{count:,}")
        out.print(table)
    rules = tally.rule_changes()
    if rules:
        table = Table(title="Findings per rule", title_justify="left", show_edge=False)
        for column in ("rule", "added", "removed", "title"):
            table.add_column(column, justify="right" if column in ("added", "removed") else "left")
        ranked = sorted(
            rules.items(), key=lambda item: -(sum(item[1][0].values()) + sum(item[1][1].values()))
        )
        for rule_id, (added, removed) in ranked[:10]:
            plus, minus = sum(added.values()), sum(removed.values())
            table.add_row(
                rule_id,
                f"+{plus:,}" if plus else "0",
                f"-{minus:,}" if minus else "0",
                RULES_BY_ID[rule_id].title,
            )
        out.print(table)
    out.print(f"changes: {out_dir / CHANGES_FILE}\nreport:  {out_dir / REPORT_FILE}")
