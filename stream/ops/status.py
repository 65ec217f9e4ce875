"""The worker's status page: one screen a person reads at a glance.

Rendered by the worker itself (`/status`), with no external assets, refreshing itself
every few seconds. It shows counts and versions only: never a claim or a patient.
"""

from __future__ import annotations

import datetime as dt
import html
import time
from dataclasses import dataclass, field

from stream.core.codes.calendar import END_SOON_DAYS
from stream.core.contracts import DeadLetterKind, Route
from stream.core.rules import RULES_BY_ID

REFRESH_SECONDS = 5


@dataclass(frozen=True)
class StatusSnapshot:
    app_id: str
    version: str
    ruleset_version: str
    icd10cm: str
    healthy: bool
    health_reason: str
    partitions: list[int]
    lag: dict[int, int]
    lag_seconds: dict[int, float]
    routes: dict[Route, int]
    rate_per_s: float
    top_rules: list[tuple[str, int]]
    """Rules by their count of error findings, most frequent first."""
    dead_letter_kinds: dict[DeadLetterKind, int]
    code_sets: dict[str, int]
    """Decisions by the ICD-10-CM fiscal year that judged them, in the stage's order."""
    started: float
    last_decision: float | None
    review_route: bool = False
    """Whether the worker's policies send claims to review: the route is shown then."""
    code_sets_end: dt.date | None = None
    """The last date the loaded ICD-10-CM code sets cover."""
    nearest_code_set: int = 0
    """Decisions judged by the nearest code set (no loaded set covers their date)."""
    now: float = field(default_factory=time.time)

    def code_sets_line(self) -> str:
        """`covered through 2027-09-30 (299 days left)`, and the nearest-set decisions."""
        if self.code_sets_end is None:
            return ""
        today = dt.datetime.fromtimestamp(self.now, dt.UTC).date()
        left = (self.code_sets_end - today).days
        when = f"{left:,} days left" if left >= 0 else f"ended {-left:,} days ago"
        line = f"covered through {self.code_sets_end} ({when})"
        if left < END_SOON_DAYS:
            line += ": load the next release (claims-stage codes load)"
        if self.nearest_code_set:
            line += f"; {self.nearest_code_set:,} judged by the nearest set (MET-042)"
        return line

    def shown_routes(self) -> dict[Route, str]:
        """The routes the page lists: review only where the policies use it (or it was used)."""
        return {
            route: label
            for route, label in ROUTE_LABELS.items()
            if route != "review" or self.review_route or self.routes.get("review")
        }


_STYLE = """
body{font:15px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{display:flex;justify-content:space-between;align-items:center;padding:14px 24px;background:#1d2330;color:#fff}
header h1{font-size:19px;margin:0;font-weight:600}
.health{padding:4px 12px;border-radius:14px;font-weight:600}
.ok{background:#1f8a4c}.bad{background:#c0392b}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:16px;padding:20px 24px}
section{background:#fff;border-radius:8px;padding:14px 18px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:#5b6475;margin:0 0 10px}
.big{font-size:34px;font-weight:600}.muted{color:#5b6475;font-size:13px}
table{width:100%;border-collapse:collapse}td{padding:3px 0;border-bottom:1px solid #eef0f3}
td.n{text-align:right;font-variant-numeric:tabular-nums;padding-left:12px}
td.rule{max-width:0;width:100%;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
td.rule span{color:#5b6475;font-size:13px}
.bar{height:10px;border-radius:5px;display:flex;overflow:hidden;margin:8px 0;background:#eef0f3}
.v{background:#1f8a4c}.w{background:#2874a6}.r{background:#d68910}.d{background:#c0392b}
"""


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _title(rule_id: str) -> str:
    rule = RULES_BY_ID.get(rule_id)
    return rule.title.replace("`", "") if rule else ""


