"""The stage on Kafka: `broker`, `topics`, `worker`, `send`, `tail` and `run`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
    require_access,
)
from stream.settings import Settings

if TYPE_CHECKING:
    from stream.kafka.local.cluster import LocalCluster

broker_app = typer.Typer(
    help="The local Kafka cluster (KRaft, one node or three, optionally secured; from Maven "
    "Central)."
)
topics_app = typer.Typer(help="The stage's topics.")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")


def _local_cluster(
    settings: Settings, nodes: int | None = None, secure: bool | None = None
) -> LocalCluster:
    """The local cluster of CLAIMS_LOCAL_BROKER_HOME, on the ports CLAIMS_KAFKA_BOOTSTRAP
    names when set (else those it was formatted with, else 9092, 9094, ...)."""
    from stream.kafka.local.cluster import (
        BrokerError,
        LocalCluster,
        default_home,
        default_ports,
        read_shape,
    )

    home = settings.local_broker_home or default_home()
    servers = [s.strip().rpartition(":") for s in settings.kafka_bootstrap.split(",")]
    host = servers[0][0]
    ports: list[int] | None = None
    if settings.broker_configured:
        ports = [int(port) for _, _, port in servers]
        recorded = read_shape(home)
        if nodes is None and len(ports) == 1 and recorded and recorded.ports[:1] == (ports[0],):
            ports = list(recorded.ports)  # the first node named: the cluster it belongs to
        elif nodes is not None and len(ports) != nodes:
            ports = default_ports(ports[0], nodes)
    try:
        return LocalCluster(
            home,
            nodes=nodes if nodes is not None else (len(ports) if ports else None),
            secure=secure,
            host=host,
            ports=ports,
        )
    except BrokerError as error:
        raise fail(str(error)) from error


def _grant_local_acls(cluster: LocalCluster, settings: Settings) -> None:
    """On a secured local cluster: the stage's and the producer's ACLs, for these settings."""
    from pydantic import SecretStr

    from stream.kafka.acls import grant, stage_grants

    admin = cluster.client_environment("admin")
    admin_settings = settings.model_copy(
        update={
            "kafka_bootstrap": cluster.bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": admin["CLAIMS_SASL_MECHANISM"],
            "sasl_username": admin["CLAIMS_SASL_USERNAME"],
            "sasl_password": SecretStr(admin["CLAIMS_SASL_PASSWORD"]),
            "ssl_cafile": Path(admin["CLAIMS_SSL_CAFILE"]),
        }
    )
    grant(admin_settings, stage_grants(settings))


@broker_app.command("start")
def broker_start(
    nodes: Annotated[
        int | None,
        typer.Option(
            "--nodes",
            min=1,
            help="Nodes of the cluster (default: as formatted, else 1). Client ports 9092, "
            "9094, 9096, ...",
            show_default=False,
        ),
    ] = None,
    secure: Annotated[
        bool,
        typer.Option(
            "--secure",
            help="SASL_SSL only: a generated CA, SCRAM-SHA-512 users stage, producer and "
            "admin, ACLs; writes var/kafka/<user>.env and .properties.",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the nodes.")] = 120.0,
) -> None:
    """Start the local cluster, or the nodes of it that are down, and print its bootstrap."""
    from stream.kafka.local.cluster import BrokerError

    settings = load_settings()
    cluster = _local_cluster(settings, nodes, True if secure else None)
    started = time.perf_counter()
    try:
        bootstrap = cluster.start(timeout=timeout)
        if cluster.secure:
            _grant_local_acls(cluster, settings)
    except BrokerError as error:
        err.print(f"[bold red]the local broker did not start:[/] {error}", highlight=False)
        raise typer.Exit(1) from error
    kind = "SASL_SSL" if cluster.secure else "PLAINTEXT"
    count = len(cluster.nodes)
    out.print(
        f"Kafka is up at [bold]{bootstrap}[/] ({count} node{'s' * (count > 1)}, {kind}, "
        f"{time.perf_counter() - started:.1f} s)",
        highlight=False,
        soft_wrap=True,
    )
    if cluster.secure:
        _print_client_files(cluster, settings)
    print(bootstrap)


def _print_client_files(cluster: LocalCluster, settings: Settings) -> None:
    outputs = ", ".join(t for t in _output_topics(settings))
    roles = {
        "stage": f"reads {settings.input_topic} (group {settings.app_id}), writes {outputs}",
        "producer": f"writes {settings.input_topic}",
        "admin": "creates topics, grants ACLs (super user)",
    }
    out.print("Settings for each user (CLAIMS_* in .env; Kafka's tools take .properties):")
    for files in cluster.client_files():
        out.print(
            f"  {files.user:9} {files.env}  {roles[files.user]}", highlight=False, soft_wrap=True
        )
    out.print(
        f"For example:  set -a; . {cluster.home / 'admin.env'}; set +a",
        highlight=False,
        soft_wrap=True,
    )


def _output_topics(settings: Settings, review: bool = True) -> list[str]:
    from stream.kafka.topics import output_topics

    return output_topics(settings, review)


@broker_app.command("stop")
def broker_stop(
    node: Annotated[
        int | None, typer.Option("--node", help="Stop only this node (1, 2, 3, ...).")
    ] = None,
) -> None:
    """Stop the local cluster (or one node) cleanly; `broker start` starts what is down."""
    from stream.kafka.local.cluster import BrokerError

    cluster = _local_cluster(load_settings())
    try:
        stopped = cluster.stop(node=node)
    except BrokerError as error:
        raise fail(str(error)) from error
    what = f"node {node}" if node is not None else "the local broker"
    out.print(f"stopped {what}" if stopped else f"{what} was not running")


@broker_app.command("status")
def broker_status(
    as_json: Annotated[
        bool, typer.Option("--json", help="A list of objects: node, pid, port, ...")
    ] = False,
) -> None:
    """Each node with its pid and listener (exit 0 when every node runs, 1 when not)."""
    import json

    statuses = _local_cluster(load_settings()).status()
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "node": s.node,
                        "pid": s.pid,
                        "port": s.port,
                        "running": s.running,
                        "bootstrap": s.bootstrap,
                        "controller_port": s.controller_port,
                        "log": str(s.log_path),
                    }
                    for s in statuses
                ],
                indent=2,
            )
        )
    else:
        for s in statuses:
            out.print(
                f"node {s.node}: {'running' if s.running else 'not running'}: {s.bootstrap} "
                f"(pid {s.pid}); {s.detail}; log {s.log_path}",
                highlight=False,
                soft_wrap=True,
            )
    raise typer.Exit(0 if all(s.running for s in statuses) else 1)


@broker_app.command("reset")
def broker_reset() -> None:
    """Stop the local cluster and delete its topics, configuration and credentials (not the
    jars), so that the next start may choose another --nodes or --secure."""
    from stream.kafka.local.cluster import BrokerError

    cluster = _local_cluster(load_settings())
    try:
        deleted = cluster.reset()
    except BrokerError as error:
        raise fail(str(error)) from error
    out.print(
        f"deleted {len(deleted)} files and folders under {cluster.home}"
        if deleted
        else "nothing to delete",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def acls(
    stage_user: Annotated[str, typer.Option(help="The stage's SASL user.")] = "stage",
    producer_user: Annotated[str, typer.Option(help="The input producer's user.")] = "producer",
    commands: Annotated[
        bool, typer.Option("--commands", help="Print kafka-acls.sh command lines instead.")
    ] = False,
) -> None:
    """The ACLs the stage and its producer need on a secured cluster (from the settings)."""
    from stream.kafka.acls import stage_grants

    settings = load_settings()
    for g in stage_grants(settings, stage_user, producer_user):
        if commands:
            print(g.kafka_acls(settings.kafka_bootstrap))
        else:
            out.print(
                f"{g.principal:16} ALLOW {g.operation:6} {g.resource:5} {g.name}"
                + ("*" if g.pattern == "PREFIXED" else ""),
                highlight=False,
                soft_wrap=True,
            )


@topics_app.command("create")
def topics_create() -> None:
    """Create the input, validated, review, rejected and dead-letter topics that are missing."""
    from confluent_kafka import KafkaException

    from stream.kafka.access import Needs
    from stream.kafka.topics import TopicsError, create_topics

    settings = load_settings()
    require_access(settings, Needs())
    try:
        states = create_topics(settings)
    except (KafkaException, TopicsError) as error:
        raise fail(f"cannot create topics on {settings.kafka_bootstrap}: {error}") from error
    for state in states:
        verb = "created" if state.created else "exists "
        replicas = f", {state.replicas} replicas" if state.replicas else ""
        if state.min_insync_replicas:
            replicas += f" (min in-sync {state.min_insync_replicas})"
        out.print(
            f"{verb} {state.name:24} {state.role:12} {state.partitions} partitions{replicas}",
            highlight=False,
            soft_wrap=True,
        )


@topics_app.command("list")
def topics_list() -> None:
    """Show which of the stage's topics exist."""
    from stream.kafka.access import Needs
    from stream.kafka.topics import describe_topics

    settings = load_settings()
    require_access(settings, Needs())
    for state in describe_topics(settings):
        partitions = f"{state.partitions} partitions" if state.partitions else "MISSING"
        replicas = f", {state.replicas} replicas" if state.replicas else ""
        out.print(
            f"{state.name:24} {state.role:12} {partitions}{replicas}",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def worker(ctx: typer.Context, rules_config: RulesConfigOption = None) -> None:
    """Run the stream worker until SIGTERM or Ctrl-C (settings from CLAIMS_* variables)."""
    from stream.kafka.access import stage_needs
    from stream.logs import configure
    from stream.worker.app import run_worker

    settings = load_settings()
    configure(settings.log_level, settings.log_format)
    policies = load_policies(settings, rules_config)
    releases = load_code_sets(settings)  # the code-set store, read at start
    # Before Faust starts: a wrong password, an untrusted certificate, a missing ACL or a
    # missing topic ends here with the cause named, not in a client retrying forever.
    require_access(settings, stage_needs(settings, review=policies.routes_to_review))
    decider = reference_data(ctx).decider(policies, settings.max_record_bytes, releases)
    freeze_long_lived_objects()
    run_worker(settings, lambda: decider)


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
    from stream.kafka.access import Needs
    from stream.kafka.send import send_lines

    settings = load_settings()
    try:
        with input_path.open("rb") as source:
            lines = list(read_lines(source))
    except OSError as error:
        raise fail(f"cannot read {input_path}: {error.strerror}") from error
    require_access(settings, Needs(write=(topic or settings.input_topic,)))
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
        typer.Argument(metavar="TOPIC...", help="Topics to follow (default: the output topics)."),
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
    """Print arriving records readably: route, claim and findings; dead letters' errors."""
    from confluent_kafka import KafkaException

    from stream.kafka.access import Needs
    from stream.kafka.tail import TailError, default_topics, describe
    from stream.kafka.tail import tail as follow

    settings = load_settings()
    if topics:
        names = topics
        require_access(settings, Needs(read=tuple(names)))
    else:
        # The review topic only where it exists: a deployment that routes nothing to review
        # may not have it.
        require_access(settings, Needs(read=tuple(_output_topics(settings, review=False))))
        try:
            names = default_topics(settings)
        except KafkaException as error:
            raise fail(f"cannot reach Kafka at {settings.kafka_bootstrap}: {error}") from error
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
    ctx: typer.Context,
    examples: Annotated[Path, typer.Option(help="JSON Lines to send once the stage is up.")] = Path(
        "schemas/examples/encounters.jsonl"
    ),
    keep_broker: Annotated[
        bool, typer.Option("--keep-broker", help="Leave the local broker running on exit.")
    ] = False,
) -> None:
    """The main job: broker (local unless configured), topics, the example stream, the worker."""
    from stream.cli.batch import read_lines
    from stream.kafka.local.cluster import BrokerError
    from stream.kafka.send import send_lines
    from stream.kafka.topics import create_topics, wait_for_group_coordinator
    from stream.logs import configure
    from stream.worker.app import run_worker

    settings = load_settings()
    configure(settings.log_level, settings.log_format)
    policies = load_policies(settings, None)
    releases = load_code_sets(settings)
    broker = None
    if not settings.broker_configured:
        broker = _local_cluster(settings)
        if broker.secure:
            raise fail(
                f"the local cluster in {broker.home} is secured: no one user may do all that "
                "`run` does. Start the parts with each user's settings (docs/security.md), "
                "or `claims-stage broker reset` for a plaintext one."
            )
        started = time.perf_counter()
        out.print("starting the local Kafka broker (CLAIMS_KAFKA_BOOTSTRAP is not set) ...")
        try:
            bootstrap = broker.start()
        except BrokerError as error:
            raise fail(f"the local broker did not start: {error}") from error
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        out.print(f"Kafka is up at {bootstrap} ({time.perf_counter() - started:.1f} s)")
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
        decider = reference_data(ctx).decider(policies, settings.max_record_bytes, releases)
        freeze_long_lived_objects()
        run_worker(settings, lambda: decider)
    finally:
        if broker is not None and not keep_broker:
            broker.stop()
            out.print("stopped the local broker")
