"""`claims-stage ingest`: claims as payers and hospitals send them, onto the input topic.

An 837 interchange or a FHIR Bundle is split into its claims; each becomes one encounter
event (key = its claim ID, `origin` filled) on the input topic, where the worker decides it
like any other. A claim that cannot be read (pyx12 or fhir.resources rejects it, or data the
rules need is missing) never reaches the worker: its dead letter, with the location and the
claim's input kept, goes straight to the dead-letter topic. Every claim gives one record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stream.cli.batch import InputRecord
from stream.cli.check import byte_progress
from stream.cli.common import app, err, fail, load_settings, out, require_access
from stream.cli.readers import FORMAT_NAMES, read_input
from stream.core.adapters.formats import AdaptedClaim
from stream.core.decision import Output, check_adapted, fhir_record
from stream.settings import Settings

if TYPE_CHECKING:
    from stream.kafka.send import Outgoing


@dataclass
class IngestCounts:
    events: int = 0
    dead_letters: int = 0
    passed: int = 0


@app.command()
def ingest(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="An X12 837P/837I file, a FHIR Bundle or Claim, or JSON Lines."
        ),
    ],
) -> None:
    """Split an 837 or a FHIR Bundle into one encounter event per claim and produce them to
    the input topic (key = claim ID, origin filled); unreadable claims go to the dead-letter
    topic with where and what. JSON Lines are produced line by line, FHIR Claims as events."""
    from stream.kafka.access import Needs
    from stream.kafka.send import send_records

    settings = load_settings()
    try:
        source, size = input_path.open("rb"), input_path.stat().st_size
    except OSError as error:
        raise fail(f"cannot read {input_path}: {error.strerror}") from error
    # Unreadable claims go straight to the dead-letter topic: both are written.
    require_access(settings, Needs(write=(settings.input_topic, settings.dlq_topic)))
    counts = IngestCounts()
    with source, byte_progress(size, "ingesting", minimum=1) as advance:
        reading = read_input(source, str(input_path), advance)
        planned = _plan(settings, reading.records, counts)
        report = send_records(settings, planned)
    for note in reading.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    what = FORMAT_NAMES[reading.format]
    out.print(
        f"ingested {input_path} ({what}) in {report.seconds:.1f} s: {counts.events:,} "
        f"encounter events to {settings.input_topic}, {counts.dead_letters:,} dead letters "
        f"to {settings.dlq_topic}"
        + (f", {counts.passed:,} lines as they are" if counts.passed else "")
        + f"; {report.delivered:,} delivered, {report.failed:,} failed",
        highlight=False,
    )
    if report.failed:
        raise typer.Exit(1)


def _plan(
    settings: Settings, records: Iterator[InputRecord], counts: IngestCounts
) -> Iterator[Outgoing]:
    """The record each claim becomes: its encounter event, or its dead letter."""
    from stream.kafka.send import Outgoing, key_of

    for value, source in records:
        if isinstance(value, AdaptedClaim):
            adapted = value
        elif (fhir := fhir_record(value)) is not None:
            adapted = fhir
        else:  # an event, or a bad line: the worker decides or dead-letters it
            counts.passed += 1
            yield Outgoing(settings.input_topic, key_of(value), value)
            continue
        key = adapted.claim_id.encode() if adapted.claim_id else None
        checked = check_adapted(adapted, source, key, dt.datetime.now(dt.UTC))
        if isinstance(checked, Output):
            counts.dead_letters += 1
            yield Outgoing(settings.dlq_topic, checked.key, checked.value, tuple(checked.headers))
        else:
            counts.events += 1
            yield Outgoing(settings.input_topic, checked.claim_id.encode(), adapted.event or b"")
