"""Counting conditions (`event "x" count >= 3 within 7 days`): counts that say nothing,
and counts that need a window.

A count compares a whole number of events with its number. `>= 0` holds for
every lead and `< 0` for none; `< 1`, `<= 0` and `== 0` ask for no such event,
which `not event "x"` says plainly; `>= 1`, `> 0` and `!= 0` ask for one, which
the atom alone says (a warning).

A window (`within`) is needed in the `enroll when` of a campaign that
re-enters (`reenter after`): a count of all time never falls, so once it has
held, every later event would enroll the lead again whenever the reentry time
has passed. Elsewhere a count without a window counts every event so far,
which is what it says (the MQL rule, for a lead sales returned, counts only
what happened since: `nurture.store.scoring`).

An `enroll when` count must also rise with the event that fires it: a trigger
is tried when an event arrives, so `count < 3` would enroll on the first one.
"""

from __future__ import annotations

from collections.abc import Iterator

from dsl import ast, walk
from dsl.checks.base import Context, _error, _settings, _warning
from dsl.errors import Diagnostic

_ALWAYS = {(">=", 0)}
_NEVER = {("<", 0)}
_NONE = {("<", 1), ("<=", 0), ("==", 0)}
_ANY = {(">=", 1), (">", 0), ("!=", 0)}


def check_counts(ctx: Context) -> Iterator[Diagnostic]:
    for cond in walk.all_conditions(ctx.program):
        if isinstance(cond, ast.Engagement | ast.EventCond) and cond.count is not None:
            yield from _pointless(cond.count, _atom_text(cond), cond.within)
    for campaign in ctx.program.campaigns():
        for trigger in _settings(campaign, ast.Trigger):
            if trigger.count is not None and trigger.value is not None:
                atom = f'event "{trigger.value.value}"'
                yield from _pointless(trigger.count, atom, trigger.within)
                yield from _trigger_rules(campaign, trigger, trigger.count)


def _pointless(count: ast.Count, atom: str, within: ast.Duration | None) -> Iterator[Diagnostic]:
    said, key = f"`{atom} count {count.op} {count.number}`", (count.op, count.number)
    if key in _ALWAYS:
        message = f"{said} holds for every lead: anyone has had at least 0 of them"
        yield _error("count-pointless", count.span, message, "count from 1: `count >= 1`")
    elif key in _NEVER:
        message = f"{said} holds for no lead: a count is never below 0"
        yield _error("count-pointless", count.span, message, "compare with 1 or more")
    elif key in _NONE:
        message = f"{said} asks for none of them"
        span = "" if within is None else f" within {within.amount} {within.unit.value}"
        yield _error("count-pointless", count.span, message, f"write `not {atom}{span}`")
    elif key in _ANY:
        message = f"{said} asks for one of them, as `{atom}` alone does"
        yield _warning("count-plain", count.span, message, "leave out `count ...`")


def _trigger_rules(
    campaign: ast.Campaign, trigger: ast.Trigger, count: ast.Count
) -> Iterator[Diagnostic]:
    atom = f'event "{trigger.value.value if trigger.value else ""}"'
    if count.op in ("<", "<=") and (count.op, count.number) not in _NEVER | _NONE:
        message = f"`enroll when {atom} count {count.op} {count.number}` enrolls on the first one"
        hint = "a trigger is tried when an event arrives; count up to it with `>=`"
        yield _error("count-pointless", count.span, message, hint)
    reenters = any(r.after is not None for r in _settings(campaign, ast.Reenter))
    if trigger.within is None and reenters:
        yield _no_window(count, atom)


def _no_window(count: ast.Count, atom: str) -> Diagnostic:
    message = (
        f"`{atom} count {count.op} {count.number}` needs `within`: the campaign re-enters, and "
        "a count of all time never falls, so every later event would enroll the lead again"
    )
    hint = f"say over how long, as in `{atom} count {count.op} {count.number} within 7 days`"
    return _error("count-without-window", count.span, message, hint)


def _atom_text(cond: ast.Engagement | ast.EventCond) -> str:
    if isinstance(cond, ast.EventCond):
        return f'event "{cond.name.value}"'
    parts = [cond.kind]
    if cond.link is not None:
        parts.append(f'"{cond.link.value}"')
    if cond.message is not None:
        parts.append(cond.message.value)
    return " ".join(parts)
