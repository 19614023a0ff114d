"""``nurture report funnel`` and ``nurture report campaign NAME``: the analyst's tables.

Exit codes: 0 printed, 1 an unusable database, 2 bad usage (an unknown
campaign, a bad ``--since``). ``--json`` prints the same as one object.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.config import ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nurture.handoff.report import Group, Keeping
    from nurture.reports import CampaignReport, Funnel
    from nurture.split_report import SplitResult

AsJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
Url = Annotated[
    str | None,
    typer.Option("--url", metavar="DB", help="Database URL (default: $NURTURE_DATABASE_URL)."),
]


SHOWN = {
    "opened": "opened",
    "clicked": "clicked",
    "bounced_hard": "bounced",
    "unsubscribed": "unsubscribed",
}
"""Engagement columns of the step table: event type -> heading."""


def register(app: typer.Typer) -> None:
    """Add ``report funnel``, ``report campaign`` and ``report deliveries`` (an operator's)."""
    from nurture.cli.run import report_deliveries

    report = typer.Typer(
        help="Reports on the funnel, campaigns and deliveries.", no_args_is_help=True
    )
    report.command("funnel")(funnel_command)
    report.command("campaign")(campaign_command)
    report.command("deliveries")(report_deliveries)
    app.add_typer(report, name="report")


def funnel_command(
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="YYYY-MM-DD", help="Only leads created on or after."),
    ] = None,
    as_json: AsJson = False,
    url: Url = None,
) -> None:
    """The funnel: leads per stage, conversion, by source, days to MQL, velocity, SLA."""
    from nurture.reports import funnel

    start = _since(since)
    with _session(url) as session:
        data = funnel(session, datetime.now(UTC), start)
    if as_json:
        typer.echo(json.dumps(data.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_funnel(data)


def campaign_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The campaign's name.")],
    as_json: AsJson = False,
    url: Url = None,
) -> None:
    """One campaign: enrollments per version, per step sends, opens, clicks, bounces, and
    each A/B split's arms with a significance test."""
    from dsl.vocabulary import suggest
    from nurture.reports import UnknownCampaign, campaign_report

    with _session(url) as session:
        try:
            data = campaign_report(session, name)
        except UnknownCampaign as e:
            by_lower = {k.lower(): k for k in e.known}
            hint = suggest(name, by_lower)
            maybe = f"; did you mean {by_lower[hint]!r}?" if hint else ""
            known = ", ".join(repr(k) for k in e.known) or "none deployed"
            cli_lang._fail(f"no campaign {name!r}{maybe} (campaigns: {known})")
    if as_json:
        typer.echo(json.dumps(data.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_campaign(data)


# ---------------------------------------------------------------- printing


def _print_funnel(data: Funnel) -> None:
    console = _console()
    since = f" created since {data.since:%Y-%m-%d}" if data.since else ""
    title = f"Funnel of the {data.leads:,} leads{since}"
    stages = Table(title=title, title_justify="left")
    for column in ("stage", "now", "reached", "from the stage before"):
        stages.add_column(column, justify="left" if column == "stage" else "right")
    for s in data.stages:
        stages.add_row(s.stage, f"{s.now:,}", f"{s.reached:,}", _percent(s.conversion))
    stages.add_row("returned", "", f"{data.returned:,}", "")
    timing = Table(show_header=False, box=None, pad_edge=False)
    days = f"{_days(data.days_to_mql_median)}, {_days(data.days_to_mql_p90)}"
    timing.add_row("days to MQL (median, p90)", days)
    velocity = _percent(data.lead_velocity_rate, signed=True)
    timing.add_row(
        "MQLs this month, last month", f"{data.mqls_this_month:,}, {data.mqls_last_month:,}"
    )
    timing.add_row("lead velocity rate", velocity)
    timing.add_row(
        "MQLs waiting on sales (in SLA, overdue)", f"{data.sla_waiting:,}, {data.sla_overdue:,}"
    )
    timing.add_row("MQLs accepted by sales", f"{data.sales.accepted:,}")
    sales = data.sales
    tables = [
        _groups("By source", "source", sales.by_source),
        _groups("By campaign", "campaign", sales.by_campaign),
        _groups("By owner", "owner", sales.by_owner, costs=False),
        _keeping("SLA by owner", "owner", sales.sla_by_owner),
        _keeping("SLA by team", "team", sales.sla_by_team),
    ]
    reasons = Table("returned because", "leads", title="Return reasons", title_justify="left")
    for reason, count in sales.return_reasons:
        reasons.add_row(reason, f"{count:,}")
    money = Table(show_header=False, box=None, pad_edge=False)
    money.add_row("won", f"{sales.won:,}")
    for kind, cost in sales.costs.items():
        money.add_row(f"cost by {kind}, ROMI", f"{cost:,}, {_times(sales.romi(kind))}")
    for thing in (stages, timing, *tables, reasons, money):
        if not isinstance(thing, Table) or thing.row_count or not thing.title:
            console.print(thing)


def _groups(title: str, what: str, groups: Sequence[Group], *, costs: bool = True) -> Table:
    table = Table(title=title, title_justify="left")
    columns = [what, "leads", "MQLs", "accepted", "SQL", "opp.", "customers", "won"]
    columns += ["cost", "per lead", "per MQL", "ROMI"] if costs else []
    for column in columns:
        table.add_column(column, justify="left" if column == what else "right")
    for g in groups:
        counts = (g.leads, g.mqls, g.accepted, g.sql, g.opportunity, g.customers)
        row = [g.name or "(none)", *(f"{n:,}" for n in counts), f"{g.won:,}"]
        if costs:
            row += [_money(g.cost), _money(g.cost_per_lead), _money(g.cost_per_mql)]
            row.append(_times(g.romi))
        table.add_row(*row)
    return table


def _keeping(title: str, what: str, rows: Sequence[Keeping]) -> Table:
    table = Table(title=title, title_justify="left")
    columns = (what, "MQLs", "accepted", "in time", "reassigned", "hours to accept")
    for column in columns:
        table.add_column(column, justify="left" if column == what else "right")
    for k in rows:
        hours = "-" if k.median_hours_to_accept is None else f"{k.median_hours_to_accept:.1f}"
        in_time = f"{k.in_time:,} ({_percent(k.in_time / k.accepted if k.accepted else None)})"
        table.add_row(k.name, f"{k.mqls:,}", f"{k.accepted:,}", in_time, f"{k.reassigned:,}", hours)
    return table


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def _print_campaign(data: CampaignReport) -> None:
    console = _console()
    versions = Table(title=f"Campaign {data.name!r}: enrollments", title_justify="left")
    for column in ("version", "deployed", "enrollments", "exits"):
        versions.add_column(column)
    for v in data.versions:
        deployed = f"{v.deployed_at:%Y-%m-%d %H:%M}"
        versions.add_row(f"v{v.version}", deployed, _pairs(v.states), _pairs(v.exits))
    steps = Table(title="Touches per step", title_justify="left")
    for column in ("version", "step", "kind", "template", "sent", "failed", *SHOWN.values()):
        steps.add_column(
            column, justify="left" if column in ("step", "kind", "template") else "right"
        )
    for s in data.steps:
        failed = sum(n for status, n in s.touches.items() if status != "sent")
        steps.add_row(
            f"v{s.version}",
            s.step,
            s.kind,
            s.template,
            f"{s.sent:,}",
            f"{failed:,}",
            *(_engaged(s.engaged.get(e, 0), s.rate(e)) for e in SHOWN),
        )
    console.print(versions)
    console.print(steps if data.steps else "no touches yet")
    for split in data.splits:
        _print_split(console, split)


_METRIC_WORDS = {"opened": "opened", "clicked": "clicked", "mql": "MQL"}


def _print_split(console: Console, split: SplitResult) -> None:
    """One split: its arms side by side, then each rate compared with its test and verdict."""
    title = f"A/B split at line {split.line} (v{split.version}, step {split.step})"
    arms = Table(title=title, title_justify="left")
    for column in ("arm", "share", "leads", "sends", "opened", "clicked", "MQLs"):
        arms.add_column(column, justify="left" if column == "arm" else "right")
    for a in split.arms:
        arms.add_row(
            a.label,
            f"{a.share:g}%",
            f"{a.leads:,}",
            f"{a.sends:,}",
            _engaged(a.opened, a.rate("opened")),
            _engaged(a.clicked, a.rate("clicked")),
            _engaged(a.mqls, a.rate("mql")),
        )
    tests = Table(show_header=True, box=None, pad_edge=False)
    for column in ("rate", "difference", "test", "p", "verdict"):
        tests.add_column(column)
    for c in split.comparisons:
        labels = [a.label for a in split.arms]
        between = f"{labels[1]} vs {labels[0]}" if len(labels) == 2 else "best vs worst"
        difference = "" if c.difference is None else f"{c.difference * 100:+.1f} points, {between}"
        p_value = "" if c.p_value is None else f"{c.p_value:.3g}"
        tests.add_row(_METRIC_WORDS[c.metric], difference, c.test, p_value, c.verdict)
    console.print(arms)
    console.print(tests)


def _engaged(count: int, rate: float | None) -> str:
    return f"{count:,} ({_percent(rate)})" if rate is not None else f"{count:,}"


def _pairs(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name or '?'} {count:,}" for name, count in counts.items()) or "none"


def _percent(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _console() -> Console:
    console = cli_lang._console(sys.stdout)
    if not sys.stdout.isatty():
        console.width = 200  # a pipe or a file: tables whole, never cut at 80 columns
    return console


# ---------------------------------------------------------------- inputs


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        cli_lang._fail(f"--since {text!r}: write a date such as 2026-03-01")
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@contextmanager
def _session(url: str | None) -> Iterator[Session]:
    """A session on the migrated database (rolled back at the end), or exit 1 with why."""
    from sqlalchemy.orm import Session

    try:
        target = url or Settings.load().database_url
    except ConfigError as e:
        cli_lang._fail(str(e), code=1)
    engine = cli_db.migrated_engine(target)
    try:
        with Session(engine) as session:
            yield session
    except cli_db._FAILURES as e:
        cli_lang._fail(f"cannot read {cli_db._redacted(target)}: {cli_db._why(e)}", code=1)
    finally:
        engine.dispose()
