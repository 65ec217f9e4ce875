"""Batch mode: the decision function over input records, with no broker.

The records come from `stream.cli.readers`, whatever the input's format. Every input
record yields exactly one output line, in `validated.jsonl`, `rejected.jsonl`,
`dead-letter.jsonl` and, when the policies route claims to review, `review.jsonl`; `source`
is the file and the line number (of the claim, in an 837 or a Bundle).

`run_chunks` is the executor that `check` and `whatif` share: records go in chunks to worker
processes (forked once the decider is built, so each holds the reference data without
loading it again), and the results come back in input order, so the output files are the
same whatever the number of jobs.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

from stream.core.adapters.formats import AdaptedClaim
from stream.core.contracts import FileSource, KafkaSource, Route, Source
from stream.core.decision import Decider
from stream.core.tally import Tally

OUTPUT_FILES: dict[Route, str] = {
    "validated": "validated.jsonl",
    "review": "review.jsonl",
    "rejected": "rejected.jsonl",
    "dead_letter": "dead-letter.jsonl",
}

CHUNK_RECORDS = 250
"""Records per chunk sent to a worker process: large enough that the hand-over costs little
next to deciding them, small enough that the workers start at once and memory stays flat."""
CHUNK_BYTES = 8 * 1_048_576
"""...and at most this many input bytes (a record may take it past): a chunk of large records
is held in memory with its outputs, which can be a few times its size, so a chunk is cut by
bytes as well as by records."""
CHUNKS_IN_FLIGHT = 3
"""Chunks queued per worker process, so that none waits for the next while results are read."""


@dataclass
class BatchSummary:
    """What a batch run did: the tally of its outputs and how long it took."""

    tally: Tally = field(default_factory=Tally)
    seconds: float = 0.0
    jobs: int = 1


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines without their terminating newline, everything else byte for byte.

    A blank line is a line (it becomes a dead letter); a final newline does not start one.
    """
    for line in stream:
        yield line[:-1] if line.endswith(b"\n") else line


InputRecord = tuple[bytes | AdaptedClaim, Source]
"""One input record as the batch reads it: the value to decide and where it came from.

The value is a line's bytes, or a claim an adapter read from an 837 or a FHIR Bundle
(`stream.cli.readers` reads every format)."""


def line_records(lines: Iterable[bytes], source_name: str) -> Iterator[InputRecord]:
    """JSON Lines: one record per line, its source the file and the line number."""
    for number, line in enumerate(lines, start=1):
        yield line, FileSource(file=source_name, line=number)


def output_files(review: bool) -> dict[Route, str]:
    """The output file of each route; `review.jsonl` only when the policies route to review."""
    return {route: name for route, name in OUTPUT_FILES.items() if review or route != "review"}


def resolve_jobs(jobs: int) -> int:
    """Worker processes for `--jobs N`: N, or every core this process may use for 0."""
    if jobs > 0:
        return jobs
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- the executor --------------------------------------------------------------------------

Result = TypeVar("Result")
ChunkWork = Callable[[list[InputRecord]], Result]
"""What a worker does with one chunk of records; it must not raise (decide() never does)."""


def chunks(
    records: Iterable[InputRecord], size: int = CHUNK_RECORDS, max_bytes: int = CHUNK_BYTES
) -> Iterator[list[InputRecord]]:
    """Records in chunks of `size` records or `max_bytes` input bytes, whichever comes first."""
    chunk: list[InputRecord] = []
    held = 0
    for record in records:
        chunk.append(record)
        held += len(record[0])
        if len(chunk) == size or held >= max_bytes:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def run_chunks(
    work: ChunkWork[Result], records: Iterable[InputRecord], jobs: int = 1
) -> Iterator[Result]:
    """`work` over every chunk of `records`, in input order (progress: the reader's).

    One job runs in this process. More run in forked worker processes that inherit `work`
    (and the decider it holds, built and frozen before the fork: nothing is loaded twice).
    """
    jobs = resolve_jobs(jobs)
    if jobs == 1:
        for chunk in chunks(records):
            yield work(chunk)
        return
    with _WorkerPool(work, jobs) as pool:
        yield from pool.ordered(chunks(records))


Packed = list[tuple[bytes | AdaptedClaim, tuple[Any, ...]]]


def _pack(chunk: list[InputRecord]) -> Packed:
    """A chunk as plain tuples: pickling the sources as pydantic models costs ~4x more."""
    packed: Packed = []
    for value, source in chunk:
        if isinstance(source, FileSource):
            packed.append((value, (source.file, source.line)))
        else:
            packed.append((value, (source.topic, source.partition, source.offset)))
    return packed


