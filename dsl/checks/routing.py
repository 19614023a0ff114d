"""The sales handoff: teams and their members, routing rules, the SLA, notifications, reasons."""

from __future__ import annotations

from collections.abc import Iterator

from dsl import ast, walk
from dsl import vocabulary as voc
from dsl.checks.base import (
    Context,
    _did_you_mean,
    _error,
    _keyword,
    _repeats,
    _unknown,
    _warning,
)
from dsl.errors import Diagnostic

MAX_MEMBER_NUMBER = 1_000_000
"""The largest `weight` or daily `cap`: both are stored as database integers."""

_TEAM_TARGETS = ("team", "round_robin")


def check_teams(ctx: Context) -> Iterator[Diagnostic]:
    teams = ctx.program.teams()
    for word, first in _repeats(team.name for team in teams):
        message = f'team "{word.value}" is defined twice'
        hint = f"the first is at {first.span.path}:{first.span.line}; merge their members"
        yield _error("duplicate-team", word.span, message, hint)
    for team in teams:
        if not team.members:
            message = f'team "{team.name.value}" has no members'
            hint = 'add indented lines such as `member "name@example.com"` below it'
            yield _error("empty-team", team.name.span, message, hint)
        for word, first in _repeats(member.email for member in team.members):
            message = f'"{word.value}" is a member of team "{team.name.value}" twice'
            hint = f"the first is on line {first.span.line}; keep one"
            yield _error("duplicate-member", word.span, message, hint)
        for member in team.members:
            yield from _member_options(member)


def _member_options(member: ast.Member) -> Iterator[Diagnostic]:
    seen: dict[str, ast.MemberOption] = {}
    for option in member.options:
        first = seen.setdefault(option.kind, option)
        if first is not option:
            message = f"`{option.kind}` is given twice for this member"
            hint = f"the first is at column {first.span.column}; keep one"
            yield _error("bad-member", _keyword(option.span, option.kind), message, hint)
        if option.kind in ("weight", "cap"):
            yield from _member_number(option)


def _member_number(option: ast.MemberOption) -> Iterator[Diagnostic]:
    digits = option.value.value
    # Compared as text first: `int()` refuses numbers of thousands of digits.
    number = int(digits) if len(digits) <= len(str(MAX_MEMBER_NUMBER)) else MAX_MEMBER_NUMBER + 1
    if not 1 <= number <= MAX_MEMBER_NUMBER:
        what = "a weight" if option.kind == "weight" else "a daily cap"
        shown = digits if len(digits) <= 20 else f"{digits[:8]}... ({len(digits):,} digits)"
        message = f"{what} of {shown} is not possible"
        hint = f"use a whole number from 1 to {MAX_MEMBER_NUMBER:,}"
        if number == 0 and option.kind == "weight":
            hint += "; to stop assigning to someone, remove them or mark them away"
        yield _error("bad-member", option.value.span, message, hint)
    if option.per is not None and option.per.value != "day":
        message = f"a member's cap is per day, not per `{option.per.value}`"
        yield _error("bad-member", option.per.span, message, f"write `cap {digits} per day`")


def check_routing(ctx: Context) -> Iterator[Diagnostic]:
    teams = {team.name.value for team in ctx.program.teams()}
    members = {m.email.value for team in ctx.program.teams() for m in team.members}
    for routing in ctx.program.routings():
        yield from _rules(routing, teams, members)
        yield from _repeated_lines(routing)
        for sla in routing.sla:
            yield from _sla(sla, routing, members)
        yield from _reminders(routing)
        yield from _notifications(routing)
        for reasons in routing.reasons:
            for word, first in _repeats(reasons.reasons):
                message = f'the return reason "{word.value}" is listed twice'
                hint = f"the first is at column {first.span.column}; remove one"
                yield _warning("duplicate-return-reason", word.span, message, hint)


def _rules(routing: ast.Routing, teams: set[str], members: set[str]) -> Iterator[Diagnostic]:
    otherwise: ast.Assign | None = None
    for rule in routing.rules:
        if otherwise is not None:
            message = "this rule can never run: the `otherwise` rule above it always matches"
            hint = f"move it above line {otherwise.span.line}, or remove it"
            yield _error("rule-after-otherwise", _keyword(rule.span, "assign"), message, hint)
        elif rule.cond is None:
            otherwise = rule
        if rule.team is None:
            continue
        if rule.target in _TEAM_TARGETS and rule.team.value not in teams:
            yield _unknown_team(rule.team, teams)
        elif rule.target == "user" and rule.team.value not in members:
            yield _unknown_member(rule.team, members)


def _unknown_team(word: ast.Word, teams: set[str]) -> Diagnostic:
    declare = f'declare it: `team "{word.value}"` with a `member "..."` line below'
    return _unknown("unknown-team", "team", word, sorted(teams), declare)


