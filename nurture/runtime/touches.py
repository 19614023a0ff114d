"""The touches of a decision: what to send, to whom, rendered into an outbound message.

A `Send` (or a ``notify sales``) becomes a `Touch` under the delivery key
(enrollment, step, iteration). `Messages` renders it with the process's
`Renderer` and builds the channel's `OutboundMessage`: the Message-ID from the
key, the VERP return path from the delivery id (``NURTURE_BOUNCE_DOMAIN``),
``List-Unsubscribe`` from the rendered unsubscribe URL, the tracked
links to store with the delivery. A touch with no address or a template that
does not render is a permanent failure before any channel is called. A
notification for sales carries no tracking (`untracked`): a salesperson
reading it must not count as the lead opening or clicking.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from channels import OutboundMessage, Receipt
from dsl.graph import StepGraph
from nurture.config import Settings
from nurture.deliverability.esp import outgoing
from nurture.deliverability.verp import verp_of
from nurture.engine import Decision, NotifySales, Send
from nurture.render import RenderContext, RenderedMessage, Renderer, RenderError
from nurture.runtime.handover import Handoff
from nurture.runtime.keys import Key, message_id
from nurture.runtime.loading import Item
from nurture.tracking.links import stored_links

if TYPE_CHECKING:
    from nurture.runtime.throttling import Wait

ADDRESSES: Final = {"email": "email", "sms": "phone", "wechat": "messaging_id"}
"""The lead field each channel sends to (webhooks go to ``NURTURE_WEBHOOK_URL``)."""
MISSING_ADDRESS: Final = {
    "email": "email address",
    "sms": "phone number",
    "wechat": "WeChat openid (messaging_id)",
}
OUTBOX_WEBHOOK: Final = "outbox:webhook"
"""The `to` of a webhook written to the outbox because ``NURTURE_WEBHOOK_URL`` is not set."""


@dataclass(slots=True)
class Touch:
    """One message of a decision: its key, what to render, and what became of it."""

    key: Key
    channel: str
    template: str
    subject: str | None
    name: str | None
    loop_index: int | None
    notify: bool = False
    delivery_id: int = 0
    attempts: int = 1
    message: OutboundMessage | None = None
    """The rendered message (None: not rendered, or it cannot be sent)."""
    links: list[dict[str, Any]] | None = None
    """Its tracked links, stored with its row before it is sent."""
    receipt: Receipt | None = None
    """The channel's answer, or the failure found before sending (no address, bad template);
    None after sending: it was not handed to the channel."""
    failed_early: bool = False
    """Failed before sending; its row already says so."""
    exists: bool = False
    """Its row was written by an earlier job (deferred, or never handed over)."""
    handoff: Handoff | None = None
    """Its handover mark and answer, once it is sent (`nurture.runtime.handover`)."""
    throttled: Wait | None = None
    """Held back, not sent: its receiving domain's rate is reached (`runtime.throttling`)."""


@dataclass(slots=True)
class Plan:
    """One enrollment of a batch: the decision (None: held) and its touches."""

    item: Item
    decision: Decision | None
    touches: list[Touch] = field(default_factory=list)
    took: tuple[tuple[str, str], ...] = ()
    """The ways the decision took out of steps with several (`nurture.runtime.edges`)."""