def render_status(snapshot: StatusSnapshot) -> str:
    s = snapshot
    e = html.escape
    total = sum(s.routes.values())
    routes = s.shown_routes()
    shares = {k: (s.routes.get(k, 0) / total * 100 if total else 0.0) for k in routes}
    waiting = sum(s.lag.values())
    last = (
        f"last decision {_age(s.now - s.last_decision)} ago"
        if s.last_decision
        else "no record decided yet"
    )
    outcome_rows = "".join(
        f"<tr><td>{e(label)}</td><td class=n>{s.routes.get(key, 0):,}</td>"
        f"<td class=n>{shares[key]:.1f} %</td></tr>"
        for key, label in routes.items()
    )
    bar = "".join(
        f'<div class={ROUTE_CLASSES[key]} style="width:{shares[key]:.2f}%"></div>' for key in routes
    )
    rule_rows = (
        "".join(
            f'<tr><td class=rule title="{e(_title(rule_id))}"><b>{e(rule_id)}</b> '
            f"error <span>{e(_title(rule_id))}</span></td>"
            f"<td class=n>{count:,}</td></tr>"
            for rule_id, count in s.top_rules
        )
        or "<tr><td class=muted>no findings yet</td></tr>"
    )
    kind_rows = (
        "".join(
            f"<tr><td>{e(kind)}</td><td class=n>{count:,}</td></tr>"
            for kind, count in sorted(s.dead_letter_kinds.items(), key=lambda kv: -kv[1])
            if count
        )
        or "<tr><td class=muted>none</td></tr>"
    )
    code_set_rows = (
        "".join(
            f"<tr><td>{e(label)}</td><td class=n>{count:,}</td></tr>"
            for label, count in s.code_sets.items()
        )
        or "<tr><td class=muted>no code sets</td></tr>"
    )
    lag_rows = (
        "".join(
            f"<tr><td>partition {p}</td><td class=n>{s.lag.get(p, 0):,} waiting</td>"
            f"<td class=n>{s.lag_seconds.get(p, 0.0):.1f} s behind</td></tr>"
            for p in s.partitions
        )
        or "<tr><td class=muted>no partitions assigned</td></tr>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>claims-stage {e(s.app_id)}: {"healthy" if s.healthy else "UNHEALTHY"}</title>
<style>{_STYLE}</style></head>
<body>
<header><h1>claims-stage &middot; {e(s.app_id)}</h1>
<span class="health {"ok" if s.healthy else "bad"}" id="health">{"healthy" if s.healthy else "unhealthy"}</span></header>
<main>
<section><h2>Throughput</h2>
<div class=big id="rate">{s.rate_per_s:,.0f}/s</div>
<div class=muted>{total:,} records since start {_age(s.now - s.started)} ago; {e(last)}</div>
<div class=muted>{e(s.health_reason)}</div></section>
<section><h2>Outcomes</h2>
<div class=bar>{bar}</div>
<table id="outcomes">{outcome_rows}</table></section>
<section><h2>Top failing rules</h2><table id="rules">{rule_rows}</table></section>
<section><h2>Dead letters by kind</h2><table id="dead-letters">{kind_rows}</table></section>
<section><h2>Decisions by ICD-10-CM year</h2><table id="code-sets">{code_set_rows}</table>
<div class=muted id="code-sets-coverage">{e(s.code_sets_line())}</div></section>
<section><h2>Lag per partition &middot; {waiting:,} waiting</h2><table id="lag">{lag_rows}</table></section>
<section><h2>Versions</h2><table id="versions">
<tr><td>claims-stage</td><td class=n>{e(s.version)}</td></tr>
<tr><td>ruleset</td><td class=n>{e(s.ruleset_version)}</td></tr>
<tr><td>ICD-10-CM</td><td class=n>{e(s.icd10cm)}</td></tr></table></section>
</main></body></html>
"""


ROUTE_LABELS: dict[Route, str] = {
    "validated": "validated",
    "review": "review",
    "rejected": "rejected",
    "dead_letter": "dead letters",
}
ROUTE_CLASSES: dict[Route, str] = {
    "validated": "v",
    "review": "w",
    "rejected": "r",
    "dead_letter": "d",
}
