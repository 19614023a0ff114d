"""The report as text: a table of steps per campaign, then the totals and what to look at.

Everything shown comes from the report dict that `--json` prints, so the two
outputs never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STEP_COLUMNS = ("entered", "sent", "deferred", "opened", "clicked", "in_flight")


def render(data: dict[str, Any], console: Console) -> None:
    """Print the report: header, one table per campaign that leads entered, totals, notes."""
    console.print(Text(_header(data), style="bold"))
    steps = _steps_by_campaign(data["steps"])
    for campaign in data["campaigns"]:
        console.print()
        if campaign["enrolled"]:
            console.print(Text(_campaign_title(campaign), style="bold"))
            console.print(_campaign_table(steps.get(campaign["name"], [])))
            caps = ", ".join(campaign["caps"]) or "no cap"
            most = campaign["max_touches_7d"]
            console.print(f"most touches to one lead in any 7 days: {most} ({caps})")
        else:
            console.print(Text(f"{campaign['name']}: no lead entered", style="dim"))
    console.print()
    console.print(Text("Totals", style="bold"))
    console.print(_totals_table(data))
    if data.get("handoff"):
        _handoff(data["handoff"], console)
    notes = list(_notes(data))
    if notes:
        console.print()
        for note in notes:
            console.print(note)


def _header(data: dict[str, Any]) -> str:
    entry = ", ".join(data["entry_campaigns"]) or "none"
    return (
        f"Simulated {data['leads']:,} leads over {data['days']} days (seed {data['seed']}, "
        f"from {data['start'][:10]}); new leads enter: {entry}"
    )


def _steps_by_campaign(steps: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        grouped.setdefault(step["campaign"], []).append(step)
    return grouped


def _campaign_title(campaign: dict[str, Any]) -> str:
    exits = sum(campaign["exits"].values())
    return (
        f"{campaign['name']} ({campaign['kind']}): {campaign['enrolled']:,} enrolled, "
        f"{campaign['completed']:,} completed, {exits:,} exited, "
        f"{campaign['in_flight']:,} in flight, {_mqls(campaign['mql']['count'])}"
    )


def _mqls(count: int) -> str:
    return f"{count:,} MQL" + ("" if count == 1 else "s")


def _campaign_table(steps: list[dict[str, Any]]) -> Table:
    table = Table()
    table.add_column("step")
    table.add_column("line", justify="right")
    table.add_column("kind")
    table.add_column("what", max_width=48, overflow="ellipsis", no_wrap=True)
    # `suppressed` (touches withheld: the lead's channel closed, or the lead suppressed)
    # only when some step has one, so a run without bounces reads as before
    columns: tuple[str, ...] = STEP_COLUMNS
    if any(step.get("suppressed") for step in steps):
        columns = (*STEP_COLUMNS[:2], "suppressed", *STEP_COLUMNS[2:])
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    deferred = columns.index("deferred")
    for step in steps:
        cells: list[str | Text] = [_count(step[c]) for c in columns]
        if _by_cap(step):
            cells[deferred] = Text(_count(step["deferred"]), style="yellow")
        table.add_row(step["id"], str(step["line"]), step["kind"], step["description"], *cells)
    return table


def _count(value: int) -> str:
    return f"{value:,}" if value else "·"


def _totals_table(data: dict[str, Any]) -> Table:
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("value")
    touches, mql, flight = data["touches_per_lead"], data["mql"], data["in_flight"]
    table.add_row("touches per lead", f"mean {touches['mean']:.2f}, max {touches['max']}")
    caps = "; ".join(f"{name}: {', '.join(c)}" for name, c in data["caps"].items()) or "none"
    if data.get("global_cap"):
        caps += f"; all campaigns: {data['global_cap']}"
    table.add_row("most touches in any 7 days", f"{data['max_touches_7d']} (caps: {caps})")
    table.add_row("MQLs", f"{mql['count']:,} ({mql['rate']:.1%} of leads)")
    if mql["count"]:
        days = f"median {mql['days_median']:g}, p90 {mql['days_p90']:g}"
        table.add_row("days to MQL", days)
        for cause, count in mql["by_cause"].items():
            table.add_row("  MQL by", f"{cause}: {count:,}")
    table.add_row("completed", f"{data['completed']:,}")
    for reason, count in data["exits"].items():
        table.add_row("exited", f"{reason}: {count:,}")
    waiting = f"{flight['leads']:,} leads ({flight['enrollments']:,} enrollments: "
    waiting += f"{flight['waiting']:,} waiting, {flight['stuck']:,} stuck)"
    table.add_row("in flight at the end", waiting)
    engine = data.get("engine") or {}
    if engine:
        steps = f"{engine['steps']:,} steps in {engine['decisions']:,} decisions"
        table.add_row("engine", steps)
    return table


def _handoff(section: dict[str, Any], console: Console) -> None:
    """The handoff to sales: what happened to the MQLs, then each team and member."""
    console.print()
    low, high = section["accept_after_hours"]
    sales = (
        f"sales accept {section['accept_rate']:.0%} of their MQLs after {low:g} to {high:g} hours"
    )
    rules = f"{section['routing']}: {section['sla'] or 'no SLA'}"
    console.print(Text(f"Handoff to sales ({rules}; {sales})", style="bold"))
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, key in (
        ("MQLs", "mqls"),
        ("assigned at once", "assigned"),
        ("accepted in time", "accepted_in_time"),
        ("accepted late", "accepted_late"),
        ("reassigned after the SLA ran out", "reassigned"),
        ("escalated", "escalated"),
        ("reminders to owners", "reminders"),
        ("nobody left to reassign to", "nobody_left"),
        ("unassigned at the end", "unassigned"),
        ("waiting for an answer at the end", "waiting_at_end"),
    ):
        table.add_row(label, f"{section[key]:,}")
    median = section["hours_to_accept_median"]
    table.add_row("median hours from MQL to accepted", "·" if median is None else f"{median:g}")
    console.print(table)
    for title, rows in (("team", section["teams"]), ("member", section["members"])):
        if not rows:
            continue
        who = Table()
        who.add_column(title)
        for column in ("assigned", "accepted", "expired"):
            who.add_column(column, justify="right")
        for name, counts in rows.items():
            who.add_row(name, *(_count(counts[c]) for c in ("assigned", "accepted", "expired")))
        console.print(who)


def _notes(data: dict[str, Any]) -> Iterable[Text]:
    """What a marketer should look at: caps that held touches back, no MQL (in the run, or
    in a campaign leads entered while others qualified), stuck leads."""
    for campaign in data["campaigns"]:
        mine = [s for s in data["steps"] if s["campaign"] == campaign["name"]]
        for reason, cap, why in (
            ("cap", ", ".join(campaign["caps"]), "the flow sends more often than the cap allows"),
            (
                "global cap",
                f"the global cap, {data.get('global_cap') or 'all campaigns'}",
                "all campaigns together send more often than the global cap allows",
            ),
        ):
            held = [s for s in mine if s["deferred_by"].get(reason)]
            if held:
                total = sum(int(s["deferred_by"][reason]) for s in held)
                where = ", ".join(s["id"] for s in held)
                yield Text(
                    f"! {campaign['name']}: {total:,} touches held back by a cap ({cap}) "
                    f"at {where}: {why}",
                    style="yellow",
                )
    weekly = [int(c.split()[0]) for caps in data["caps"].values() for c in caps if "week" in c]
    if weekly and not data.get("global_cap") and data["max_touches_7d"] > max(weekly):
        yield Text(
            f"! a lead got {data['max_touches_7d']} touches in 7 days from several campaigns "
            f"at once, more than any one weekly cap ({max(weekly)}): consider a global cap",
            style="yellow",
        )
    if data["leads"] and not data["mql"]["count"]:
        yield Text(f"! no lead became an MQL in {data['days']} days", style="yellow")
    elif data["mql"]["count"]:
        # Some leads qualify, so the run has an MQL rule or an `mql` step: a campaign
        # that qualified nobody stands out (with no MQL at all, the note above says it once).
        for campaign in data["campaigns"]:
            if campaign["enrolled"] and not campaign["mql"]["count"]:
                yield Text(
                    f"! {campaign['name']}: {campaign['enrolled']:,} enrolled, none became "
                    "an MQL while in it (by its mql steps or the MQL rule)",
                    style="yellow",
                )
    stuck = data["in_flight"]["stuck"]
    if stuck:
        examples = ", ".join(
            f"{s['lead']} in {s['campaign']} at {s['step']}"
            for s in data["in_flight"]["stuck_examples"][:3]
        )
        yield Text(
            f"! {stuck:,} enrollments are stuck with no future wake-up (a bug): {examples}",
            style="bold red",
        )


def _by_cap(step: dict[str, Any]) -> int:
    """Touches at this step held back by this campaign's cap or the global one."""
    by = step["deferred_by"]
    return int(by.get("cap", 0)) + int(by.get("global cap", 0))
