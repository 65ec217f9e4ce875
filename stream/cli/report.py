"""The what-if report: one self-contained HTML page for a payer's policy analyst.

No scripts, fonts, images or style sheets from anywhere: the charts are inline SVG, the
style is inline CSS, so the page can be mailed, archived and opened offline. It shows counts
and a few sample claims (IDs, routes and finding messages): never a patient detail.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from typing import Any

from stream import __version__
from stream.core.contracts import DecisionRoute, Severity
from stream.core.rules import RULES_BY_ID
from stream.core.rules.config import RuleState
from stream.core.whatif import PayerCounts, PolicyChange, WhatIfTally

ROUTE_ORDER: tuple[DecisionRoute, ...] = ("validated", "review", "rejected")
ROUTE_COLOURS: dict[str, str] = {
    "validated": "#1f8a4c",
    "review": "#2874a6",
    "rejected": "#d68910",
}
ADDED, REMOVED = "#c0392b", "#2874a6"
MINUS = "\u2212"


@dataclass(frozen=True)
class ReportContext:
    """What the page says about the run besides the counts."""

    input_label: str
    baseline_label: str
    proposed_label: str
    baseline_version: str
    proposed_version: str
    generated_at: str
    seconds: float
    policy_changes: list[PolicyChange]


e = html.escape

_STYLE = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{padding:18px 28px;background:#1d2330;color:#fff}
header h1{font-size:21px;margin:0 0 4px;font-weight:600}
header p{margin:2px 0;color:#c9cfdb;font-size:13px}
main{max-width:1180px;margin:0 auto;padding:18px 28px 40px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:0 0 18px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:14px;text-transform:uppercase;letter-spacing:.06em;color:#5b6475;margin:0 0 12px}
h3{font-size:15px;margin:16px 0 6px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:0 0 18px}
.card{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card b{display:block;font-size:28px;font-weight:600}
.card span{color:#5b6475;font-size:13px}
table{border-collapse:collapse;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid #eef0f3;text-align:left;vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b6475;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.matrix td.n{font-size:17px}
.matrix td.same{color:#5b6475;background:#f7f8fa}
.matrix td.moved{font-weight:600}
.muted{color:#5b6475;font-size:13px}
.route{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
.add{color:#a93226}.rem{color:#1f618d}.rev{color:#1d2330}
table.sample{table-layout:fixed}
#rules td:first-child,#payers td:first-child{white-space:nowrap}
.legend{margin:0 0 4px;font-size:13px;color:#5b6475}
.legend span{margin-right:14px;white-space:nowrap}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.chart{width:100%;height:auto;max-width:860px;display:block}
ul.findings{margin:0;padding-left:18px}
ul.findings li{margin:1px 0}
"""


def _route(route: str) -> str:
    colour = ROUTE_COLOURS.get(route, "#5b6475")
    return f'<span class=route style="background:{colour}">{e(route)}</span>'


def _title(rule_id: str) -> str:
    rule = RULES_BY_ID.get(rule_id)
    return rule.title.replace("`", "") if rule else ""


def _severities(counts: Counter[Severity]) -> str:
    return " · ".join(f"{n:,} {severity}" for severity, n in sorted(counts.items()) if n)


def _state(rule_id: str, state: RuleState) -> str:
    if not state.enabled:
        return "disabled"
    severity = state.severity or RULES_BY_ID[rule_id].severity_label
    return f"{severity}, {'to review' if state.review else 'routed by outcome'}"


# --- charts ----------------------------------------------------------------------------


