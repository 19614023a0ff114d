"""Deploy a checked program: new campaign versions, definitions, optional step migration.

`deploy` works inside the caller's transaction and stores nothing on its own:
the caller commits what it returns, or rolls back on `DeployError`, so a
refused deploy changes nothing.

Versions: a campaign whose content hash equals its current version's is
unchanged; one whose text equals an older version's is *reverted* (the
current version points back at it; hashes are unique per campaign); any
other text is version ``newest + 1``. Leads in flight keep the version they
entered. A step map (``--migrate``) moves in-flight enrollments of older
versions to the new current one, planned by `migrating`: every older version
with leads in flight must be covered (moved or kept by name), and every step
they are at mapped; otherwise the whole deploy is refused. `preview` plans the
same and raises nothing, for ``deploy --dry-run``; its caller rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dsl import ast
from dsl.graph import CompiledProgram, StepGraph
from nurture.models import Campaign, CampaignVersion, Definition
from nurture.store.definitions import active, content_hash
from nurture.store.migrating import IN_FLIGHT, MOVE, Placed, StepMap, VersionPlan, apply, plan

NEW, CHANGED, UNCHANGED, REVERTED = "new", "changed", "unchanged", "reverted"
__all__ = ["IN_FLIGHT", "StepMap"]


class DeployError(Exception):
    """Raised when a deploy is refused; the caller rolls back and nothing is stored."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to deploy: a campaign's graph or a definition's JSON, with its source text."""

    kind: str
    """``campaign``, ``scoring``, ``routing``, ``segment`` or ``fields``."""
    name: str
    body: dict[str, Any]
    hash: str
    source: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a deploy did with one item."""

    kind: str
    name: str
    version: int
    """The version now current (for an unchanged item, the one already current)."""
    hash: str
    status: str
    """``new``, ``changed``, ``reverted`` or ``unchanged``."""
    previous: int | None = None
    """The version that was current before, for changed and reverted campaigns."""
    plans: tuple[VersionPlan, ...] = ()
    """What happens to the leads in flight on each older version (`migrating`)."""

    @property
    def moved(self) -> int:
        """Enrollments moved to this version by the step map."""
        return sum(p.in_flight for p in self.plans if p.action == MOVE)


# ---------------------------------------------------------------- what to deploy


def items_of(
    program: ast.Program, compiled: CompiledProgram, sources: Mapping[str, str]
) -> list[Item]:
    """Everything `compiled` defines, campaigns first, each with the text it came from."""
    blocks = _blocks(program, sources)
    items = [
        Item("campaign", name, _graph_json(graph), graph.hash, blocks.get(("campaign", name), ""))
        for name, graph in compiled.campaigns.items()
    ]
    if compiled.scoring is not None:
        name = str(compiled.scoring.get("name") or "")
        items.append(_definition("scoring", name, compiled.scoring, blocks))
    if compiled.routing is not None:
        items.append(_definition("routing", "", compiled.routing, blocks))
    for name, cond in compiled.segments.items():
        items.append(_definition("segment", name, cond, blocks))
    if compiled.fields:
        items.append(_definition("fields", "", compiled.fields, blocks))
    return items


def _graph_json(graph: StepGraph) -> dict[str, Any]:
    data: dict[str, Any] = graph.to_json()
    return data


def _definition(
    kind: str, name: str, body: Mapping[str, Any], blocks: Mapping[tuple[str, str], str]
) -> Item:
    return Item(kind, name, dict(body), content_hash(dict(body)), blocks.get((kind, name), ""))


def _blocks(program: ast.Program, sources: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """The source text of each item, keyed like `Item` (fields joined, teams with the routing)."""
    blocks: dict[tuple[str, str], str] = {}
    for item in program.items():
        text = _block_text(item.span, sources.get(item.span.path, ""))
        if isinstance(item, ast.Campaign):
            blocks.setdefault(("campaign", item.name.value), text)
        elif isinstance(item, ast.Scoring):
            blocks.setdefault(("scoring", item.name.value), text)
        elif isinstance(item, ast.Segment):
            blocks.setdefault(("segment", item.name.value), text)
        elif isinstance(item, ast.Routing | ast.Team):  # the teams compile into the routing
            blocks[("routing", "")] = blocks.get(("routing", ""), "") + text
        else:
            blocks[("fields", "")] = blocks.get(("fields", ""), "") + text
    return blocks


def _block_text(span: ast.Span, text: str) -> str:
    """The lines of `span`, without the blank lines and top-level comments after it."""
    lines = text.split("\n")[span.line - 1 : span.end_line]
    if span.end_line > span.line and span.end_column == 1:
        lines = lines[:-1]
    while lines and (not lines[-1].strip() or lines[-1].startswith("#")):
        lines.pop()
    return "".join(f"{line}\n" for line in lines)


# ---------------------------------------------------------------- deploying


def deploy(
    session: Session, items: Iterable[Item], now: datetime, *, step_map: StepMap | None = None
) -> list[Outcome]:
    """Store what changed in `items` at `now`; with `step_map`, move enrollments too.

    Raises `DeployError` for a step map that names unknown campaigns, versions
    or steps, that leaves an older version with leads in flight uncovered, or
    an in-flight enrollment unmapped.
    """
    outcomes, problems = _deploy(session, items, now, step_map, move=True)
    if problems:
        raise DeployError(problems)
    return outcomes


def preview(
    session: Session, items: Iterable[Item], now: datetime, *, step_map: StepMap | None = None
) -> tuple[list[Outcome], list[str]]:
    """What `deploy` would do, and why it would be refused (no problems: it would not be).

    It writes as `deploy` does, moving nothing; the caller rolls the transaction back.
    """
    return _deploy(session, items, now, step_map, move=False)


def _deploy(
    session: Session,
    items: Iterable[Item],
    now: datetime,
    step_map: StepMap | None,
    *,
    move: bool,
) -> tuple[list[Outcome], list[str]]:
    items = list(items)
    campaigns = [i for i in items if i.kind == "campaign"]
    placed = [_place_campaign(session, item, now) for item in campaigns]
    migration = plan(session, step_map, (p for _, p in placed))
    if move and not migration.problems:
        apply(migration)
    outcomes = [
        replace(o, plans=tuple(p for p in migration.plans if p.campaign == o.name))
        for o, _ in placed
    ]
    outcomes += [_place_definition(session, i, now) for i in items if i.kind != "campaign"]
    session.flush()
    return outcomes, migration.problems


def _place_campaign(session: Session, item: Item, now: datetime) -> tuple[Outcome, Placed]:
    campaign = _campaign(session, item.name)
    current = _version(session, campaign.id, campaign.current_version)
    if current is not None and current.content_hash == item.hash:
        unchanged = Outcome("campaign", item.name, current.version, item.hash, UNCHANGED)
        return unchanged, Placed(item.name, campaign.id, current, current, True)
    target = session.scalars(
        select(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign.id, CampaignVersion.content_hash == item.hash
        )
    ).one_or_none()
    status = REVERTED if target is not None else CHANGED if current is not None else NEW
    if target is None:
        target = _new_version(session, campaign.id, item, now)
    campaign.current_version = target.version
    previous = None if current is None else current.version
    outcome = Outcome("campaign", item.name, target.version, item.hash, status, previous)
    return outcome, Placed(item.name, campaign.id, current, target, False)


def _campaign(session: Session, name: str) -> Campaign:
    """The campaign row, locked until the deploy commits; created on first deploy."""
    campaign = session.scalars(
        select(Campaign).where(Campaign.name == name).with_for_update()
    ).one_or_none()
    if campaign is None:
        campaign = Campaign(name=name)
        session.add(campaign)
        session.flush()
    return campaign


def _new_version(session: Session, campaign_id: int, item: Item, now: datetime) -> CampaignVersion:
    newest = session.scalar(
        select(func.max(CampaignVersion.version)).where(CampaignVersion.campaign_id == campaign_id)
    )
    version = CampaignVersion(
        campaign_id=campaign_id,
        version=(newest or 0) + 1,
        content_hash=item.hash,
        graph=item.body,
        source=item.source,
        deployed_at=now,
    )
    session.add(version)
    session.flush()
    return version


def _version(session: Session, campaign_id: int, version: int | None) -> CampaignVersion | None:
    if version is None:
        return None
    return session.scalars(
        select(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign_id, CampaignVersion.version == version
        )
    ).one_or_none()


def _place_definition(session: Session, item: Item, now: datetime) -> Outcome:
    current = active(session, item.kind, item.name)
    same_name = current is not None and current.name == item.name
    if current is not None and same_name and current.content_hash == item.hash:
        return Outcome(item.kind, item.name, current.version, item.hash, UNCHANGED)
    newest = session.scalar(
        select(func.max(Definition.version)).where(
            Definition.kind == item.kind, Definition.name == item.name
        )
    )
    version = (newest or 0) + 1
    session.add(
        Definition(
            kind=item.kind,
            name=item.name,
            version=version,
            content_hash=item.hash,
            body=item.body,
            source=item.source,
            deployed_at=now,
        )
    )
    return Outcome(item.kind, item.name, version, item.hash, NEW if newest is None else CHANGED)
