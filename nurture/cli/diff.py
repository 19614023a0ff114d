"""``nurture diff OLD [NEW]``: what a deploy would change in each campaign, step by step.

Two paths compare two sets of files; one path compares the files with what
is deployed (each campaign's current version). Each change says how many
leads in flight it touches: the in-flight enrollments of the deployed
version whose text is OLD's, standing at (or waiting on) a removed or
changed step. The matched steps are printed as the map for `deploy --migrate`.

Exit codes: 0 printed, 1 problems in the files or an unusable database, 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dsl import FileTemplates, analyze, compile_program
from dsl.diff import ADDED, CHANGED, REMOVED, CampaignDiff, describe, diff_programs
from dsl.graph import StepGraph
from nurture import db
from nurture.cli import db as cli_db
from nurture.cli import lang as cli_lang
from nurture.models import Campaign, CampaignVersion, Enrollment
from nurture.store.migrating import IN_FLIGHT

Counts = dict[str, dict[str, int]]
"""Campaign name -> step id -> leads in flight there, on the version OLD describes."""


def register(app: typer.Typer) -> None:
    """Add ``diff`` to the main ``nurture`` app."""
    app.command("diff")(diff_command)


def diff_command(
    first: Annotated[
        Path,
        typer.Argument(
            metavar="OLD|FILE",
            help="The old campaign files (a file or a folder); alone, the new ones, compared "
            "with what is deployed.",
            show_default=False,
        ),
    ],
    second: Annotated[
        Path | None,
        typer.Argument(metavar="[NEW]", help="The new campaign files.", show_default=False),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="DB", help="Database URL (default: $NURTURE_DATABASE_URL)."),
    ] = None,
    templates: cli_lang.TemplatesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """Steps added, removed and changed per campaign, and the leads in flight each touches."""
    roots = cli_lang._template_roots(templates or [])
    target = url or db.database_url()
    counts: Counts | None
    if second is None:
        after = _graphs([first], roots)
        before, counts = _deployed(target, set(after))
        left, right = f"deployed ({cli_db._redacted(target)})", str(first)
    else:
        before, after = _graphs([first], roots), _graphs([second], roots)
        counts = _in_flight_of(target, before, explicit=url is not None)
        left, right = str(first), str(second)
    diffs = [d for d in diff_programs(before, after) if d.status != "same"]
    if as_json:
        typer.echo(json.dumps(_json(diffs, counts), ensure_ascii=False, indent=2))
    else:
        _print(diffs, counts, left, right)


def _graphs(paths: list[Path], roots: tuple[Path, ...]) -> dict[str, StepGraph]:
    sources = cli_lang._read_all(cli_lang._collect(paths))
    analysis = analyze(sources, FileTemplates(roots))
    if analysis.program is None or analysis.failed(False):
        cli_lang._report(analysis, len(sources), sys.stderr)
        raise typer.Exit(1)
    return dict(compile_program(analysis.program).campaigns)


# ---------------------------------------------------------------- the database


def _deployed(target: str, names: set[str]) -> tuple[dict[str, StepGraph], Counts]:
    """The current version of each named campaign that is deployed, and its leads by step."""
    where = cli_db._redacted(target)
    try:
        engine = _engine(target)
        if engine is None:
            cli_lang._fail(f"cannot read the deployed campaigns: no database at {where}", 1)
        try:
            with Session(engine) as session:
                rows = session.execute(
                    select(Campaign.name, CampaignVersion)
                    .join(CampaignVersion, CampaignVersion.campaign_id == Campaign.id)
                    .where(
                        CampaignVersion.version == Campaign.current_version,
                        Campaign.name.in_(sorted(names)),
                    )
                ).all()
                graphs = {name: StepGraph.from_json(v.graph) for name, v in rows}
                counts = {name: _by_step(session, v) for name, v in rows}
                return graphs, counts
        finally:
            engine.dispose()
    except cli_db._FAILURES as e:
        cli_lang._fail(f"cannot read the deployed campaigns from {where}: {cli_db._why(e)}", 1)


def _in_flight_of(target: str, graphs: dict[str, StepGraph], explicit: bool) -> Counts | None:
    """Leads in flight on the deployed versions whose text is `graphs`' (None: no database)."""
    hashes = {g.hash: name for name, g in graphs.items()}
    where = cli_db._redacted(target)
    try:
        engine = _engine(target)
        if engine is None:
            if explicit:
                cli_lang._fail(f"no database at {where}", 1)
            return None
        try:
            with Session(engine) as session:
                versions = session.scalars(
                    select(CampaignVersion).where(CampaignVersion.content_hash.in_(sorted(hashes)))
                ).all()
                found = {hashes[v.content_hash]: _by_step(session, v) for v in versions}
                return {name: found.get(name, {}) for name in graphs}
        finally:
            engine.dispose()
    except cli_db._FAILURES as e:
        if explicit:
            cli_lang._fail(f"cannot read {where}: {cli_db._why(e)}", 1)
        return None


