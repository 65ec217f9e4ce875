"""Generate the claims-stage Grafana dashboard from code.

    python deploy/grafana/generate_dashboard.py           # writes deploy/grafana/claims-stage.json
    python deploy/grafana/generate_dashboard.py --check   # exit 1 if the file is not up to date

The dashboard reads the metrics the workers export on their web port (/metrics, job
"claims-stage") through a ``datasource`` template variable (any Prometheus data source) and
filters them with the ``job`` and ``instance`` variables. Every panel is declared once in
``PANELS`` below; ``panel_queries()`` lists their PromQL so that a test can run each query
against a real Prometheus (``expand_variables()`` fills in the template variables).

Standard library only: the generator runs wherever Python does.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("claims-stage.json")

#: Every panel and every target reads through this template variable.
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}

#: Label matchers shared by every query: the job and instance template variables.
SELECTOR = 'job="$job", instance=~"$instance"'

#: Prefix of Faust's own transport metrics (faust.sensors.prometheus): the worker passes
#: ``name_prefix="faust"`` so that the names do not depend on the app id.
FAUST_PREFIX = "faust"

#: SLO: 99.9 % of records decided, so the dead-letter error budget is 0.1 % of records.
DEAD_LETTER_BUDGET = 0.001

#: Objective on claims_end_to_end_seconds: 99 % of records within this many seconds.
END_TO_END_OBJECTIVE_SECONDS = 0.5

#: Both counters whose sum is the number of records processed.
RECORDS = '{__name__=~"claims_decisions_total|claims_dead_letters_total", ' + SELECTOR + "}"

GRID_COLUMNS = 24


@dataclass(frozen=True)
class Query:
    """One Prometheus target of a panel."""

    expr: str
    legend: str
    instant: bool = False
    table: bool = False


@dataclass(frozen=True)
class Threshold:
    """A colour step: from ``value`` upwards (None: from minus infinity)."""

    color: str
    value: float | None


@dataclass(frozen=True)
class Panel:
    """One panel at grid position (x, y) with width w and height h, in 24 columns."""

    title: str
    kind: str  # "timeseries", "stat", "table" or "bargauge"
    unit: str
    description: str
    queries: tuple[Query, ...]
    x: int
    y: int
    w: int
    h: int
    thresholds: tuple[Threshold, ...] = (Threshold("green", None),)
    show_thresholds: bool = False
    up_down_mapping: bool = False


def _quantiles(metric: str) -> tuple[Query, ...]:
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{SELECTOR}}}[5m])))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    )


def _dead_letter_burn_rate(window: str) -> Query:
    ratio = (
        f"sum(rate(claims_dead_letters_total{{{SELECTOR}}}[{window}]))"
        f" / sum(rate({RECORDS}[{window}]))"
    )
    return Query(f"({ratio}) / {DEAD_LETTER_BUDGET}", f"over {window}")


def _rejection_ratio(offset: str) -> str:
    shift = f" offset {offset}" if offset else ""
    return (
        f'sum(rate(claims_decisions_total{{{SELECTOR}, outcome="rejected"}}[1h]{shift}))'
        f" / sum(rate(claims_decisions_total{{{SELECTOR}}}[1h]{shift}))"
    )


def _review_ratio(offset: str) -> str:
    shift = f" offset {offset}" if offset else ""
    return (
        f"sum(rate(claims_reviews_total{{{SELECTOR}}}[1h]{shift}))"
        f" / sum(rate(claims_decisions_total{{{SELECTOR}}}[1h]{shift}))"
    )


PANELS: tuple[Panel, ...] = (
    # --- fleet --------------------------------------------------------------------------
    Panel(
        title="Workers up",
        kind="stat",
        unit="none",
        description="Whether Prometheus could scrape each worker (up = 1). "
        "Alerts: ClaimsStageWorkerDown, ClaimsStageAbsent.",
        queries=(Query(f"up{{{SELECTOR}}}", "{{instance}}"),),
        x=0,
        y=0,
        w=6,
        h=5,
        thresholds=(Threshold("red", None), Threshold("green", 1)),
        up_down_mapping=True,
    ),
    Panel(
        title="Seconds since last decision or dead letter",
        kind="stat",
        unit="s",
        description="Time since each worker last decided a record or dead-lettered one. "
        "High while its partitions have lag: the worker is stalled (ClaimsStageStalled).",
        queries=(
            Query(
                # > 0: a worker that has decided nothing yet shows no value, not 56 years.
                "time() - max by (instance) "
                f"(claims_last_decision_timestamp_seconds{{{SELECTOR}}} > 0)",
                "{{instance}}",
            ),
        ),
        x=6,
        y=0,
        w=6,
        h=5,
        thresholds=(Threshold("green", None), Threshold("orange", 300), Threshold("red", 900)),
    ),
    Panel(
        title="Versions per worker",
        kind="table",
        unit="none",
        description="Release, ruleset and ICD-10-CM code set of each worker "
        "(claims_stage_info). More than one value in a column: ClaimsStageVersionSkew.",
        queries=(
            Query(
                "max by (instance, version, ruleset_version, icd10cm) "
                f"(claims_stage_info{{{SELECTOR}}})",
                "{{instance}} {{version}} {{ruleset_version}} {{icd10cm}}",
                instant=True,
                table=True,
            ),
        ),
        x=12,
        y=0,
        w=12,
        h=5,
    ),
    # --- decisions ----------------------------------------------------------------------
    Panel(
        title="Decisions per second by outcome",
        kind="timeseries",
        unit="ops",
        description="Claims decided per second, validated or rejected (5m rate); 'to review': "
        'the validated claims a rule configured with route = "review" sent to the review '
        "topic instead of the validated one.",
        queries=(
            Query(
                f"sum by (outcome) (rate(claims_decisions_total{{{SELECTOR}}}[5m]))",
                "{{outcome}}",
            ),
            Query(f"sum(rate(claims_reviews_total{{{SELECTOR}}}[5m]))", "to review"),
        ),
        x=0,
        y=5,
        w=8,
        h=8,
    ),
    Panel(
        title="Rejection ratio (1h), now and a day earlier",
        kind="timeseries",
        unit="percentunit",
        description="Share of decisions that are rejections over the last hour, against the "
        "same hour a day earlier. More than twice yesterday's and above 5 %: "
        "ClaimsStageRejectionRateAnomaly.",
        queries=(
            Query(_rejection_ratio(""), "now"),
            Query(_rejection_ratio("1d"), "a day earlier"),
        ),
        x=8,
        y=5,
        w=8,
        h=8,
    ),
    Panel(
        title="Review ratio (1h), now and a day earlier",
        kind="timeseries",
        unit="percentunit",
        description="Share of decisions sent to the review topic, for a coder, over the last "
        "hour, against the same hour a day earlier. More than twice yesterday's and above 5 %: "
        "ClaimsStageReviewRateAnomaly. Flat at 0 when no policy routes a rule to review.",
        queries=(
            Query(_review_ratio(""), "now"),
            Query(_review_ratio("1d"), "a day earlier"),
        ),
        x=16,
        y=5,
        w=8,
        h=8,
    ),
    Panel(
        title="Top failing rules (error findings per second, 1h)",
        kind="bargauge",
        unit="ops",
        description="The ten rules with the most error-severity findings over the last hour.",
        queries=(
            Query(
                "topk(10, sum by (rule_id) "
                f'(rate(claims_findings_total{{{SELECTOR}, severity="error"}}[1h])))',
                "{{rule_id}}",
                instant=True,
            ),
        ),
        x=0,
        y=13,
        w=8,
        h=8,
    ),
    Panel(
        title="Dead letters per second by kind",
        kind="timeseries",
        unit="ops",
        description="Records sent to the dead-letter topic, by reason (5m rate). internal_error "
        "is a bug in the stage; the other kinds are malformed input.",
        queries=(
            Query(
                f"sum by (kind) (rate(claims_dead_letters_total{{{SELECTOR}}}[5m]))",
                "{{kind}}",
            ),
        ),
        x=8,
        y=13,
        w=8,
        h=8,
    ),
    Panel(
        title="Dead-letter error budget burn rate",
        kind="timeseries",
        unit="suffix:x",
        description="Dead-letter ratio divided by the 0.1 % budget of the SLO '99.9 % of "
        "records decided'. 1 spends the budget in exactly 30 days. Pages at 14.4 (1h and 5m) "
        "and 6 (6h and 30m): ClaimsStageDeadLetterBudgetBurnFast.",
        queries=tuple(_dead_letter_burn_rate(window) for window in ("5m", "1h", "6h")),
        x=16,
        y=13,
        w=8,
        h=8,
        thresholds=(Threshold("green", None), Threshold("orange", 6), Threshold("red", 14.4)),
        show_thresholds=True,
    ),
    # --- lag ----------------------------------------------------------------------------
    Panel(
        title="Consumer lag by partition",
        kind="timeseries",
        unit="short",
        description="Messages of the input topic not yet committed (end offset minus "
        "committed offset), per partition.",
        queries=(
            Query(
                f"max by (partition) (claims_consumer_lag{{{SELECTOR}}})",
                "partition {{partition}}",
            ),
        ),
        x=0,
        y=21,
        w=8,
        h=8,
    ),
    Panel(
        title="Consumer lag trend (messages per second, 15m)",
        kind="timeseries",
        unit="ops",
        description="Slope of the lag over 15 minutes: above 0, the workers fall behind "
        "(ClaimsStageLagGrowing).",
        queries=(
            Query(
                f"sum(max by (partition) (deriv(claims_consumer_lag{{{SELECTOR}}}[15m])))",
                "all partitions",
            ),
            Query(
                f"max by (partition) (deriv(claims_consumer_lag{{{SELECTOR}}}[15m]))",
                "partition {{partition}}",
            ),
        ),
        x=8,
        y=21,
        w=8,
        h=8,
        thresholds=(Threshold("green", None), Threshold("red", 0)),
        show_thresholds=True,
    ),
    Panel(
        title="Consumer lag in seconds by partition",
        kind="timeseries",
        unit="s",
        description="How far behind in time each partition is.",
        queries=(
            Query(
                f"max by (partition) (claims_consumer_lag_seconds{{{SELECTOR}}})",
                "partition {{partition}}",
            ),
        ),
        x=16,
        y=21,
        w=8,
        h=8,
    ),
    # --- latency ------------------------------------------------------------------------
    Panel(
        title="Decision latency",
        kind="timeseries",
        unit="s",
        description="Time spent in the decision function, quantiles over 5m.",
        queries=_quantiles("claims_decision_seconds"),
        x=0,
        y=29,
        w=12,
        h=8,
    ),
    Panel(
        title="End-to-end latency",
        kind="timeseries",
        unit="s",
        description="From the input record's Kafka timestamp to the broker's acknowledgement "
        f"of the output, quantiles over 5m. Objective: p99 under {END_TO_END_OBJECTIVE_SECONDS} s "
        "(ClaimsStageEndToEndLatencyHigh).",
        queries=_quantiles("claims_end_to_end_seconds"),
        x=12,
        y=29,
        w=12,
        h=8,
        thresholds=(Threshold("green", None), Threshold("red", END_TO_END_OBJECTIVE_SECONDS)),
        show_thresholds=True,
    ),
    # --- Kafka transport (Faust's own sensors) ------------------------------------------
    Panel(
        title="Kafka messages per second",
        kind="timeseries",
        unit="ops",
        description="Messages the workers received (Faust's sensor), outputs the broker "
        "acknowledged, and output deliveries the broker refused (each is sent again).",
        queries=(
            Query(
                f"sum(rate({FAUST_PREFIX}_messages_received_total{{{SELECTOR}}}[5m]))",
                "received",
            ),
            Query(f"sum(rate({RECORDS}[5m]))", "sent"),
            Query(
                f"sum(rate(claims_output_send_errors_total{{{SELECTOR}}}[5m]))",
                "send errors",
            ),
        ),
        x=0,
        y=37,
        w=12,
        h=8,
    ),
    Panel(
        title="Consumer group rebalances in progress (Faust)",
        kind="timeseries",
        unit="short",
        description="Rebalances a worker is in (assignment, then recovery). Lag and stalls "
        "during a rebalance are expected.",
        queries=(
            Query(
                f"max by (instance) ({FAUST_PREFIX}_total_rebalances{{{SELECTOR}}})",
                "{{instance}} rebalancing",
            ),
            Query(
                f"max by (instance) ({FAUST_PREFIX}_total_rebalances_recovering{{{SELECTOR}}})",
                "{{instance}} recovering",
            ),
        ),
        x=12,
        y=37,
        w=12,
        h=8,
    ),
    # --- code sets ----------------------------------------------------------------------
    Panel(
        title="Decisions per second by ICD-10-CM code-set year",
        kind="timeseries",
        unit="ops",
        description="Claims decided per second, by the fiscal year whose code set judged them "
        "(5m rate): the claim's discharge date (inpatient) or date of service chooses it. "
        "Around October 1 two years run side by side. A claim dated where no loaded code set "
        "is in force counts under the nearest set's year (and in the panel on the right).",
        queries=(
            Query(
                f"sum by (fiscal_year) (rate(claims_code_set_decisions_total{{{SELECTOR}}}[5m]))",
                "{{fiscal_year}}",
            ),
        ),
        x=0,
        y=45,
        w=12,
        h=8,
    ),
    Panel(
        title="Days of ICD-10-CM code sets left",
        kind="stat",
        unit="d",
        description="Days until the last date the loaded ICD-10-CM code sets cover (the end of "
        "the latest set's fiscal year), per worker. Load the next CMS release before it "
        "reaches 0 (docs/code-sets.md); ClaimsStageCodeSetsEndSoon fires under 45.",
        queries=(
            Query(
                "max by (instance) "
                f"(claims_code_sets_last_date_timestamp_seconds{{{SELECTOR}}} - time()) / 86400",
                "{{instance}}",
            ),
        ),
        x=12,
        y=45,
        w=6,
        h=8,
        thresholds=(Threshold("red", None), Threshold("orange", 0), Threshold("green", 45)),
    ),
    Panel(
        title="Claims judged by a nearest code set (MET-042)",
        kind="timeseries",
        unit="ops",
        description="Claims per second (5m rate) dated where no loaded ICD-10-CM code set is "
        "in force, judged by the nearest one with a MET-042 warning: a release is missing "
        "(ClaimsStageCodeSetMissing).",
        queries=(
            Query(
                "sum by (instance) "
                f"(rate(claims_nearest_code_set_decisions_total{{{SELECTOR}}}[5m]))",
                "{{instance}}",
            ),
        ),
        x=18,
        y=45,
        w=6,
        h=8,
    ),
    # --- exactly-once -------------------------------------------------------------------
    Panel(
        title="Transactions (exactly-once)",
        kind="timeseries",
        unit="ops",
        description="With CLAIMS_PROCESSING_GUARANTEE=exactly_once: transactions committed "
        "per second, and aborted per second by reason (an aborted batch is decided again; "
        "ClaimsStageTransactionAborts). Empty in at_least_once mode.",
        queries=(
            Query(
                f'sum(rate(claims_transactions_total{{{SELECTOR}, outcome="committed"}}[5m]))',
                "committed",
            ),
            Query(
                f"sum by (reason) (rate(claims_transaction_aborts_total{{{SELECTOR}}}[5m]))",
                "aborted: {{reason}}",
            ),
        ),
        x=0,
        y=53,
        w=12,
        h=8,
    ),
    Panel(
        title="Transaction duration (exactly-once)",
        kind="timeseries",
        unit="s",
        description="From a transaction's begin to its commit: deciding a fetched batch, "
        "producing its outputs, sending its offsets and committing, quantiles over 5m. It "
        "is the latency exactly-once adds: read_committed readers see a batch's outputs "
        "when it commits.",
        queries=_quantiles("claims_transaction_seconds"),
        x=12,
        y=53,
        w=12,
        h=8,
    ),
)


def _ref_id(index: int) -> str:
    return chr(ord("A") + index)


def _target(index: int, query: Query) -> dict[str, Any]:
    target: dict[str, Any] = {
        "refId": _ref_id(index),
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "expr": query.expr,
        "legendFormat": query.legend,
        "range": not query.instant,
        "instant": query.instant,
    }
    if query.table:
        target["format"] = "table"
    return target


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "color": {"mode": "thresholds" if panel.kind != "timeseries" else "palette-classic"},
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": t.color, "value": t.value} for t in panel.thresholds],
        },
        "mappings": [],
    }
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if panel.show_thresholds else "off"},
        }
    if panel.up_down_mapping:
        defaults["mappings"] = [
            {
                "type": "value",
                "options": {
                    "0": {"text": "DOWN", "color": "red", "index": 0},
                    "1": {"text": "UP", "color": "green", "index": 1},
                },
            }
        ]
    return {"defaults": defaults, "overrides": []}


def _options(panel: Panel) -> dict[str, Any]:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.kind == "timeseries":
        return {
            "legend": {
                "showLegend": True,
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if panel.kind == "stat":
        return {
            "reduceOptions": reduce,
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name",
        }
    if panel.kind == "bargauge":
        return {
            "reduceOptions": reduce,
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
        }
    if panel.kind == "table":
        return {"showHeader": True, "cellHeight": "sm"}
    raise ValueError(f"unknown panel kind {panel.kind!r}")


def _panel(panel_id: int, panel: Panel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(DATASOURCE),
        "gridPos": {"x": panel.x, "y": panel.y, "w": panel.w, "h": panel.h},
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
        "targets": [_target(i, q) for i, q in enumerate(panel.queries)],
    }
    if panel.kind == "table":
        out["transformations"] = [
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, "Value": True},
                    "indexByName": {
                        "instance": 0,
                        "version": 1,
                        "ruleset_version": 2,
                        "icd10cm": 3,
                    },
                    "renameByName": {},
                },
            }
        ]
    return out


def _templating() -> dict[str, Any]:
    return {
        "list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "includeAll": False,
                "multi": False,
                "options": [],
                "refresh": 1,
                "regex": "",
            },
            {
                "name": "job",
                "label": "Job",
                "type": "query",
                "datasource": dict(DATASOURCE),
                "definition": "label_values(claims_stage_info, job)",
                "query": "label_values(claims_stage_info, job)",
                "current": {"selected": True, "text": "claims-stage", "value": "claims-stage"},
                "hide": 0,
                "includeAll": False,
                "multi": False,
                "options": [],
                "refresh": 2,
                "regex": "",
                "sort": 1,
            },
            {
                "name": "instance",
                "label": "Instance",
                "type": "query",
                "datasource": dict(DATASOURCE),
                # from up, not claims_stage_info, so that a worker that is down stays listed
                "definition": 'label_values(up{job="$job"}, instance)',
                "query": 'label_values(up{job="$job"}, instance)',
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "hide": 0,
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "options": [],
                "refresh": 2,
                "regex": "",
                "sort": 1,
            },
        ]
    }


def build_dashboard() -> dict[str, Any]:
    """The whole dashboard as Grafana's JSON model."""
    return {
        "uid": "claims-stage",
        "title": "claims-stage",
        "description": "Metastatic-cancer claims stage: throughput, rejections, dead letters "
        "and their SLO, consumer lag, latency, versions. Generated by "
        "deploy/grafana/generate_dashboard.py: edit that, not this file.",
        "tags": ["claims-stage", "kafka", "faust"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "links": [],
        "annotations": {"list": []},
        "templating": _templating(),
        "panels": [_panel(i, p) for i, p in enumerate(PANELS, start=1)],
    }


def render() -> str:
    """The dashboard file's exact contents."""
    return json.dumps(build_dashboard(), indent=2, ensure_ascii=False) + "\n"


def panel_queries() -> list[dict[str, str]]:
    """Every panel's queries: title, refId, expr (with template variables), legendFormat."""
    return [
        {
            "title": panel.title,
            "refId": _ref_id(i),
            "expr": query.expr,
            "legendFormat": query.legend,
        }
        for panel in PANELS
        for i, query in enumerate(panel.queries)
    ]


def expand_variables(expr: str, job: str = "claims-stage", instance: str = ".*") -> str:
    """Replace the dashboard's template variables as Grafana would, to run a query elsewhere."""
    return expr.replace("$job", job).replace("$instance", instance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the file differs from what would be written",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT}")
    args = parser.parse_args(argv)
    output: Path = args.output
    wanted = render()
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else None
        if current != wanted:
            print(
                f"{output} is out of date: run python deploy/grafana/generate_dashboard.py",
                file=sys.stderr,
            )
            return 1
        print(f"{output} is up to date")
        return 0
    output.write_text(wanted, encoding="utf-8")
    print(f"wrote {output} ({len(PANELS)} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
