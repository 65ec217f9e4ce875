"""What the stage gives its transport besides Faust's settings.

Faust builds a transport from the broker URL alone; the librdkafka transport needs the
stage's `Settings` (security, batch size, memory bounds), where to report a refusal of the
cluster (the worker's fatal stop), and how many records the agent still has in flight for
some partitions (what a revocation waits for). `attach` gives them to an app.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError
from faust.types import TP

from stream.settings import Settings


@dataclass
class StageHooks:
    settings: Settings
    on_error: Callable[[KafkaError], None] | None = None
    """librdkafka's `error_cb` of the input consumer (the worker's fatal stop)."""
    pending: Callable[[Iterable[TP]], int] | None = None
    """Records of these partitions handed to the agent and not yet acknowledged."""
    before_start: Callable[[], Awaitable[None]] | None = None
    """Exactly-once: run before the consumer joins the group (`init_transactions`, which
    aborts what an earlier worker under the same transactional id left open: until then,
    its offsets pending in that transaction keep the partitions' committed offsets
    unreadable)."""


_HOOKS: weakref.WeakKeyDictionary[Any, StageHooks] = weakref.WeakKeyDictionary()


def attach(app: Any, hooks: StageHooks) -> StageHooks:
    _HOOKS[app] = hooks
    return hooks


def hooks_of(app: Any) -> StageHooks:
    hooks = _HOOKS.get(app)
    if hooks is None:
        raise RuntimeError(
            "the librdkafka transport needs the stage's settings: "
            "build the app with stream.worker.app.faust_app"
        )
    return hooks
