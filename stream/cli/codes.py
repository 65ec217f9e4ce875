"""`claims-stage codes`: ICD-10-CM code sets as data an operator loads.

`codes load` reads a CMS release (the order file of "Code Descriptions in Tabular Order", or
its zip), checks it whole, prints what it changes against the code set in force the day
before, and stores it (`CLAIMS_CODE_SETS_DIR`); `codes list` shows every code set the stage
judges by and the dates each governs; `codes remove` takes a loaded release out again.
Nothing is changed by a refused file: it exits 2 naming the line at fault.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from stream.cli.common import app, fail, load_code_sets, load_settings, out
from stream.core.codes.calendar import (
    CodeCalendar,
    CodeSetPeriod,
    coverage_warning,
    fiscal_year,
    fiscal_year_end,
    load_calendar,
)
from stream.core.codes.changes import ReleaseChanges, check_complete, compare_release
from stream.core.codes.releases import (
    LoadedRelease,
    OrderFile,
    ReleaseCodes,
    ReleaseFormatError,
    effective_date_from_names,
    parse_order_file,
    read_order_file,
)
from stream.core.codes.store import CodeSetStore, StoreError

codes_app = typer.Typer(
    help="ICD-10-CM code sets: load CMS releases as data, list what the stage judges by.",
    no_args_is_help=True,
)
app.add_typer(codes_app, name="codes")


def _effective(given: str | None, order: OrderFile) -> dt.date:
    if given is not None:
        try:
            return dt.date.fromisoformat(given)
        except ValueError:
            raise fail(f"--effective {given!r} is not a date: write it YYYY-MM-DD") from None
    inferred = effective_date_from_names(order.names)
    if inferred is None:
        raise fail(
            f"cannot tell from the name {order.source} when the release takes effect; "
            "give it with --effective YYYY-MM-DD (October 1 for a fiscal-year release, "
            "April 1 for an April update); nothing was loaded"
        )
    return inferred


def _read(path: Path) -> tuple[OrderFile, ReleaseCodes]:
    """The file and its codes, or a usage error naming the line at fault."""
    try:
        order = read_order_file(path)
        return order, parse_order_file(order.data)
    except ReleaseFormatError as error:
        raise fail(f"{path.name}: {error}; nothing was loaded") from error


def _print_changes(changes: ReleaseChanges) -> None:
    against = changes.against
    when = "in force" if changes.in_force else "the nearest set"
    out.print(
        f"against {against.name} ({against.source}), {when} the day before: "
        f"{len(changes.added):,} added, {len(changes.deleted):,} deleted "
        f"({sum(c.kind == 'split' for c in changes.deleted):,} of them split into new codes), "
        f"{len(changes.redescribed):,} re-described",
        highlight=False,
    )
    families = changes.in_families()
    if not families:
        out.print("no change inside the families the rules name", highlight=False)
        return
    out.print("changes inside the families the rules name (review them against the rules):")
    for name, inside in families:
        out.print(f"  {name}", highlight=False)
        for change in inside:
            out.print(f"    {change.kind:12} {change.code:8} {change.description}", highlight=False)
            if change.before is not None:
                out.print(f"    {'':12} {'':8} was: {change.before}", highlight=False)


@codes_app.command("load")
def load(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH",
            help="A CMS order file (icd10cm_order_2027.txt) or the zip that holds it.",
        ),
    ],
    effective: Annotated[
        str | None,
        typer.Option(
            "--effective",
            metavar="YYYY-MM-DD",
            help="The date the release takes effect (default: from a CMS file name).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and print the changes; store nothing.")
    ] = False,
) -> None:
    """Load a CMS ICD-10-CM release into the code-set store.

    The file is checked whole first; a broken or truncated one exits 2 naming the line, and
    the store stays as it was. A release replaces a loaded one of the same date. The
    worker and the batch commands read the store when they start.
    """
    settings = load_settings()
    order, codes = _read(path)
    day = _effective(effective, order)
    loaded_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    release = LoadedRelease(day, order.source, order.sha256, loaded_at, codes)
    from stream.core.codes.icd10cm import Icd10cmCatalog  # the descriptions: a second or two

    store = CodeSetStore(settings.code_sets_dir)
    try:
        current = store.releases()  # a new store is made by its first load
    except StoreError as error:
        raise fail(f"the code-set store cannot be read: {error}") from error
    calendar = load_calendar(releases=current)
    changes = compare_release(Icd10cmCatalog(calendar), release.codes, day)
    try:
        check_complete(changes, release.codes)
    except ReleaseFormatError as error:
        raise fail(f"{path.name}: {error}; nothing was loaded") from error
    out.print(
        f"{order.source}: ICD-10-CM FY{fiscal_year(day)} from {day}, "
        f"{len(codes.billable):,} billable codes and {len(codes.headers):,} headers "
        f"({codes.lines:,} lines), sha256 {order.sha256}",
        highlight=False,
    )
    _print_changes(changes)
    if dry_run:
        out.print("--dry-run: nothing was stored")
        return
    try:
        replaced = store.add(release)
    except (StoreError, OSError) as error:
        raise fail(f"the release could not be stored: {error}; the store is as it was") from error
    if replaced is not None:
        out.print(f"replaces {replaced.source} (sha256 {replaced.sha256[:12]}) of {day}")
    out.print(
        f"stored in {settings.code_sets_dir}: FY{fiscal_year(day)} governs "
        f"{day}..{_governed_until(calendar, day)}; workers and batch commands use it from "
        "their next start",
        highlight=False,
    )


def _governed_until(calendar: CodeCalendar, day: dt.date) -> dt.date:
    """The last day a release of `day` governs: until the next code set begins, or the end
    of its fiscal year (the calendar's own rule, `CodeCalendar._cut_periods`)."""
    later = [p.start for p in calendar.periods if p.start > day]
    end = fiscal_year_end(day)
    return min(end, later[0] - dt.timedelta(days=1)) if later else end


def _governs(period: CodeSetPeriod) -> str:
    loaded = period.loaded
    if loaded is None:
        return f"built in: {period.source}"
    codes = loaded.codes
    return (
        f"loaded: {loaded.source}, sha256 {loaded.sha256[:12]}, {len(codes.billable):,} billable "
        f"codes, {len(codes.headers):,} headers, loaded {loaded.loaded_at}"
    )


def _outside(calendar: CodeCalendar) -> str:
    gaps = [
        f"{before.end + dt.timedelta(days=1)}..{after.start - dt.timedelta(days=1)}"
        for before, after in zip(calendar.periods, calendar.periods[1:], strict=False)
        if after.start > before.end + dt.timedelta(days=1)
    ]
    between = f", in {', '.join(gaps)}" if gaps else ""
    return (
        f"dates before {calendar.first}{between} and after {calendar.last} are judged by the "
        "nearest code set, with a MET-042 warning"
    )


@codes_app.command("list")
def list_code_sets() -> None:
    """Every ICD-10-CM code set the stage judges by, built in and loaded, with the dates each
    governs, and how long the covered dates last."""
    settings = load_settings()
    calendar = load_calendar(releases=load_code_sets(settings))
    out.print(f"code-set store: {settings.code_sets_dir}", highlight=False)
    for period in calendar.periods:
        out.print(
            f"{period.name:28} {period.start}..{period.end}  {_governs(period)}", highlight=False
        )
    out.print(_outside(calendar), highlight=False)
    today = dt.date.today()
    left = (calendar.last - today).days
    out.print(f"covered through {calendar.last}: {left:,} days from today", highlight=False)
    warning = coverage_warning(calendar.last, today)
    if warning is not None:
        out.print(f"[bold yellow]warning:[/] {warning}", highlight=False)


@codes_app.command("remove")
def remove(
    effective: Annotated[
        str, typer.Argument(metavar="YYYY-MM-DD", help="The effective date of a loaded release.")
    ],
) -> None:
    """Take a loaded release out of the store (the built-in code sets cannot be removed)."""
    settings = load_settings()
    try:
        day = dt.date.fromisoformat(effective)
    except ValueError:
        raise fail(f"{effective!r} is not a date: write it YYYY-MM-DD") from None
    try:
        removed = CodeSetStore(settings.code_sets_dir).remove(day)
    except StoreError as error:
        raise fail(str(error)) from error
    if removed is None:
        raise fail(f"no loaded release takes effect on {day}; `claims-stage codes list` shows them")
    out.print(f"removed {removed.source} (sha256 {removed.sha256[:12]}) of {day}", highlight=False)
