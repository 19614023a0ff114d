"""Production's numbers for the picture (`nurture graph FILE --counts live`), from the database.

A campaign is counted in the deployed version whose content hash is the
file's (the steps' ids then mean the same steps); a campaign not deployed
as the file writes it is refused by name, so no number lands on the wrong
step. The database keeps each touch and each enrollment's place, not every
step a lead walked through, so production's picture carries what those rows
say and no more: `entered` on the first step (every enrollment) and on each
send step (every touch written), `sent`, `deferred` (touches whose status is
so now), `opened` and `clicked` (touches opened, clicked, each once), and
`exits` where exited enrollments stand. The edges out of a step with several
ways out (a branch, a split, a repeat, a wait with a timeout) carry how many
enrollments went each way, as the runtime counted them in ``step_edges`` when
it stored each decision (`nurture.runtime.edges`). Counting began with that
table: a step none of whose ways was counted yet has no numbers on its edges
(not zeros, which would say nobody went that way); once one way is counted,
the others show 0 until taken.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from dsl.draw import Numbers
from dsl.graph import StepGraph
from nurture.models import Campaign, CampaignVersion, Delivery, Enrollment, Event, StepEdge


class NotDeployed(LookupError):
    """A campaign of the file has no deployed version with its content: the message says which."""


def live_numbers(session: Session, graphs: Sequence[StepGraph]) -> dict[str, Numbers]:
    """Each campaign's numbers in its deployed version equal to `graphs`' (see the module)."""
    found: dict[str, Numbers] = {}
    for graph in graphs:
        version = _version(session, graph)
        found[graph.name] = version_numbers(session, graph, version.id)
    return found


def version_numbers(session: Session, graph: StepGraph, version_id: int) -> Numbers:
    """The numbers of one deployed version whose graph is `graph` (see the module)."""
    return Numbers(_steps(session, graph, version_id), _edges(session, graph, version_id))


def _edges(session: Session, graph: StepGraph, version_id: int) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(StepEdge.from_step, StepEdge.to_step, StepEdge.count).where(
            StepEdge.campaign_version_id == version_id
        )
    )
    found: dict[tuple[str, str], int] = {}
    for source, target, count in rows:
        node = graph.nodes.get(source)
        if node is not None and any(e.target == target for e in node.edges):
            found[source, target] = int(count)
    for node in graph.nodes.values():  # beside a way taken, one nobody took is a 0
        if any((node.id, edge.target) in found for edge in node.edges):
            for edge in node.edges:
                found.setdefault((node.id, edge.target), 0)
    return found


def _version(session: Session, graph: StepGraph) -> CampaignVersion:
    campaign = session.scalar(select(Campaign).where(Campaign.name == graph.name))
    if campaign is None:
        raise NotDeployed(f"campaign {graph.name!r} is not deployed: nothing counted yet")
    version = session.scalar(
        select(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign.id,
            CampaignVersion.content_hash == (graph.hash or graph.content_hash()),
        )
    )
    if version is None:
        deployed = session.scalars(
            select(CampaignVersion.version)
            .where(CampaignVersion.campaign_id == campaign.id)
            .order_by(CampaignVersion.version)
        )
        raise NotDeployed(
            f"campaign {graph.name!r} is not deployed as {graph.path} writes it (deployed "
            f"versions: {', '.join(f'v{v}' for v in deployed)}): deploy it, or draw the "
            "deployed text"
        )
    return version


def _steps(session: Session, graph: StepGraph, version_id: int) -> dict[str, dict[str, int]]:
    mine = Enrollment.campaign_version_id == version_id
    steps: dict[str, dict[str, int]] = {node_id: {} for node_id in graph.nodes}

    def add(node_id: str, name: str, count: int) -> None:
        if node_id in steps:
            step = steps[node_id]
            step[name] = step.get(name, 0) + int(count)

    enrolled = session.scalar(select(func.count()).select_from(Enrollment).where(mine)) or 0
    add(graph.entry, "entered", enrolled)
    touches = (
        select(Delivery.step_id, Delivery.status, func.count())
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .where(mine)
        .group_by(Delivery.step_id, Delivery.status)
    )
    for node_id, status, count in session.execute(touches):
        if graph.nodes.get(node_id) is None or graph.nodes[node_id].kind != "send":
            continue
        if node_id != graph.entry:
            add(node_id, "entered", count)
        if status in ("sent", "deferred"):
            add(node_id, status, count)
    engaged = (
        select(Delivery.step_id, Event.type, func.count(distinct(Event.delivery_id)))
        .join(Delivery, Delivery.id == Event.delivery_id)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .where(mine, Event.type.in_(("opened", "clicked")))
        .group_by(Delivery.step_id, Event.type)
    )
    for node_id, kind, count in session.execute(engaged):
        add(node_id, kind, count)
    exits = (
        select(Enrollment.cursor, func.count())
        .where(mine, Enrollment.state == "exited")
        .group_by(Enrollment.cursor)
    )
    for node_id, count in session.execute(exits):
        add(node_id, "exits", count)
    return steps