def _unpack(packed: Packed) -> list[InputRecord]:
    records: list[InputRecord] = []
    for value, where in packed:
        if len(where) == 2:
            records.append((value, FileSource.model_construct(file=where[0], line=where[1])))
        else:
            records.append(
                (
                    value,
                    KafkaSource.model_construct(
                        topic=where[0], partition=where[1], offset=where[2]
                    ),
                )
            )
    return records


def _serve(work: ChunkWork[Any], tasks: Any, results: Any) -> None:
    """A worker process: chunks in, results out, in the order received, until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while (packed := tasks.get()) is not None:
        try:
            results.put((True, work(_unpack(packed))))
        except BaseException:  # reported to the parent, which stops the run
            results.put((False, traceback.format_exc()))
            return


class BatchWorkerError(RuntimeError):
    """A worker process failed or died; the message says how."""


class _WorkerPool(Generic[Result]):
    """Worker processes, each with its own task and result queue.

    Chunk k goes to worker k mod N, and each worker answers in the order it was asked, so
    reading the result queues round-robin gives the results in input order with no
    reordering buffer.
    """

    def __init__(self, work: ChunkWork[Result], jobs: int) -> None:
        # fork: the workers inherit the built decider (and its frozen reference data);
        # queues feed through their own threads, so a large chunk never blocks both ends.
        context = multiprocessing.get_context("fork")
        self.jobs = jobs
        self.tasks = [context.Queue() for _ in range(jobs)]
        self.results = [context.Queue() for _ in range(jobs)]
        self.processes: list[BaseProcess] = [
            context.Process(target=_serve, args=(work, self.tasks[n], self.results[n]), daemon=True)
            for n in range(jobs)
        ]
        for process in self.processes:
            process.start()

    def __enter__(self) -> _WorkerPool[Result]:
        return self

    def __exit__(self, *exc: object) -> None:
        failed = exc[0] is not None
        for tasks in self.tasks:
            tasks.put(None)
        for process in self.processes:
            process.join(timeout=0.5 if failed else 30)
            if process.is_alive():
                process.terminate()
                process.join()
        for q in (*self.tasks, *self.results):
            q.close()
            q.cancel_join_thread()  # nothing left in them that anyone needs

    def ordered(self, chunked: Iterable[list[InputRecord]]) -> Iterator[Result]:
        pending: deque[int] = deque()  # the worker of each chunk in flight, in input order
        for index, chunk in enumerate(chunked):
            worker = index % self.jobs
            self.tasks[worker].put(_pack(chunk))
            pending.append(worker)
            if len(pending) >= CHUNKS_IN_FLIGHT * self.jobs:
                yield self._result(pending.popleft())
        while pending:
            yield self._result(pending.popleft())

    def _result(self, worker: int) -> Result:
        while True:
            try:
                ok, result = self.results[worker].get(timeout=1.0)
            except queue.Empty:
                code = self.processes[worker].exitcode
                if code is not None:
                    raise BatchWorkerError(
                        f"batch worker process {worker + 1} of {self.jobs} died (exit code "
                        f"{code}); no output was lost, but the run is incomplete"
                    ) from None
                continue
            if not ok:
                raise BatchWorkerError(f"batch worker process {worker + 1} failed:\n{result}")
            chunk_result: Result = result
            return chunk_result


# --- check: decide every record, write each to its route's file ---------------------------


@dataclass
class DecidedChunk:
    """The outputs of one chunk, in input order, and their tally."""

    routes: list[Route]
    values: list[bytes]
    tally: Tally


class DecideChunk:
    """Decide a chunk of records (in a worker process or in this one)."""

    def __init__(self, decider: Decider) -> None:
        self.decider = decider

    def __call__(self, records: list[InputRecord]) -> DecidedChunk:
        decide = self.decider.decide
        tally = Tally()
        routes: list[Route] = []
        values: list[bytes] = []
        for value, source in records:
            output = decide(value, source)
            routes.append(output.route)
            values.append(output.value)
            tally.record(output)
        return DecidedChunk(routes, values, tally)


def run_batch(
    decider: Decider, records: Iterable[InputRecord], out_dir: Path, jobs: int = 1
) -> BatchSummary:
    """Decide every record and write it to its output file, in input order."""
    summary = BatchSummary(jobs=resolve_jobs(jobs))
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = output_files(decider.policies.routes_to_review)
    handles = {route: (out_dir / name).open("wb") for route, name in files.items()}
    try:
        for decided in run_chunks(DecideChunk(decider), records, jobs):
            for route, value in zip(decided.routes, decided.values, strict=True):
                handles[route].write(value + b"\n")
            summary.tally.merge(decided.tally)
    finally:
        for handle in handles.values():
            handle.close()
    summary.seconds = time.perf_counter() - started
    return summary