def _unknown_member(word: ast.Word, members: set[str]) -> Diagnostic:
    declare = f'add `member "{word.value}"` to a team'
    # Addresses at one domain look alike: compare the parts before the @ among those.
    local, at, domain = word.value.rpartition("@")
    same = {m.rpartition("@")[0]: m for m in members if at and m.rpartition("@")[2] == domain}
    found = voc.suggest(local, same) if same else None
    hint = f"did you mean `{same[found]}`?" if found else None
    hint = hint or _did_you_mean(word.value, members - set(same.values()), declare)
    message = f'"{word.value}" is a member of no team'
    return _error("unknown-member", word.span, message, hint)


def _repeated_lines(routing: ast.Routing) -> Iterator[Diagnostic]:
    lines: tuple[tuple[str, tuple[ast.Sla | ast.Remind | ast.ReturnReasons, ...]], ...] = (
        ("accept", routing.sla),
        ("remind", routing.reminders),
        ("return", routing.reasons),
    )
    for word, found in lines:
        for line in found[1:]:
            message = f"a second `{word}` line in the routing block"
            hint = f"the first is on line {found[0].span.line}; keep one"
            yield _error("duplicate-routing-line", _keyword(line.span, word), message, hint)


def _sla(sla: ast.Sla, routing: ast.Routing, members: set[str]) -> Iterator[Diagnostic]:
    action = sla.action.value
    if action not in voc.SLA_ACTIONS:
        yield _unknown("unknown-sla-action", "action", sla.action, voc.SLA_ACTIONS)
        return
    if sla.then is not None and (sla.then.value != "escalate" or action != "reassign"):
        message = f"`else {action}, then {sla.then.value}` is not an SLA action"
        hint = 'write `else reassign, then escalate to user "..."`'
        yield _error("unknown-sla-action", sla.then.span, message, hint)
    elif sla.then is None and sla.escalate_to is not None and action != "escalate":
        message = f"`else {action} to user` is not an SLA action"
        hint = 'write `else escalate to user "..."` or `else reassign, then escalate to user "..."`'
        yield _error("unknown-sla-action", sla.action.span, message, hint)
    if sla.escalate_to is not None and sla.escalate_to.value not in members:
        yield _unknown_member(sla.escalate_to, members)
    if action == "escalate" and sla.escalate_to is None:
        message = "`else escalate` names nobody to escalate to"
        hint = 'write `else escalate to user "..."` with a team member'
        yield _error("sla-without-target", sla.action.span, message, hint)
    teams = any(rule.target in _TEAM_TARGETS for rule in routing.rules)
    if action == "reassign" and not teams and sla.escalate_to is None:
        message = "`else reassign` has nobody to reassign to: no rule assigns to a team"
        hint = 'assign to a team, or add `, then escalate to user "..."`'
        yield _error("sla-without-target", sla.action.span, message, hint)


def _reminders(routing: ast.Routing) -> Iterator[Diagnostic]:
    if not routing.reminders:
        return
    remind = routing.reminders[0]
    if not routing.sla:
        message = "`remind ... before` has no deadline: the routing has no `accept within`"
        hint = "add `accept within 24 hours else ...`, or remove the reminder"
        yield _error("bad-remind", _keyword(remind.span, "remind"), message, hint)
        return
    before, within = walk.seconds(remind.before), walk.seconds(routing.sla[0].within)
    if before is not None and within is not None and before >= within:
        accept = routing.sla[0].within
        message = (
            f"`remind {remind.before.amount} {remind.before.unit.value} before` is not"
            f" shorter than `accept within {accept.amount} {accept.unit.value}`"
        )
        hint = "remind less long before the deadline than the whole time to accept"
        yield _error("bad-remind", remind.before.span, message, hint)


def _notifications(routing: ast.Routing) -> Iterator[Diagnostic]:
    for note in routing.notify:
        if note.channel.value not in voc.NOTIFY_CHANNELS:
            yield _unknown("unknown-channel", "channel", note.channel, voc.NOTIFY_CHANNELS)


def check_unused_teams(ctx: Context) -> Iterator[Diagnostic]:
    used: set[str] = set()
    users: set[str] = set()
    for routing in ctx.program.routings():
        for rule in routing.rules:
            if rule.team is not None:
                (users if rule.target == "user" else used).add(rule.team.value)
        users.update(s.escalate_to.value for s in routing.sla if s.escalate_to is not None)
    for team in ctx.program.teams():
        if team.name.value in used or any(m.email.value in users for m in team.members):
            continue
        if not team.members:
            continue  # empty-team says enough
        message = f'team "{team.name.value}" is not used by any routing rule or escalation'
        hint = f'route to it (`assign to team "{team.name.value}" when ...`), or remove it'
        yield _warning("unused-team", team.name.span, message, hint)
