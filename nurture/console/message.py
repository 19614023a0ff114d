"""A touch's message, rendered again for the lead page: what the lead was sent.

Messages are not stored; a touch is rendered again from its delivery row
(channel, template, iteration), its campaign version's send step (subject,
``as`` name, the repeat around it) and the lead as it is now, with the
templates the workers read (the campaign's own ``templates/`` folder, then
``NURTURE_TEMPLATES``). Its links are given back their targets and the open
pixel is dropped (`nurture.runtime.touches.untracked`), so reading it in the
console records no open or click for the lead. A template that changed since
shows as it is now; one that is gone or fails says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsl.graph import StepGraph
from nurture.engine.loops import render_loop
from nurture.models import Campaign, CampaignVersion, Delivery, Enrollment, Lead
from nurture.render import RenderContext, Renderer, RenderError
from nurture.store.views import lead_view


@dataclass(frozen=True, slots=True)
class Shown:
    """A touch as the page shows it: the row, and the message or why there is none."""

    delivery: Delivery
    campaign: str
    subject: str = ""
    html: str = ""
    text: str = ""
    body: str = ""
    problem: str | None = None


def touches(session: Session, lead: Lead) -> list[Delivery]:
    """The lead's touches, newest first (one query)."""
    newest = Delivery.id.desc()
    return list(
        session.scalars(select(Delivery).where(Delivery.lead_id == lead.id).order_by(newest))
    )


def show(session: Session, renderer: Renderer | None, lead: Lead, delivery_id: int) -> Shown | None:
    """The lead's touch `delivery_id` rendered again; None when the lead has no such touch."""
    found = session.execute(
        select(Delivery, Campaign.name, CampaignVersion.graph)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .join(CampaignVersion, CampaignVersion.id == Enrollment.campaign_version_id)
        .join(Campaign, Campaign.id == CampaignVersion.campaign_id)
        .where(Delivery.id == delivery_id, Delivery.lead_id == lead.id)
    ).one_or_none()
    if found is None:
        return None
    delivery, campaign, graph_json = found
    if renderer is None:
        return Shown(delivery, campaign, problem="this service renders no messages")
    graph = StepGraph.from_json(graph_json)
    node = graph.nodes.get(delivery.step_id)
    subject: str | None = None
    name: str | None = None
    loop_index: int | None = None
    if node is not None and node.kind == "send":
        given, name = node.params.get("subject"), node.params.get("name")
        subject = None if given is None else str(given)
        if node.loop and node.loop in graph.nodes:
            times = max(int(graph.nodes[node.loop].params.get("times", 1)), 1)
            loop_index = delivery.iteration % times + 1
            subject = None if subject is None else render_loop(subject, loop_index, times)
    context = RenderContext(
        lead=lead_view(session, lead).fields,
        campaign=campaign,
        loop_index=loop_index,
        message_name=name,
    )
    try:
        rendered = renderer.render(
            delivery.channel,
            delivery.template,
            graph.path,
            context,
            subject,
            delivery.id,
            lead.id,
        )
    except RenderError as e:
        return Shown(delivery, campaign, problem=f"it does not render now: {e}")
    from nurture.runtime.touches import untracked  # the runtime imports the service

    rendered = untracked(rendered, renderer)
    return Shown(delivery, campaign, rendered.subject, rendered.html, rendered.text, rendered.body)
