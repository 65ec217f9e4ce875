"""`claims-stage`: the project's front door."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from stream.contracts import json_schemas, normalize_icd10cm
from stream.rules import CATALOGUE, RULES_BY_ID
from stream.rules.listing import markdown_table, replace_generated_section
from stream.ruleset import RulesConfigError, Ruleset
from stream.settings import Settings

if TYPE_CHECKING:
    from stream.localbroker import LocalBroker

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


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"CLAIMS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        raise _fail(f"invalid settings: {problems}") from error


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
    from stream.decide import Stage, freeze_reference_data

    settings = _settings()
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
    freeze_reference_data()
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
    ruleset = _ruleset(_settings(), rules_config)
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


# --- the stage on Kafka ------------------------------------------------------------------

broker_app = typer.Typer(help="The local Kafka broker (single-node KRaft, from Maven Central).")
topics_app = typer.Typer(help="The stage's topics.")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")


def _local_broker(settings: Settings) -> LocalBroker:
    from stream.localbroker import LocalBroker, default_home

    host, _, port = settings.kafka_bootstrap.partition(",")[0].rpartition(":")
    return LocalBroker(settings.local_broker_home or default_home(), host=host, port=int(port))


@broker_app.command("start")
def broker_start(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker.")] = 120.0,
) -> None:
    """Start the local broker (idempotent) and print its bootstrap address."""
    from stream.localbroker import BrokerError

    broker = _local_broker(_settings())
    started = time.perf_counter()
    try:
        bootstrap = broker.start(timeout=timeout)
    except BrokerError as error:
        err.print(f"[bold red]the local broker did not start:[/] {error}", highlight=False)
        raise typer.Exit(1) from error
    out.print(f"Kafka is up at [bold]{bootstrap}[/] ({time.perf_counter() - started:.1f} s)")
    print(bootstrap)


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the local broker cleanly."""
    stopped = _local_broker(_settings()).stop()
    out.print("stopped the local broker" if stopped else "the local broker was not running")


@broker_app.command("status")
def broker_status() -> None:
    """Say whether the local broker runs (exit 0 when it does, 1 when not)."""
    status = _local_broker(_settings()).status()
    out.print(
        f"{'running' if status.running else 'not running'}: {status.bootstrap} "
        f"(pid {status.pid}); {status.detail}; log {status.log_path}",
        highlight=False,
    )
    raise typer.Exit(0 if status.running else 1)


@topics_app.command("create")
def topics_create() -> None:
    """Create the input, validated, rejected and dead-letter topics that are missing."""
    from confluent_kafka import KafkaException

    from stream.topics import create_topics

    settings = _settings()
    try:
        states = create_topics(settings)
    except KafkaException as error:
        raise _fail(f"cannot create topics on {settings.kafka_bootstrap}: {error}") from error
    for state in states:
        verb = "created" if state.created else "exists "
        out.print(f"{verb} {state.name:24} {state.role:12} {state.partitions} partitions")


@topics_app.command("list")
def topics_list() -> None:
    """Show which of the stage's topics exist."""
    from stream.topics import describe_topics

    for state in describe_topics(_settings()):
        partitions = f"{state.partitions} partitions" if state.partitions else "MISSING"
        out.print(f"{state.name:24} {state.role:12} {partitions}")


def _check_topics(settings: Settings) -> None:
    from confluent_kafka import KafkaException

    from stream.topics import missing_topics

    try:
        missing = missing_topics(settings)
    except KafkaException as error:
        raise _fail(f"cannot reach Kafka at {settings.kafka_bootstrap}: {error}") from error
    if missing:
        raise _fail(
            f"missing topics on {settings.kafka_bootstrap}: {', '.join(missing)}. The worker "
            "does not let the broker auto-create them with one partition; run "
            "`claims-stage topics create` first."
        )


@app.command()
def worker(rules_config: RulesConfigOption = None) -> None:
    """Run the stream worker until SIGTERM or Ctrl-C (settings from CLAIMS_* variables)."""
    from stream.decide import Stage
    from stream.logs import configure
    from stream.worker import run_worker

    settings = _settings()
    configure(settings.log_level, settings.log_format)
    ruleset = _ruleset(settings, rules_config)
    _check_topics(settings)
    run_worker(settings, lambda: Stage(ruleset=ruleset))


