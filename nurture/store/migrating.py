"""Moving leads in flight to a campaign's new version (`deploy --migrate MAP`), planned first.

A step map says, per campaign, where the enrollments of an older version go in
the version the deploy makes current:

    {"Welcome": {"n1": "n2", "n2": "n3"}}             from the version current before
    {"Welcome": {"v1": {"n1": "n2"}, "v2": {...}}}     from each older version named
    {"Welcome": {"v1": "keep"}}                        v1's leads stay on v1, said so

`plan` works out, for every campaign of the deploy and every older version
with enrollments in flight, how many sit at each step and where they would
move, or why they cannot. For a campaign the map names, an older version
with leads in flight that the map does not cover is refused, by name, never
skipped. Campaigns the map does not name keep their leads where they are, as
a deploy without a map does (`stay`). `apply` moves what the plan moves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture.models import CampaignVersion, Enrollment

IN_FLIGHT: Final = ("active", "waiting")
"""Enrollment states a step map moves; done and exited ones stay where they ended."""
KEEP: Final = "keep"
MOVE, STAY, REFUSED = "move", "stay", "refused"

StepMap = Mapping[str, Mapping[str, Any]]
"""``{campaign: {old_step: new_step}}``, or ``{campaign: {"vN": {old: new} | "keep"}}``."""

_VERSION_KEY = re.compile(r"v(\d+)")


@dataclass(frozen=True, slots=True)
class StepMove:
    """The in-flight enrollments of an old version that stand at one step."""

    step: str
    kind: str
    line: int | None
    enrollments: int
    target: str | None
    """The step of the new version they move to; None when they do not move."""


@dataclass(frozen=True, slots=True)
class VersionPlan:
    """What a deploy does with the leads in flight on one older version of a campaign."""

    campaign: str
    version: int
    target: int
    action: str
    """``move``, ``keep`` (the map says so), ``stay`` (the map does not name the campaign,
    or there is no map) or ``refused``."""
    steps: tuple[StepMove, ...]
    why: tuple[str, ...] = ()
    """For a refused plan, what is missing."""

    @property
    def in_flight(self) -> int:
        return sum(s.enrollments for s in self.steps)


@dataclass(frozen=True, slots=True)
class Placed:
    """A campaign of the deploy: its current version before (None: new) and after."""

    name: str
    campaign_id: int
    before: CampaignVersion | None
    after: CampaignVersion
    unchanged: bool


@dataclass(slots=True)
class Migration:
    """The plans, the problems that refuse the deploy, and what `apply` needs."""

    plans: list[VersionPlan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _moves: list[tuple[CampaignVersion, Mapping[str, str], list[Enrollment]]] = field(
        default_factory=list
    )


def plan(session: Session, step_map: StepMap | None, placed: Iterable[Placed]) -> Migration:
    """Plan every campaign of the deploy; check the map against the versions it names."""
    placed = list(placed)
    migration = Migration()
    names = {p.name for p in placed}
    for name in step_map or {}:
        if name not in names:
            known = ", ".join(_q(n) for n in names) or "none"
            migration.problems.append(
                f"--migrate names campaign {_q(name)}, which this deploy does not have "
                f"(campaigns: {known})"
            )
    for one in placed:
        mapping = None if step_map is None else step_map.get(one.name)
        _plan_campaign(session, one, mapping, migration)
    return migration


def apply(migration: Migration) -> None:
    """Move the enrollments the plan moves (only when it has no problems)."""
    assert not migration.problems
    for after, mapping, enrollments in migration._moves:
        for enrollment in enrollments:
            _remap(enrollment, after, mapping)


def _plan_campaign(
    session: Session, one: Placed, mapping: Mapping[str, Any] | None, migration: Migration
) -> None:
    flat, sections = _sections(one, mapping, migration.problems)
    older = _older_versions(session, one)
    for section_version in sections:
        if section_version not in {v.version for v in older}:
            migration.problems.append(
                f"--migrate {_q(one.name)}: there is no v{section_version} to move from"
            )
    for version in older:
        section: Any = sections.get(version.version)
        if section is None and one.before is not None and version.id == one.before.id:
            section = flat
        for problem in _unknown_steps(one, version, section):
            migration.problems.append(problem)
        if mapping is None:  # counted, not loaded: a deploy without a map locks nothing
            counts = _counts(session, version)
            if counts:
                migration.plans.append(_plan(one, version, STAY, _step_moves(version, counts, {})))
            continue
        enrollments = _in_flight(session, version)
        if not enrollments:
            continue
        by_step: dict[str, int] = {}
        for enrollment in enrollments:
            by_step[enrollment.cursor] = by_step.get(enrollment.cursor, 0) + 1
        steps = _step_moves(version, by_step, section if isinstance(section, dict) else {})
        if section == KEEP:
            migration.plans.append(_plan(one, version, KEEP, steps))
        elif section is None:
            why = _uncovered(one, version, len(enrollments))
            migration.plans.append(_plan(one, version, REFUSED, steps, why))
            migration.problems.extend(why)
        else:
            _plan_move(one, version, section, enrollments, steps, migration)


def _sections(
    one: Placed, mapping: Mapping[str, Any] | None, problems: list[str]
) -> tuple[dict[str, str] | None, dict[int, Any]]:
    """The map of one campaign split into its plain steps and its ``vN`` tables."""
    if mapping is None:
        return None, {}
    flat = {k: v for k, v in mapping.items() if not _VERSION_KEY.fullmatch(k)}
    sections = {int(m.group(1)): v for k, v in mapping.items() if (m := _VERSION_KEY.fullmatch(k))}
    for number, section in list(sections.items()):
        if section != KEEP and not isinstance(section, dict):
            problems.append(
                f'--migrate {_q(one.name)}: "v{number}" should be a table of steps or "keep"'
            )
            del sections[number]
    if (flat or not sections) and (one.before is None or one.unchanged):
        why = "is new" if one.before is None else "is unchanged"
        problems.append(
            f"--migrate maps campaign {_q(one.name)}, but it {why}: no version to move from"
            + ("" if one.before is None else ' (name an older version, as in "v1")')
        )
        flat = {}
    return (flat or None), sections


def _older_versions(session: Session, one: Placed) -> list[CampaignVersion]:
    return list(
        session.scalars(
            select(CampaignVersion)
            .where(
                CampaignVersion.campaign_id == one.campaign_id,
                CampaignVersion.id != one.after.id,
            )
            .order_by(CampaignVersion.version)
        )
    )


def _in_flight(session: Session, version: CampaignVersion) -> list[Enrollment]:
    return list(
        session.scalars(
            select(Enrollment)
            .where(Enrollment.campaign_version_id == version.id, Enrollment.state.in_(IN_FLIGHT))
            .order_by(Enrollment.id)
            .with_for_update()
        )
    )


def _unknown_steps(one: Placed, version: CampaignVersion, section: Any) -> Iterable[str]:
    if not isinstance(section, dict):
        return
    old_ids = {n["id"] for n in version.graph["nodes"]}
    new_ids = {n["id"] for n in one.after.graph["nodes"]}
    for old, new in section.items():
        if old not in old_ids:
            yield f"--migrate {_q(one.name)}: step {old} is not in v{version.version}"
        if new not in new_ids:
            yield f"--migrate {_q(one.name)}: step {new} is not in v{one.after.version}"


def _counts(session: Session, version: CampaignVersion) -> dict[str, int]:
    """In-flight enrollments of `version` by the step they stand at."""
    rows = session.execute(
        select(Enrollment.cursor, func.count())
        .where(Enrollment.campaign_version_id == version.id, Enrollment.state.in_(IN_FLIGHT))
        .group_by(Enrollment.cursor)
    )
    return {cursor: int(n) for cursor, n in rows}


def _step_moves(
    version: CampaignVersion, counts: Mapping[str, int], section: Mapping[str, str]
) -> tuple[StepMove, ...]:
    nodes = {n["id"]: n for n in version.graph["nodes"]}
    return tuple(
        StepMove(
            step,
            str(nodes.get(step, {}).get("kind", "?")),
            nodes.get(step, {}).get("line"),
            count,
            section.get(step),
        )
        for step, count in sorted(counts.items(), key=lambda kv: _step_order(kv[0]))
    )


def _plan(
    one: Placed, version: CampaignVersion, action: str, steps: tuple[StepMove, ...], why: Any = ()
) -> VersionPlan:
    return VersionPlan(one.name, version.version, one.after.version, action, steps, tuple(why))


def _plan_move(
    one: Placed,
    version: CampaignVersion,
    section: Mapping[str, str],
    enrollments: list[Enrollment],
    steps: tuple[StepMove, ...],
    migration: Migration,
) -> None:
    nodes = {n["id"]: n for n in version.graph["nodes"]}
    unmapped: dict[str, list[Enrollment]] = {}
    for enrollment in enrollments:
        for step in _steps_of(enrollment, nodes):
            if step not in section:
                unmapped.setdefault(step, []).append(enrollment)
    if unmapped:
        why = _unmapped_message(one, version, unmapped, nodes)
        migration.plans.append(_plan(one, version, REFUSED, steps, why))
        migration.problems.extend(why)
        return
    migration.plans.append(_plan(one, version, MOVE, steps))
    migration._moves.append((one.after, section, enrollments))


def _uncovered(one: Placed, version: CampaignVersion, count: int) -> list[str]:
    noun = "enrollment" if count == 1 else "enrollments"
    return [
        f"cannot migrate {_q(one.name)}: v{version.version} has {count} {noun} in flight "
        "that the map does not cover",
        f'add a "v{version.version}" table mapping its steps to steps of '
        f'v{one.after.version}, or "v{version.version}" = "keep" to leave them on '
        f"v{version.version}",
    ]


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
    one: Placed,
    before: CampaignVersion,
    unmapped: Mapping[str, list[Enrollment]],
    old_nodes: Mapping[str, Any],
) -> list[str]:
    count = len({e.id for found in unmapped.values() for e in found})
    lines = [
        f"cannot migrate {_q(one.name)} v{before.version} → v{one.after.version}: "
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
        f"map these steps to steps of v{one.after.version}, or write "
        f'"v{before.version}" = "keep" to leave v{before.version}\'s leads on it'
    )
    return lines


def _step_order(step: str) -> tuple[int, str]:
    digits = step.lstrip("n")
    return (int(digits), step) if digits.isdigit() else (1 << 30, step)


def _q(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'