def diverging_chart(
    chart_id: str, rows: list[tuple[str, str, int, int]], what: str = "findings"
) -> str:
    """Horizontal bars, removed to the left of the axis and added to the right.

    rows: (label, tooltip, removed, added).
    """
    label_width, half, row_height, top = 130, 300, 24, 30
    width, height = label_width + 2 * half + 20, top + row_height * len(rows) + 8
    centre = label_width + half
    biggest = max([1, *(max(removed, added) for _, _, removed, added in rows)])
    scale = (half - 56) / biggest
    parts = [
        f'<svg id="{chart_id}" class=chart viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{e(what)} removed and added">',
        f'<text x="{centre - 8}" y="16" text-anchor="end" font-size="12" fill="{REMOVED}">'
        f"\u2190 {e(what)} removed</text>",
        f'<text x="{centre + 8}" y="16" font-size="12" fill="{ADDED}">{e(what)} added \u2192</text>',
        f'<line x1="{centre}" y1="{top - 6}" x2="{centre}" y2="{height - 4}" stroke="#9aa3b2"/>',
    ]
    for index, (label, tooltip, removed, added) in enumerate(rows):
        y = top + index * row_height
        mid = y + row_height / 2 + 4
        parts.append(
            f"<g><title>{e(tooltip)}: {removed:,} removed, {added:,} added</title>"
            f'<text x="{label_width - 10}" y="{mid}" text-anchor="end" font-size="13" '
            f'fill="#1d2330">{e(label)}</text>'
        )
        if removed:
            w = max(removed * scale, 1.5)
            parts.append(
                f'<rect x="{centre - w:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_height - 8}" '
                f'rx="2" fill="{REMOVED}"/><text x="{centre - w - 6:.1f}" y="{mid}" '
                f'text-anchor="end" font-size="12" fill="#1d2330">{removed:,}</text>'
            )
        if added:
            w = max(added * scale, 1.5)
            parts.append(
                f'<rect x="{centre}" y="{y + 4}" width="{w:.1f}" height="{row_height - 8}" '
                f'rx="2" fill="{ADDED}"/><text x="{centre + w + 6:.1f}" y="{mid}" '
                f'font-size="12" fill="#1d2330">{added:,}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def stacked_chart(chart_id: str, rows: list[tuple[str, list[tuple[int, str, str]]]]) -> str:
    """Horizontal stacked bars, one a row: rows of (label, [(count, colour, name), ...])."""
    label_width, bar_width, row_height, top = 130, 560, 24, 6
    width, height = label_width + bar_width + 70, top + row_height * len(rows) + 6
    biggest = max([1, *(sum(count for count, _, _ in segments) for _, segments in rows)])
    scale = bar_width / biggest
    parts = [
        f'<svg id="{chart_id}" class=chart viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="claims changed per payer">'
    ]
    for index, (label, segments) in enumerate(rows):
        y = top + index * row_height
        mid = y + row_height / 2 + 4
        parts.append(
            f'<text x="{label_width - 10}" y="{mid}" text-anchor="end" font-size="13" '
            f'fill="#1d2330">{e(label)}</text>'
        )
        x = float(label_width)
        for count, colour, name in segments:
            if not count:
                continue
            w = max(count * scale, 1.5)
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_height - 8}" '
                f'fill="{colour}"><title>{e(label)}: {count:,} {e(name)}</title></rect>'
            )
            x += w
        total = sum(count for count, _, _ in segments)
        parts.append(
            f'<text x="{x + 6:.1f}" y="{mid}" font-size="12" fill="#1d2330">{total:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _legend(items: list[tuple[str, str]]) -> str:
    spans = "".join(
        f'<span><i style="background:{colour}"></i>{e(name)}</span>' for colour, name in items
    )
    return f"<p class=legend>{spans}</p>"


def route_bar(transitions: Counter[tuple[DecisionRoute, DecisionRoute]], side: int) -> str:
    """One stacked bar of the claims per route, before (side 0) or after (side 1)."""
    totals: Counter[str] = Counter()
    for pair, count in transitions.items():
        totals[pair[side]] += count
    whole = sum(totals.values()) or 1
    x = 0.0
    rects = []
    for route in ROUTE_ORDER:
        share = totals[route] / whole * 100
        if share:
            rects.append(
                f'<rect x="{x:.3f}%" y="0" width="{share:.3f}%" height="18" '
                f'fill="{ROUTE_COLOURS[route]}"><title>{route}: {totals[route]:,} '
                f"({share:.1f} %)</title></rect>"
            )
        x += share
    label = "before" if side == 0 else "after"
    return (
        f'<div class=muted>{label}</div><svg id="routes-{label}" class=chart width="100%" '
        f'height="18" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="claims per route {label}">{"".join(rects)}</svg>'
    )


# --- sections ------------------------------------------------------------------------------


def _cards(tally: WhatIfTally) -> str:
    findings_only = tally.changed - tally.route_changes
    cards = [
        ("claims", tally.claims, "claims judged by both policies"),
        ("changed", tally.changed, "claims whose route or findings change"),
        ("route-changes", tally.route_changes, "claims that change route"),
        ("findings-only", findings_only, "claims whose findings change, not their route"),
        ("added", sum(tally.added.values()), "findings added"),
        ("removed", sum(tally.removed.values()), "findings removed"),
        ("dead-letters", tally.dead_letters, "records that are no claim (dead letters)"),
    ]
    return "".join(
        f'<div class=card><b id="{key}">{count:,}</b><span>{e(label)}</span></div>'
        for key, count, label in cards
    )


def _policy_table(changes: list[PolicyChange]) -> str:
    if not changes:
        return "<p class=muted>The two configurations run every rule the same way.</p>"
    rows = "".join(
        f"<tr><td>{e(c.scope)}</td><td><b>{e(c.rule_id)}</b> "
        f"<span class=muted>{e(_title(c.rule_id))}</span></td>"
        f"<td>{e(_state(c.rule_id, c.before))}</td><td>{e(_state(c.rule_id, c.after))}</td></tr>"
        for c in changes
    )
    return (
        '<table id="policy"><tr><th>applies to</th><th>rule</th><th>baseline</th>'
        f"<th>proposed</th></tr>{rows}</table>"
    )


def _matrix(tally: WhatIfTally) -> str:
    head = "".join(f"<th class=n>{_route(r)}</th>" for r in ROUTE_ORDER)
    rows = []
    for before in ROUTE_ORDER:
        cells = []
        for after in ROUTE_ORDER:
            count = tally.transitions[(before, after)]
            css = "same" if before == after else ("moved" if count else "")
            cells.append(f"<td class='n {css}'>{count:,}</td>")
        total = sum(tally.transitions[(before, after)] for after in ROUTE_ORDER)
        rows.append(f"<tr><th>{_route(before)}</th>{''.join(cells)}<td class=n>{total:,}</td></tr>")
    totals = "".join(
        f"<td class=n>{sum(tally.transitions[(b, after)] for b in ROUTE_ORDER):,}</td>"
        for after in ROUTE_ORDER
    )
    return (
        '<table id="transitions" class=matrix><tr><th>baseline \u2193 / proposed \u2192</th>'
        f"{head}<th class=n>total</th></tr>{''.join(rows)}"
        f"<tr><th>total</th>{totals}<td class=n>{tally.claims:,}</td></tr></table>"
    )


def _rules(tally: WhatIfTally) -> str:
    changes = tally.rule_changes()
    if not changes:
        return "<p class=muted>No finding is added or removed.</p>"
    chart = diverging_chart(
        "rules-chart",
        [
            (rule_id, f"{rule_id} {_title(rule_id)}", sum(removed.values()), sum(added.values()))
            for rule_id, (added, removed) in changes.items()
        ],
    )
    rows = "".join(
        f"<tr><td><b>{e(rule_id)}</b></td><td>{e(_title(rule_id))}</td>"
        f"<td class='n add'>{sum(added.values()):,}</td><td class='n rem'>"
        f"{sum(removed.values()):,}</td><td class=muted>{e(_severities(added))}"
        f"{' added' if added else ''}{'; ' if added and removed else ''}"
        f"{e(_severities(removed))}{' removed' if removed else ''}</td></tr>"
        for rule_id, (added, removed) in changes.items()
    )
    return (
        f'{chart}<table id="rules"><tr><th>rule</th><th>title</th><th class=n>added</th>'
        f"<th class=n>removed</th><th>by severity</th></tr>{rows}</table>"
    )


FINDINGS_ONLY = "#aab2bf"


def _payer_charts(changed: list[tuple[str, PayerCounts]]) -> str:
    moves = stacked_chart(
        "payers-routes-chart",
        [
            (
                payer,
                [
                    *(
                        (c.moved_to[route], ROUTE_COLOURS[route], f"change route to {route}")
                        for route in ROUTE_ORDER
                    ),
                    (c.changed - c.route_changed, FINDINGS_ONLY, "change findings only"),
                ],
            )
            for payer, c in changed
        ],
    )
    legend = _legend(
        [(ROUTE_COLOURS[route], f"to {route}") for route in ROUTE_ORDER]
        + [(FINDINGS_ONLY, "findings only")]
    )
    findings = [(payer, payer, c.removed, c.added) for payer, c in changed if c.added or c.removed]
    chart = (
        diverging_chart("payers-chart", findings)
        if findings
        else "<p class=muted>No finding is added or removed.</p>"
    )
    return f"<h3>Claims that change</h3>{legend}{moves}<h3>Findings added and removed</h3>{chart}"


def _payers(tally: WhatIfTally) -> str:
    payers = sorted(tally.payers.items(), key=lambda item: (-item[1].changed, item[0]))
    changed = [(payer, counts) for payer, counts in payers if counts.changed]
    charts = _payer_charts(changed) if changed else "<p class=muted>No payer's claims change.</p>"
    rows = "".join(
        f"<tr><td><b>{e(payer)}</b></td><td class=n>{c.claims:,}</td><td class=n>{c.changed:,}"
        f"</td><td class=n>{c.route_changed:,}</td><td class='n add'>{c.added:,}</td>"
        f"<td class='n rem'>{c.removed:,}</td></tr>"
        for payer, c in payers
    )
    return (
        f'{charts}<table id="payers"><tr><th>payer</th><th class=n>claims</th>'
        "<th class=n>changed</th><th class=n>route changes</th><th class=n>findings added</th>"
        f"<th class=n>findings removed</th></tr>{rows}</table>"
    )


def _findings_list(findings: list[dict[str, str]], css: str, sign: str) -> str:
    return "".join(
        f"<li class={css}>{sign} <b>{e(f['rule_id'])}</b> {e(f['severity'])}: "
        f"{e(f['message'])}</li>"
        for f in findings
    )


def _sample_heading(kind: str) -> str:
    what, _, detail = kind.partition(":")
    if what == "route":
        before, _, after = detail.partition(">")
        return f"{_route(before)} \u2192 {_route(after)}"
    verb = "added" if what == "added" else "removed"
    return f"{e(detail)} {verb} <span class=muted>{e(_title(detail))}</span>"


def _sample_order(kind: str) -> tuple[int, str]:
    return ({"route": 0, "added": 1, "removed": 2}.get(kind.partition(":")[0], 3), kind)


def _samples(samples: dict[str, list[dict[str, Any]]]) -> str:
    if not samples:
        return "<p class=muted>No claim changes.</p>"
    blocks = []
    for kind in sorted(samples, key=_sample_order):
        rows = "".join(
            f"<tr><td><b>{e(s['claim_id'])}</b><div class=muted>{e(s['where'])}</div></td>"
            f"<td>{e(s['payer'])}</td><td>{_route(s['route_before'])} \u2192 "
            f"{_route(s['route_after'])}</td><td><ul class=findings>"
            f"{_findings_list(s['added'], 'add', '+')}{_findings_list(s['removed'], 'rem', MINUS)}"
            f"{_findings_list(s['review'], 'rev', 'to review:')}</ul></td></tr>"
            for s in samples[kind]
        )
        blocks.append(
            f'<h3>{_sample_heading(kind)}</h3><table class=sample data-change="{e(kind)}">'
            '<colgroup><col style="width:24%"><col style="width:13%"><col style="width:17%">'
            "<col></colgroup>"
            "<tr><th>claim</th><th>payer</th><th>route</th><th>findings</th></tr>"
            f"{rows}</table>"
        )
    return "".join(blocks)


def render_report(tally: WhatIfTally, context: ReportContext) -> str:
    c = context
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>What-if: {e(c.proposed_label)} against {e(c.baseline_label)}</title>
<style>{_STYLE}</style></head>
<body>
<header><h1>What-if: {e(c.proposed_label)} against {e(c.baseline_label)}</h1>
<p>{e(c.input_label)}: {tally.records:,} records, judged by both policies in {c.seconds:.2f} s</p>
<p>ruleset {e(c.baseline_version)} &rarr; {e(c.proposed_version)} &middot; claims-stage
{e(__version__)} &middot; {e(c.generated_at)}</p></header>
<main>
<div class=cards id="summary">{_cards(tally)}</div>
<section><h2>What the proposed policy changes</h2>{_policy_table(c.policy_changes)}</section>
<section><h2>Routes: where each claim goes, before and after</h2>
{route_bar(tally.transitions, 0)}{route_bar(tally.transitions, 1)}
<p class=muted>Rows: the route under the baseline; columns: under the proposed policy.
Off the diagonal: claims that change route.</p>{_matrix(tally)}</section>
<section><h2>Findings added and removed per rule</h2>{_rules(tally)}</section>
<section><h2>Claims changed per payer</h2>{_payers(tally)}</section>
<section id="samples"><h2>Sample claims for each change</h2>
<p class=muted>Up to five claims for each route change and each rule whose findings change,
the first in the input; every change is in changes.jsonl.</p>{_samples(tally.samples)}</section>
</main></body></html>
"""