@app.command()
def send(
    input_path: Annotated[Path, typer.Argument(metavar="FILE", help="JSON Lines to produce.")],
    rate: Annotated[
        float | None,
        typer.Option("--rate", help="Records per second (default: as fast as possible)."),
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="Target topic (default: the input topic).")
    ] = None,
) -> None:
    """Produce a JSON Lines file to the input topic, key = claim_id; bad lines as they are."""
    from stream.batch import read_lines
    from stream.feed import send_lines

    settings = _settings()
    try:
        with input_path.open("rb") as source:
            lines = list(read_lines(source))
    except OSError as error:
        raise _fail(f"cannot read {input_path}: {error.strerror}") from error
    if err.is_terminal and len(lines) > 1000:
        from rich.progress import Progress

        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("sending", total=len(lines))
            report = send_lines(settings, lines, topic, rate, lambda n: bar.advance(task, n))
    else:
        report = send_lines(settings, lines, topic, rate)
    out.print(
        f"sent {report.sent:,} records to {topic or settings.input_topic} in "
        f"{report.seconds:.1f} s: {report.delivered:,} delivered, {report.failed:,} failed"
    )
    if report.failed:
        raise typer.Exit(1)


@app.command()
def tail(
    topics: Annotated[
        list[str] | None,
        typer.Argument(metavar="TOPIC...", help="Topics to follow (default: the three outputs)."),
    ] = None,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--max", help="Stop after this many records.")
    ] = None,
    idle: Annotated[
        float | None, typer.Option("--idle", help="Stop after this many quiet seconds.")
    ] = None,
) -> None:
    """Print arriving records readably: outcome, claim and findings; dead letters' errors."""
    from stream.feed import describe
    from stream.feed import tail as follow

    settings = _settings()
    names = topics or [settings.validated_topic, settings.rejected_topic, settings.dlq_topic]
    try:
        for topic, _, value in follow(settings, names, from_beginning, limit, idle):
            out.print(f"[dim]{topic}[/] {describe(value)}", highlight=False)
    except KeyboardInterrupt:
        pass


@app.command()
def run(
    examples: Annotated[Path, typer.Option(help="JSON Lines to send once the stage is up.")] = Path(
        "schemas/examples/encounters.jsonl"
    ),
    keep_broker: Annotated[
        bool, typer.Option("--keep-broker", help="Leave the local broker running on exit.")
    ] = False,
) -> None:
    """The main job: broker (local unless configured), topics, the example stream, the worker."""
    from stream.batch import read_lines
    from stream.decide import Stage
    from stream.feed import send_lines
    from stream.localbroker import BrokerError
    from stream.logs import configure
    from stream.topics import create_topics, wait_for_group_coordinator
    from stream.worker import run_worker

    settings = _settings()
    configure(settings.log_level, settings.log_format)
    ruleset = _ruleset(settings, None)
    broker = None
    if not settings.broker_configured:
        broker = _local_broker(settings)
        started = time.perf_counter()
        out.print("starting the local Kafka broker (CLAIMS_KAFKA_BOOTSTRAP is not set) ...")
        try:
            broker.start()
        except BrokerError as error:
            raise _fail(f"the local broker did not start: {error}") from error
        out.print(
            f"Kafka is up at {settings.kafka_bootstrap} ({time.perf_counter() - started:.1f} s)"
        )
    try:
        for state in create_topics(settings):
            out.print(f"topic {state.name} ({state.role}): {state.partitions} partitions")
        wait_for_group_coordinator(settings)
        if examples.exists():
            with examples.open("rb") as source:
                report = send_lines(settings, read_lines(source))
            out.print(f"sent {report.delivered:,} example records from {examples}")
        base = f"http://{settings.web_host}:{settings.web_port}"
        out.print(
            f"\nThe worker is starting. Look at:\n"
            f"  metrics   {base}/metrics\n"
            f"  health    {base}/healthz\n"
            f"  outputs   claims-stage tail --from-beginning\n"
            f"  rejected  claims-stage tail {settings.rejected_topic} --from-beginning\n"
            f"Ctrl-C stops it.\n",
            highlight=False,
        )
        run_worker(settings, lambda: Stage(ruleset=ruleset))
    finally:
        if broker is not None and not keep_broker:
            broker.stop()
            out.print("stopped the local broker")


def main() -> None:
    app()
