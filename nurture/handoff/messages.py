"""A notice's message: the routing's template over the lead's story, for its channel.

The template sees the lead, its owner, the MQL (cause, rule, reason, scores,
deadline), the timeline, the tags and the signed accept / return links; the
message goes by email to the owner, as signed JSON to the CRM webhook
(``NURTURE_CRM_WEBHOOK_URL``), or to the owner's WeCom id (``NURTURE_WECOM_URL``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels import OutboundMessage
from nurture.config import Settings
from nurture.handoff.route import members
from nurture.handoff.story import story
from nurture.models import Assignment, Lead, LifecycleTransition, MqlRecord, Notice
from nurture.render import Renderer, RenderError, lead_values
from nurture.store.views import lead_view

LINKS: Final = ("accept", "return")


class NoticeError(Exception):
    """Raised when a notice cannot be built: no template, no address, a render error."""


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    """What a notice's message is made of, read from the database; rendered by `message_of`
    with no transaction open (a template may take ``NURTURE_RENDER_SECONDS``)."""

    id: int
    channel: str
    template: str
    owner: str
    values: dict[str, Any]


def outbound(
    session: Session,
    notice: Notice,
    routing: Mapping[str, Any],
    renderer: Renderer,
    settings: Settings,
    now: datetime,
) -> OutboundMessage:
    """The message of one notice at `now`; `NoticeError` says why there is none."""
    drafted = draft(session, notice, routing, renderer, settings, now)
    return message_of(drafted, routing, renderer, settings)


def draft(
    session: Session,
    notice: Notice,
    routing: Mapping[str, Any],
    renderer: Renderer,
    settings: Settings,
    now: datetime,
) -> NoticeDraft:
    """What the message of one notice at `now` is made of; `NoticeError` if the lead is gone."""
    assignment = session.get(Assignment, notice.assignment_id)
    lead = session.get(Lead, notice.lead_id)
    if assignment is None or lead is None:
        raise NoticeError("the lead is gone")
    mql = assignment.mql_id
    record = None if mql is None else session.get(MqlRecord, mql)
    values = template_values(session, lead, record, assignment, routing, renderer, settings, now)
    return NoticeDraft(notice.id, notice.channel, notice.template, notice.owner, values)


def message_of(
    notice: NoticeDraft, routing: Mapping[str, Any], renderer: Renderer, settings: Settings
) -> OutboundMessage:
    """The message of a drafted notice; `NoticeError` says why there is none."""
    near = str(Path(str(routing.get("path") or "routing.nurture")))
    channel = "webhook" if notice.channel == "wecom" else notice.channel
    try:
        rendered = renderer.render_notice(notice.channel, notice.template, near, notice.values)
    except RenderError as e:
        raise NoticeError(f"render failed: {e}") from e
    headers = {"X-Nurture-Notice": str(notice.id)}
    message_id = f"<notice-{notice.id}@{settings.sender_domain()}>"
    if notice.channel == "email":
        return OutboundMessage(
            "email",
            notice.owner,
            message_id,
            rendered.subject,
            rendered.html,
            rendered.text,
            headers=headers,
        )
    body = json.loads(rendered.body)
    if notice.channel == "wecom":
        member = members(routing).get(notice.owner)
        if member is None or not member.wecom:
            raise NoticeError(f"{notice.owner} has no wecom id in the routing file")
        url = settings.wecom_url
        if not isinstance(body, dict):
            raise NoticeError(f"{notice.template}.wecom.j2 must render a JSON object")
        body = {**body, "touser": member.wecom}
    else:
        url = settings.crm_webhook_url
    if not url:
        setting = "NURTURE_WECOM_URL" if notice.channel == "wecom" else "NURTURE_CRM_WEBHOOK_URL"
        raise NoticeError(f"no address for {notice.channel} notices: set {setting}")
    return OutboundMessage(channel, url, message_id, body=body, headers=headers)


def template_values(
    session: Session,
    lead: Lead,
    record: MqlRecord | None,
    assignment: Assignment,
    routing: Mapping[str, Any],
    renderer: Renderer,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """What a notice's template sees: `lead`, `owner`, `mql`, `timeline`, `notes`, `links`.

    A lead given to its account's owner (no MQL) has the assignment's cause and
    the lead's scores under `mql`, and no links: there is nothing to accept.
    """
    told = story(session, lead, now)
    member = members(routing).get(assignment.owner or "")
    link = f"{settings.base_url.rstrip('/')}/s/{renderer.signer.answer_token(assignment.id)}"
    links = {"accept": link, "return": link + "#return"} if record else dict.fromkeys(LINKS, "")
    scores = told["scores"]
    mql = {
        "cause": assignment.cause,
        "rule": "",
        "reason": assignment.reason,
        "at": assignment.at.isoformat(),
        "fit": scores["fit"],
        "interest": scores["interest"],
        "grade": scores["grade"] or "",
        "because": scores["because"],
        "sla_due_at": "",
    }
    if record is not None:
        mql.update(
            cause=_cause(session, lead.id, record) or record.rule,
            rule=record.rule,
            at=record.at.isoformat(),
            fit=record.fit,
            interest=round(record.interest, 2),
            grade=record.grade or "",
            sla_due_at=record.sla_due_at.isoformat() if record.sla_due_at else "",
        )
    return {
        "lead": lead_values(lead_view(session, lead).fields),
        "owner": {"email": assignment.owner, "name": (member and member.name) or assignment.owner},
        "mql": mql,
        "timeline": told["timeline"],
        "notes": told["notes"],
        "links": links,
    }


def _cause(session: Session, lead_id: int, record: MqlRecord) -> str | None:
    """What made the lead an MQL, as its stage change to ``mql`` says."""
    return session.scalar(
        select(LifecycleTransition.cause)
        .where(
            LifecycleTransition.lead_id == lead_id,
            LifecycleTransition.to_stage == "mql",
            LifecycleTransition.at <= record.at,
        )
        .order_by(LifecycleTransition.at.desc(), LifecycleTransition.id.desc())
        .limit(1)
    )
