"""The worker's web pages: `/metrics`, `/healthz` and `/status`, on Faust's web server."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import faust
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream import __version__
from stream.ops.health import WorkerState
from stream.ops.status import StatusSnapshot, render_status

TOP_RULES = 8
"""Failing rules listed on the status page."""


@dataclass(frozen=True)
class PageContext:
    """What the pages read: the worker's state and how to ask which partitions it holds."""

    app_id: str
    ruleset_version: str
    icd10cm: str
    state: WorkerState
    held_partitions: Callable[[], set[int]]
    registry: CollectorRegistry
    code_sets: tuple[str, ...] = ()
    """Every code-set label a decision can carry (`FY2023`...), in order."""
    review_route: bool = False
    oldest_pending: Callable[[], float | None] = lambda: None
    """When the oldest record waiting for its acknowledgement was decided (None: none)."""
    code_sets_end: dt.date | None = None
    """The last date the loaded ICD-10-CM code sets cover."""

    def health(self) -> tuple[bool, str]:
        return self.state.health(self.held_partitions(), time.time(), self.oldest_pending())

    def health_document(self) -> tuple[dict[str, object], int]:
        """The `/healthz` body and its HTTP status (200 healthy, 503 not)."""
        ok, reason = self.health()
        state = self.state
        body: dict[str, object] = {
            "status": "ok" if ok else "unhealthy",
            "reason": reason,
            "partitions": sorted(self.held_partitions()),
            "lag": {str(p): n for p, n in sorted(state.lag.items())},
            "decided": state.tally.records,
        }
        return body, 200 if ok else 503

    def snapshot(self) -> StatusSnapshot:
        ok, reason = self.health()
        state = self.state
        return StatusSnapshot(
            app_id=self.app_id,
            version=__version__,
            ruleset_version=self.ruleset_version,
            icd10cm=self.icd10cm,
            healthy=ok,
            health_reason=reason,
            partitions=sorted(self.held_partitions()),
            lag=dict(state.lag),
            lag_seconds=dict(state.lag_seconds),
            routes=dict(state.tally.routes),
            rate_per_s=state.rate(),
            top_rules=state.tally.top_errors(TOP_RULES),
            dead_letter_kinds=dict(state.tally.dead_letter_kinds),
            code_sets={label: state.tally.code_sets[label] for label in self.code_sets},
            started=state.started,
            last_decision=state.last_decision,
            review_route=self.review_route,
            code_sets_end=self.code_sets_end,
            nearest_code_set=state.tally.nearest_code_set,
        )


def install_pages(app: faust.App, context: PageContext) -> None:
    """Register the three pages on the app's web server."""

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> aiohttp_web.Response:
            return aiohttp_web.Response(
                body=generate_latest(context.registry),
                headers={"Content-Type": CONTENT_TYPE_LATEST},
            )

    @app.page("/status")
    class Status(View):
        async def get(self, request: Request) -> Response:
            return self.html(render_status(context.snapshot()))

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            body, status = context.health_document()
            return self.json(body, status=status)