class Messages:
    """Renders touches into outbound messages; one per process, shared by its threads."""

    def __init__(self, renderer: Renderer, settings: Settings) -> None:
        self.renderer = renderer
        self.settings = settings
        self.domain = settings.sender_domain()
        self.secret = settings.secret_keys()[-1]
        self.esp = outgoing.provider(settings.smtp_url, settings.smtp_esp)
        self.verp = verp_of(settings)

    def row(self, item: Item, touch: Touch, now: datetime) -> dict[str, Any]:
        """The delivery row of `touch`, ``pending``, before anything is sent."""
        return delivery_row(item, touch, now, self.domain, self.secret)

    def build(
        self, item: Item, touch: Touch
    ) -> Receipt | tuple[OutboundMessage, list[dict[str, Any]] | None]:
        """The outbound message and its links to store, or why it cannot be sent."""
        to = self._address(item, touch)
        if to is None:
            return Receipt.permanent(self._nowhere(item, touch))
        context = RenderContext(
            lead=item.view.fields,
            campaign=item.version.campaign,
            loop_index=touch.loop_index,
            message_name=touch.name,
        )
        try:
            rendered = self.renderer.render(
                touch.channel,
                touch.template,
                item.graph.path,
                context,
                touch.subject,
                touch.delivery_id,
                item.lead.id,
            )
        except RenderError as e:
            return Receipt.permanent(f"render failed: {e}")
        if touch.notify:
            rendered = untracked(rendered, self.renderer)
        try:
            message = self._outbound(item, touch, to, rendered)
        except ValueError as e:
            return Receipt.permanent(f"cannot build the {touch.channel} message: {e}")
        links = stored_links(rendered.links) if rendered.links else None
        return message, links

    def _address(self, item: Item, touch: Touch) -> str | None:
        if touch.notify:
            owner = item.lead.owner
            return owner if owner and "@" in owner else self.settings.sales_email
        if touch.channel == "webhook":
            if self.settings.webhook_url is None and self.settings.smtp_url is None:
                return OUTBOX_WEBHOOK  # the embedded mode writes it to the outbox
            return self.settings.webhook_url
        column = ADDRESSES.get(touch.channel)
        value = getattr(item.lead, column) if column else None
        return str(value) if value else None

    @staticmethod
    def _nowhere(item: Item, touch: Touch) -> str:
        """Why `touch` has no recipient, as a sentence."""
        lead = item.lead.id
        if touch.notify:
            return (
                f"lead {lead} has no owner with an email address and NURTURE_SALES_EMAIL is not "
                f"set: nowhere to send its sales {touch.channel}"
            )
        if touch.channel == "webhook":
            return f"NURTURE_WEBHOOK_URL is not set: nowhere to post the webhook of lead {lead}"
        return f"lead {lead} has no {MISSING_ADDRESS.get(touch.channel, 'address')}"

    def _outbound(
        self, item: Item, touch: Touch, to: str, rendered: RenderedMessage
    ) -> OutboundMessage:
        body: Any = None
        if touch.channel == "wechat":
            body = json.loads(rendered.body)
        elif touch.channel != "email":
            body = rendered.body
        return OutboundMessage(
            channel=touch.channel,
            to=to,
            message_id=message_id(touch.key, self.domain, self.secret),
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            body=body,
            headers={
                "X-Nurture-Delivery": str(touch.delivery_id),
                **outgoing.headers(self.esp, touch.delivery_id),
            },
            metadata={
                "lead": str(item.lead.id),
                "delivery": str(touch.delivery_id),
                "campaign": item.version.campaign,
                "step": touch.key.step,
            },
            unsubscribe_url=None if touch.notify else rendered.unsubscribe_url,
            return_path=self._return_path(touch),
        )

    def _return_path(self, touch: Touch) -> str | None:
        """The delivery's VERP address for a lead's email (a sales notice bounces as before)."""
        if self.verp is None or touch.channel != "email" or touch.notify:
            return None
        return self.verp.address(touch.delivery_id)


def delivery_row(
    item: Item, touch: Touch, now: datetime, domain: str, secret: str
) -> dict[str, Any]:
    """The delivery row of `touch`: its key, its Message-ID (`keys.message_id`), ``pending``."""
    return {
        "id": touch.delivery_id,
        "enrollment_id": touch.key.enrollment,
        "step_id": touch.key.step,
        "iteration": touch.key.iteration,
        "lead_id": item.lead.id,
        "channel": touch.channel,
        "template": touch.template,
        "status": "pending",
        "message_id": message_id(touch.key, domain, secret),
        "attempts": 1,
        "created_at": now,
    }


def touch_for(item: Item, action: object) -> Touch | None:
    """The touch an action asks for: a `Send`, or the email of a `NotifySales`."""
    if isinstance(action, Send):
        key = Key(item.id, action.node_id, action.iteration_no)
        return Touch(
            key,
            action.channel,
            action.template,
            action.subject,
            action.name,
            action.loop_index,
        )
    if isinstance(action, NotifySales):
        node = action.node_id or _notify_node(item.graph, action.template)
        key = Key(item.id, node, action.iteration_no)
        return Touch(key, "email", action.template, None, None, action.loop_index, notify=True)
    return None


def _notify_node(graph: StepGraph, template: str) -> str:
    for node in graph.nodes.values():
        if node.kind == "notify" and node.params.get("template") == template:
            return node.id
    return f"notify:{template}"


_CLICK = re.compile(r"/c/([A-Za-z0-9_\-.]+)")
_PIXEL = re.compile(r'<img src="[^"]*/o/[A-Za-z0-9_\-.]+"[^>]*>')


def untracked(rendered: RenderedMessage, renderer: Renderer) -> RenderedMessage:
    """A message for sales: links back to their targets and no open pixel, so a salesperson
    reading it records nothing for the lead."""
    base = re.escape(renderer.base_url)
    pattern = re.compile(base + _CLICK.pattern)

    def original(match: re.Match[str]) -> str:
        try:
            _delivery, index = renderer.signer.read_click(match.group(1))
        except Exception:
            return match.group(0)
        links = rendered.links
        return links[index].url if 0 <= index < len(links) else match.group(0)

    html = _PIXEL.sub("", pattern.sub(original, rendered.html))
    text = pattern.sub(original, rendered.text)
    return RenderedMessage(rendered.subject, html, text, rendered.body, (), "")
