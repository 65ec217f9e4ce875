"""The stage on Kafka: `broker`, `topics`, `worker`, `send`, `tail` and `run`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stream.cli.common import RulesConfigOption, app, err, fail, load_ruleset, load_settings, out
from stream.settings import Settings

if TYPE_CHECKING:
    from stream.kafka.localbroker import LocalBroker

broker_app = typer.Typer(help="The local Kafka broker (single-node KRaft, from Maven Central).")
topics_app = typer.Typer(help="The stage's topics.")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")


def _local_broker(settings: Settings) -> LocalBroker:
    from stream.kafka.localbroker import LocalBroker, default_home

    host, _, port = settings.kafka_bootstrap.partition(",")[0].rpartition(":")
    return LocalBroker(settings.local_broker_home or default_home(), host=host, port=int(port))


@broker_app.command("start")
def broker_start(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker.")] = 120.0,
) -> None:
    """Start the local broker (idempotent) and print its bootstrap address."""
    from stream.kafka.localbroker import BrokerError

    broker = _local_broker(load_settings())
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
    stopped = _local_broker(load_settings()).stop()
    out.print("stopped the local broker" if stopped else "the local broker was not running")


@broker_app.command("status")
def broker_status() -> None:
    """Say whether the local broker runs (exit 0 when it does, 1 when not)."""
    status = _local_broker(load_settings()).status()
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

    from stream.kafka.topics import create_topics

    settings = load_settings()
    try:
        states = create_topics(settings)
    except KafkaException as error:
        raise fail(f"cannot create topics on {settings.kafka_bootstrap}: {error}") from error
    for state in states:
        verb = "created" if state.created else "exists "
        out.print(f"{verb} {state.name:24} {state.role:12} {state.partitions} partitions")


@topics_app.command("list")
def topics_list() -> None:
    """Show which of the stage's topics exist."""
    from stream.kafka.topics import describe_topics

    for state in describe_topics(load_settings()):
        partitions = f"{state.partitions} partitions" if state.partitions else "MISSING"
        out.print(f"{state.name:24} {state.role:12} {partitions}")


def _check_topics(settings: Settings) -> None:
    from confluent_kafka import KafkaException

    from stream.kafka.topics import missing_topics

    try:
        missing = missing_topics(settings)
    except KafkaException as error:
        raise fail(f"cannot reach Kafka at {settings.kafka_bootstrap}: {error}") from error
    if missing:
        raise fail(
            f"missing topics on {settings.kafka_bootstrap}: {', '.join(missing)}. The worker "
            "does not let the broker auto-create them with one partition; run "
            "`claims-stage topics create` first."
        )


@app.command()
def worker(rules_config: RulesConfigOption = None) -> None:
    """Run the stream worker until SIGTERM or Ctrl-C (settings from CLAIMS_* variables)."""
    from stream.core.decision import Decider
    from stream.logs import configure
    from stream.worker.app import run_worker

    settings = load_settings()
    configure(settings.log_level, settings.log_format)
    ruleset = load_ruleset(settings, rules_config)
    _check_topics(settings)
    run_worker(settings, lambda: Decider(ruleset=ruleset))


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
    from stream.cli.batch import read_lines
    from stream.kafka.send import send_lines

    settings = load_settings()
    try:
        with input_path.open("rb") as source:
            lines = list(read_lines(source))
    except OSError as error:
        raise fail(f"cannot read {input_path}: {error.strerror}") from error
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
    from stream.kafka.tail import TailError, describe
    from stream.kafka.tail import tail as follow

    settings = load_settings()
    names = topics or [settings.validated_topic, settings.rejected_topic, settings.dlq_topic]
    try:
        for topic, _, value in follow(settings, names, from_beginning, limit, idle):
            out.print(f"[dim]{topic}[/] {describe(value)}", highlight=False)
    except TailError as error:
        raise fail(
            f"cannot read {', '.join(names)} on {settings.kafka_bootstrap}: {error}"
        ) from error
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
    from stream.cli.batch import read_lines
    from stream.core.decision import Decider
    from stream.kafka.localbroker import BrokerError
    from stream.kafka.send import send_lines
    from stream.kafka.topics import create_topics, wait_for_group_coordinator
    from stream.logs import configure
    from stream.worker.app import run_worker

    settings = load_settings()
    configure(settings.log_level, settings.log_format)
    ruleset = load_ruleset(settings, None)
    broker = None
    if not settings.broker_configured:
        broker = _local_broker(settings)
        started = time.perf_counter()
        out.print("starting the local Kafka broker (CLAIMS_KAFKA_BOOTSTRAP is not set) ...")
        try:
            broker.start()
        except BrokerError as error:
            raise fail(f"the local broker did not start: {error}") from error
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
        run_worker(settings, lambda: Decider(ruleset=ruleset))
    finally:
        if broker is not None and not keep_broker:
            broker.stop()
            out.print("stopped the local broker")
