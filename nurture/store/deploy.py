"""Deploy a checked program: new campaign versions, definitions, optional step migration.

`deploy` works inside the caller's transaction and stores nothing on its own:
the caller commits what it returns, or rolls back on `DeployError`, so a
refused deploy changes nothing.

Versions: a campaign whose content hash equals its current version's is
unchanged; one whose text equals an older version's is *reverted* (the
current version points back at it; hashes are unique per campaign); any
other text is version ``newest + 1``. Leads in flight keep the version they
entered. A step map (``--migrate``) moves the in-flight enrollments of the
previous current version to the new one, and only when it maps every step
they are at; otherwise the whole deploy is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dsl import ast
from dsl.graph import CompiledProgram, StepGraph
from nurture.models import Campaign, CampaignVersion, Definition, Enrollment
from nurture.store.definitions import active, content_hash

NEW, CHANGED, UNCHANGED, REVERTED = "new", "changed", "unchanged", "reverted"
IN_FLIGHT: Final = ("active", "waiting")
"""Enrollment states a step map moves; done and exited ones stay where they ended."""

StepMap = Mapping[str, Mapping[str, str]]
"""``{campaign: {old_step_id: new_step_id}}``."""


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
    moved: int = 0
    """Enrollments moved to this version by the step map."""


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

    Raises `DeployError` for a step map that names unknown campaigns or steps,
    or that leaves an in-flight enrollment unmapped.
    """
    items = list(items)
    campaigns = [i for i in items if i.kind == "campaign"]
    placed = [_place_campaign(session, item, now) for item in campaigns]
    outcomes = [outcome for outcome, _ in placed]
    if step_map:
        versions = {o.name: (o, pair) for o, pair in placed}
        outcomes = _migrate(session, step_map, versions, outcomes)
    outcomes += [_place_definition(session, i, now) for i in items if i.kind != "campaign"]
    session.flush()
    return outcomes


_Pair = tuple[CampaignVersion | None, CampaignVersion]
"""The version current before the deploy (None for a new campaign) and the one after."""


def _place_campaign(session: Session, item: Item, now: datetime) -> tuple[Outcome, _Pair]:
    campaign = _campaign(session, item.name)
    current = _version(session, campaign.id, campaign.current_version)
    if current is not None and current.content_hash == item.hash:
        unchanged = Outcome("campaign", item.name, current.version, item.hash, UNCHANGED)
        return unchanged, (current, current)
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
    return outcome, (current, target)


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


# ---------------------------------------------------------------- migrating enrollments


def _migrate(
    session: Session,
    step_map: StepMap,
    versions: Mapping[str, tuple[Outcome, _Pair]],
    outcomes: list[Outcome],
) -> list[Outcome]:
    problems = list(_map_problems(step_map, versions))
    if problems:
        raise DeployError(problems)
    moved: dict[str, int] = {}
    for name, mapping in step_map.items():
        outcome, (before, after) = versions[name]
        assert before is not None  # _map_problems refused new and unchanged campaigns
        moved[name] = _move(session, outcome, before, after, mapping)
    return [
        Outcome(o.kind, o.name, o.version, o.hash, o.status, o.previous, moved.get(o.name, 0))
        for o in outcomes
    ]


def _map_problems(
    step_map: StepMap, versions: Mapping[str, tuple[Outcome, _Pair]]
) -> Iterable[str]:
    for name, mapping in step_map.items():
        if name not in versions:
            known = ", ".join(_q(n) for n in versions) or "none"
            yield (
                f"--migrate names campaign {_q(name)}, which this deploy does not have "
                f"(campaigns: {known})"
            )
            continue
        outcome, (before, after) = versions[name]
        if before is None or outcome.status == UNCHANGED:
            why = "is new" if before is None else "is unchanged"
            yield f"--migrate maps campaign {_q(name)}, but it {why}: no version to move from"
            continue
        old_nodes, new_nodes = before.graph["nodes"], after.graph["nodes"]
        old_ids = {n["id"] for n in old_nodes}
        new_ids = {n["id"] for n in new_nodes}
        for old, new in mapping.items():
            if old not in old_ids:
                yield f"--migrate {_q(name)}: step {old} is not in v{before.version}"
            if new not in new_ids:
                yield f"--migrate {_q(name)}: step {new} is not in v{after.version}"


def _move(
    session: Session,
    outcome: Outcome,
    before: CampaignVersion,
    after: CampaignVersion,
    mapping: Mapping[str, str],
) -> int:
    enrollments = session.scalars(
        select(Enrollment)
        .where(Enrollment.campaign_version_id == before.id, Enrollment.state.in_(IN_FLIGHT))
        .order_by(Enrollment.id)
        .with_for_update()
    ).all()
    old_nodes = {n["id"]: n for n in before.graph["nodes"]}
    unmapped: dict[str, list[Enrollment]] = {}
    for enrollment in enrollments:
        for step in _steps_of(enrollment, old_nodes):
            if step not in mapping:
                unmapped.setdefault(step, []).append(enrollment)
    if unmapped:
        raise DeployError(_unmapped_message(outcome, before, after, unmapped, old_nodes))
    for enrollment in enrollments:
        _remap(enrollment, after, mapping)
    return len(enrollments)


def _steps_of(enrollment: Enrollment, old_nodes: Mapping[str, Any]) -> list[str]:
    """The old step ids an enrollment refers to: its cursor, its wait, its loop counters."""
    steps = [enrollment.cursor]
    waiting = enrollment.waiting_for
    if isinstance(waiting, dict) and isinstance(waiting.get("node"), str):
        steps.append(waiting["node"])
    steps += [key for key in enrollment.iterations if key in old_nodes]
    return list(dict.fromkeys(steps))


def _remap(enrollment: Enrollment, after: CampaignVersion, mapping: Mapping[str, str]) -> None:
    enrollment.campaign_version_id = after.id
    enrollment.cursor = mapping[enrollment.cursor]
    waiting = enrollment.waiting_for
    if isinstance(waiting, dict) and isinstance(waiting.get("node"), str):
        enrollment.waiting_for = {**waiting, "node": mapping[waiting["node"]]}
    enrollment.iterations = {mapping.get(k, k): v for k, v in enrollment.iterations.items()}


def _unmapped_message(
    outcome: Outcome,
    before: CampaignVersion,
    after: CampaignVersion,
    unmapped: Mapping[str, list[Enrollment]],
    old_nodes: Mapping[str, Any],
) -> list[str]:
    count = len({e.id for found in unmapped.values() for e in found})
    lines = [
        f"cannot migrate {_q(outcome.name)} v{before.version} → v{after.version}: "
        f"{count} in-flight {'enrollment is' if count == 1 else 'enrollments are'} "
        "at steps the map does not mention:"
    ]
    for step in sorted(unmapped, key=_step_order):
        found = unmapped[step]
        node = old_nodes.get(step, {})
        where = f"{node.get('kind', '?')}, line {node.get('line', '?')}"
        ids = ", ".join(f"{e.id} (lead {e.lead_id})" for e in found[:10])
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        noun = "enrollment" if len(found) == 1 else "enrollments"
        lines.append(f"  {step} ({where}): {noun} {ids}{more}")
    lines.append(
        f"map these steps to steps of v{after.version}, "
        f"or deploy without --migrate to leave them on v{before.version}"
    )
    return lines


def _step_order(step: str) -> tuple[int, str]:
    digits = step.lstrip("n")
    return (int(digits), step) if digits.isdigit() else (1 << 30, step)


def _q(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'