def _engine(target: str) -> Engine | None:
    """An engine on the database; None for an SQLite file that does not exist (not made)."""
    parsed = db.normalize_url(target)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(str(file)).is_file():
        return None
    return db.make_engine(parsed)


def _by_step(session: Session, version: CampaignVersion) -> dict[str, int]:
    """In-flight enrollments by the step they stand at (a parked one: at its cursor)."""
    rows = session.execute(
        select(Enrollment.cursor, func.count())
        .where(Enrollment.campaign_version_id == version.id, Enrollment.state.in_(IN_FLIGHT))
        .group_by(Enrollment.cursor)
    )
    return {cursor: int(n) for cursor, n in rows}


# ---------------------------------------------------------------- printing


def _touched(diff: CampaignDiff, counts: Counts | None, step: str | None) -> int | None:
    if counts is None or step is None:
        return None
    return counts.get(diff.name, {}).get(step, 0)


def _print(diffs: list[CampaignDiff], counts: Counts | None, left: str, right: str) -> None:
    console = cli_lang._console(sys.stdout)
    console.print(Text(f"--- {left}\n+++ {right}"))
    if not diffs:
        console.print(Text("no campaign changed"))
    for d in diffs:
        console.print(Text(f'campaign "{d.name}": {d.status}', style="bold"))
        for words in d.settings:
            console.print(Text(f"  ~ setting `{words}` changed"))
        for c in d.changes:
            console.print(Text(_line(d, c, counts)))
        if d.status == CHANGED and d.same:
            console.print(Text(f"  = {d.same} steps unchanged"))
        if d.status == CHANGED and d.step_map:
            console.print(Text(f"  --migrate map: {json.dumps({d.name: d.step_map})}"))
    if counts is None:
        console.print(Text("leads in flight: not counted (no database for OLD's versions)"))


def _line(diff: CampaignDiff, change: Any, counts: Counts | None) -> str:
    old, new = change.old, change.new
    if change.change == ADDED:
        return f"  + {new.id} {describe(new)} (line {new.line})"
    leads = _touched(diff, counts, old.id)
    there = "" if leads is None else f"; {leads} lead{'s' if leads != 1 else ''} in flight there"
    if change.change == REMOVED:
        return f"  - {old.id} {describe(old)} (line {old.line}{there})"
    was, now = describe(old), describe(new)
    what = f"{was} → {now}" if was != now else f"{now} (its ways out differ)"
    return f"  ~ {old.id} → {new.id} {what} (line {new.line}{there})"


def _json(diffs: list[CampaignDiff], counts: Counts | None) -> dict[str, Any]:
    def step(node: Any) -> dict[str, Any] | None:
        if node is None:
            return None
        return {"id": node.id, "line": node.line, "text": describe(node)}

    return {
        "campaigns": [
            {
                "name": d.name,
                "status": d.status,
                "settings": list(d.settings),
                "changes": [
                    {
                        "change": c.change,
                        "old": step(c.old),
                        "new": step(c.new),
                        "leads_in_flight": _touched(d, counts, c.old.id if c.old else None),
                    }
                    for c in d.changes
                ],
                "unchanged": d.same,
                "step_map": dict(d.step_map),
            }
            for d in diffs
        ],
        "counted": counts is not None,
    }
