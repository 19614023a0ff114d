"""One function per step kind: each edits the draft and says where to go next.

A step returns the id of the step to run now, or a `Decision` when the
enrollment waits, ends or exits. Steps run only after the exit checks passed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from dsl.graph import Node
from nurture.engine.actions import (
    Decision,
    Deferred,
    EmitMql,
    EnrollInto,
    NotifySales,
    Score,
    Send,
    Suppressed,
    Tag,
    Untag,
)
from nurture.engine.calendar import local_instant, next_weekday_at, parse_hhmm, wait_zone
from nurture.engine.draft import Draft, Outcome
from nurture.engine.loops import (
    enter_repeat,
    in_round,
    iteration_key,
    iteration_number,
    pick_arm,
)
from nurture.engine.predicates import SCORE, STAGE, TAGS
from nurture.engine.scoring import is_mql_or_beyond
from nurture.engine.state import (
    Delivered,
    WaitingFor,
    positional_builder,
    with_score_delta,
    with_stage,
    with_tags,
)

_new_send = positional_builder(Send)
_new_delivered = positional_builder(Delivered)
_new_waiting = positional_builder(WaitingFor)


def send(draft: Draft, node: Node) -> Outcome:
    """Send now, or park at this step until the window and caps allow it; on a channel
    closed for this lead, record the touch as withheld and go on to the next step."""
    if draft.lead.closed and str(node.params["channel"]) in draft.lead.closed:
        return _withheld(draft, node)
    when, why = draft.send_time()
    if when > draft.now:
        draft.actions.append(Deferred(node.id, when, why or "cap"))
        return draft.park(when)
    touch = _touch(draft, node)
    draft.actions.append(touch)
    delivered = _new_delivered(node.id, touch.iteration, draft.now, touch.iteration_no)
    draft.record_send(node.id, delivered)
    return draft.then(node)


def _withheld(draft: Draft, node: Node) -> Outcome:
    """Only this channel is closed for the lead: a withheld touch, and the flow goes on (no
    window or cap waits for a message that will not go out)."""
    touch = _touch(draft, node)
    why = f"{touch.channel} is closed for this lead: {draft.lead.closed[touch.channel]}"
    draft.actions.append(
        Suppressed(node.id, touch.channel, touch.template, touch.iteration, why, True)
    )
    return draft.then(node)


def _touch(draft: Draft, node: Node) -> Send:
    p, graph, loops = node.params, draft.graph, draft.loops
    subject = p.get("subject")
    if not node.loop:  # outside any repeat: nothing to render, iteration "" (0)
        text = None if subject is None else str(subject)
        return _new_send(
            node.id, str(p["channel"]), str(p["template"]), text, p.get("name"), "", 0, None
        )
    return Send(
        node_id=node.id,
        channel=str(p["channel"]),
        template=in_round(graph, node, loops, str(p["template"])),
        subject=None if subject is None else in_round(graph, node, loops, str(subject)),
        name=p.get("name"),
        iteration=iteration_key(graph, node, loops),
        iteration_no=iteration_number(graph, node, loops),
        loop_index=loops.get(node.loop),
    )


def wait(draft: Draft, node: Node) -> Outcome:
    target = draft.then(node)
    seconds = float(node.params.get("seconds") or 0)
    if isinstance(target, Decision) or seconds <= 0:
        return target
    draft.cursor = target
    return draft.park(draft.now + timedelta(seconds=seconds))


def wait_until(draft: Draft, node: Node) -> Outcome:
    """The next such weekday and time, strictly after now; a past date goes straight on."""
    p = node.params
    target = draft.then(node)
    tz, at = wait_zone(draft.lead, draft.graph.window), parse_hhmm(str(p.get("time") or "0:00"))
    if p.get("date"):
        when = local_instant(date.fromisoformat(str(p["date"])), at, tz)
    else:
        weekday = p.get("weekday")
        when = next_weekday_at(draft.now, None if weekday is None else int(weekday), at, tz)
    if isinstance(target, Decision) or when <= draft.now:
        return target
    draft.cursor = target
    return draft.park(when)


def branch(draft: Draft, node: Node) -> Outcome:
    """Yes or no now; with `within`, yes as soon as true, else timeout at the deadline."""
    cond, within = draft.plan.branch(node)
    otherwise = ("timeout", "no")
    if within is None:
        holds = draft.holds(cond) is True
        return draft.follow(node, "yes") if holds else draft.follow(node, *otherwise)
    parked = draft.waiting if draft.waiting and draft.waiting.node == node.id else None
    since = parked.since if parked else draft.now
    deadline = since + within
    if draft.holds(cond, since) is True:
        return draft.follow(node, "yes")
    if draft.now >= deadline:
        return draft.follow(node, *otherwise)
    return draft.park(deadline, _new_waiting(node.id, since, deadline))


def split(draft: Draft, node: Node) -> Outcome:
    if not node.edges:
        return draft.then(node)
    return pick_arm(node.edges, draft.lead.id, draft.graph.name, node.id).target


def repeat(draft: Draft, node: Node) -> Outcome:
    return draft.follow(node, enter_repeat(node, draft.counters()), "next")


def tag(draft: Draft, node: Node) -> Outcome:
    name = str(node.params["tag"])
    draft.actions.append(Tag(name))
    draft.edit_lead(with_tags(draft.lead, draft.lead.tags | {name}), TAGS)
    return draft.then(node)


def untag(draft: Draft, node: Node) -> Outcome:
    name = str(node.params["tag"])
    draft.actions.append(Untag(name))
    draft.edit_lead(with_tags(draft.lead, draft.lead.tags - {name}), TAGS)
    return draft.then(node)


def score(draft: Draft, node: Node) -> Outcome:
    delta = node.params.get("delta") or 0
    draft.actions.append(Score(delta))
    draft.edit_lead(with_score_delta(draft.lead, draft.lead.score_delta + delta), SCORE)
    return draft.then(node)


def enroll(draft: Draft, node: Node) -> Outcome:
    draft.actions.append(EnrollInto(str(node.params["campaign"])))
    return draft.then(node)


def notify(draft: Draft, node: Node) -> Outcome:
    """Tell sales; inside a repeat the template name renders `{{ loop.* }}`, as a send's does."""
    graph, loops = draft.graph, draft.loops
    template = in_round(graph, node, loops, str(node.params["template"]))
    if not node.loop:
        draft.actions.append(NotifySales(template, node.id, 0))
    else:
        number, index = iteration_number(graph, node, loops), loops.get(node.loop)
        draft.actions.append(NotifySales(template, node.id, number, index))
    return draft.then(node)


def mql(draft: Draft, node: Node) -> Outcome:
    """Emit an MQL unless the lead is already MQL or further (this decision included)."""
    if not is_mql_or_beyond(draft.lead.stage):
        draft.actions.append(EmitMql(f'campaign "{draft.graph.name}" step {node.id}'))
        draft.edit_lead(with_stage(draft.lead, "mql"), STAGE)
    return draft.then(node)


def exit_step(draft: Draft, node: Node) -> Outcome:
    return draft.exit("exit step")


def end(draft: Draft, node: Node) -> Outcome:
    return draft.finish("done")


HANDLERS: dict[str, Callable[[Draft, Node], Outcome]] = {
    "send": send,
    "wait": wait,
    "wait_until": wait_until,
    "branch": branch,
    "split": split,
    "repeat": repeat,
    "tag": tag,
    "untag": untag,
    "score": score,
    "enroll": enroll,
    "notify": notify,
    "mql": mql,
    "exit": exit_step,
    "end": end,
}
