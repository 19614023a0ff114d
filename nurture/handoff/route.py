"""Who gets an MQL: the routing rules over the lead and the desk, as a pure function.

Rules run top to bottom, the first that holds and finds somebody available
wins. `to owner` is the lead's owner (or its account's); `to user` that
member; `to team` the available member with the fewest open MQLs;
`round robin team` weighted round robin over available members, by the
turns stored in the database. A member away or at their daily cap is not
available; a rule that finds nobody is passed over, and the words say why.
When no rule assigns, the SLA's escalation user (if any) gets the MQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from dsl.draw import describe_condition
from nurture.engine.conditions import Context, evaluate
from nurture.engine.state import Event, LeadView

LABEL_WIDTH: Final = 60
"""A rule's condition is shortened to this many characters in a reason."""


@dataclass(frozen=True, slots=True)
class Member:
    """A salesperson as the routing file declares them."""

    email: str
    name: str | None = None
    weight: int = 1
    daily_cap: int | None = None
    wecom: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Desk:
    """The sales floor right now: who is away, what each member holds, round robin turns."""

    away: frozenset[str] = frozenset()
    today: Mapping[str, int] = field(default_factory=dict)
    """MQLs assigned to each member today (for daily caps)."""
    open: Mapping[str, int] = field(default_factory=dict)
    """MQLs each member holds and has not answered yet."""
    turns: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Round robin turns by (team, member)."""


@dataclass(frozen=True, slots=True)
class Choice:
    """Who gets the MQL and why; `owner` None when nobody could be assigned."""

    owner: str | None
    how: str
    """``owner``, ``user``, ``team``, ``round_robin``, ``escalation`` or ``none``."""
    reason: str
    team: str | None = None
    rule: int | None = None


def teams(routing: Mapping[str, Any] | None) -> dict[str, tuple[Member, ...]]:
    """The routing's teams and their members, in the order written."""
    found: dict[str, tuple[Member, ...]] = {}
    for name, members in ((routing or {}).get("teams") or {}).items():
        found[name] = tuple(_member(m) for m in members)
    return found


def _member(data: Mapping[str, Any]) -> Member:
    return Member(
        email=str(data["email"]).lower(),
        name=data.get("name"),
        weight=int(data.get("weight") or 1),
        daily_cap=data.get("daily_cap"),
        wecom=data.get("wecom"),
        phone=data.get("phone"),
    )


def members(routing: Mapping[str, Any] | None) -> dict[str, Member]:
    """Every declared member by address (the first declaration of one in several teams)."""
    found: dict[str, Member] = {}
    for team in teams(routing).values():
        for member in team:
            found.setdefault(member.email, member)
    return found


def choose(
    routing: Mapping[str, Any],
    lead: LeadView,
    events: Sequence[Event],
    now: datetime,
    desk: Desk,
    *,
    account_owner: str | None = None,
) -> Choice:
    """The owner the routing gives `lead` at `now`, with the reason in words."""
    holds = holding(routing, lead, events, now)
    return choose_by(routing, holds, lead.field("owner"), desk, account_owner=account_owner)


def holding(
    routing: Mapping[str, Any], lead: LeadView, events: Sequence[Event], now: datetime
) -> tuple[bool, ...]:
    """Whether each rule's condition holds for `lead` at `now` (no condition: it holds).

    This is all of the lead that routing looks at besides its owner, so a dry run
    can keep it and let the desk choose later (`choose_by`).
    """
    context = Context(lead, events, now)
    return tuple(
        rule.get("when") is None or bool(evaluate(rule["when"], context))
        for rule in routing.get("rules") or ()
    )


def choose_by(
    routing: Mapping[str, Any],
    holds: Sequence[bool],
    owner: Any,
    desk: Desk,
    *,
    account_owner: str | None = None,
) -> Choice:
    """`choose` with the rules' conditions already evaluated (`holding`) and the lead's owner."""
    crew = teams(routing)
    passed: list[str] = []
    for number, written in enumerate(routing.get("rules") or (), start=1):
        if not holds[number - 1]:
            continue
        rule = _rule(written, number)
        label = _label(rule)
        chosen, how, team, words = _apply(rule, owner, crew, desk, account_owner)
        if chosen is None:
            passed.append(f"{label}: {words}")
            continue
        reason = "; ".join([*passed, f"{label} → {words}"])
        return Choice(chosen, how, reason, team, int(rule["number"]))
    why = "; ".join(passed) if passed else "no routing rule held"
    return escalation(routing, desk, why) or Choice(None, "none", f"{why}; nobody assigned")


def after_deadline(
    routing: Mapping[str, Any],
    owner: str | None,
    team: str | None,
    team_way: str,
    had: frozenset[str],
    desk: Desk,
    again: Callable[[], Choice],
) -> Choice | None:
    """Who an MQL goes to when `owner` let its SLA run out, or None when nobody is left.

    ``reassign``: an MQL nobody held goes through the rules again (`again`);
    one of a team to its next available member who has not had it (by
    `team_way`: round robin or fewest open); then, as for ``escalate``, the
    escalation user, unless they had it already.
    """
    reassigning = (routing.get("sla") or {}).get("action") == "reassign"
    if reassigning:
        if owner is None:
            found = again()
            if found.owner is not None and found.owner not in had:
                return found
        elif team is not None:
            crew = teams(routing).get(team, ())
            member = pick(team_way, team, crew, desk, exclude=had)
            if member is not None:
                way = "round robin" if team_way == "round_robin" else "fewest open leads"
                reason = f"team {team} → {member}, {way}, after {', '.join(sorted(had))}"
                return Choice(member, team_way, reason, team)
    why = "nobody left to reassign to" if reassigning else "the SLA escalates"
    chosen = escalation(routing, desk, why)
    if chosen is None or chosen.owner in had:
        return None
    return chosen


def _rule(rule: Mapping[str, Any], number: int) -> dict[str, Any]:
    """A compiled rule with its number and user, also as routing deployed before teams
    existed wrote it (no number; a user's address under ``team``)."""
    rule = {"number": number, **rule}
    if rule.get("assign") == "user" and not rule.get("user"):
        rule["user"], rule["team"] = rule.get("team"), None
    return rule


def _label(rule: Mapping[str, Any]) -> str:
    when = rule.get("when")
    said = "otherwise" if when is None else describe_condition(when)
    if len(said) > LABEL_WIDTH:
        said = said[: LABEL_WIDTH - 1] + "…"
    return f"rule {rule['number']} ({said})"


def _apply(
    rule: Mapping[str, Any],
    lead_owner: Any,
    crew: Mapping[str, tuple[Member, ...]],
    desk: Desk,
    account_owner: str | None,
) -> tuple[str | None, str, str | None, str]:
    """(owner or None, how, team, words) for one rule that holds."""
    how = str(rule["assign"])
    if how == "owner":
        owner = lead_owner or account_owner
        if not owner:
            return None, how, None, "the lead has no owner yet"
        owner = str(owner).lower()
        if not _free(owner, desk, None):
            return None, how, None, f"its owner {owner} is {_busy_words(owner, desk, None)}"
        return owner, how, None, f"its owner {owner}"
    if how == "user":
        user = str(rule["user"]).lower()
        cap = next((m.daily_cap for t in crew.values() for m in t if m.email == user), None)
        if not _free(user, desk, cap):
            return None, how, None, f"{user} is {_busy_words(user, desk, cap)}"
        return user, how, None, user
    team = str(rule["team"])
    chosen = pick(how, team, crew.get(team, ()), desk)
    if chosen is None:
        return None, how, team, f"team {team}: nobody available"
    way = "round robin" if how == "round_robin" else "fewest open leads"
    return chosen, how, team, f"team {team} → {chosen}, {way}"


def pick(
    how: str, team: str, crew: Sequence[Member], desk: Desk, exclude: frozenset[str] = frozenset()
) -> str | None:
    """The team member `how` gives the next MQL to, among the available ones not in `exclude`.

    Round robin: the least (turns + 1) / weight, so weight 2 gets twice the
    MQLs; otherwise the fewest open MQLs. Ties go to the member written first.
    """
    free = [m for m in crew if m.email not in exclude and _free(m.email, desk, m.daily_cap)]
    if not free:
        return None
    if how == "round_robin":
        best = min(free, key=lambda m: (desk.turns.get((team, m.email), 0) + 1) / m.weight)
    else:
        best = min(free, key=lambda m: desk.open.get(m.email, 0))
    return best.email


def escalation(routing: Mapping[str, Any], desk: Desk, why: str) -> Choice | None:
    """The SLA's escalation user, as a choice, when the routing names one."""
    user = ((routing.get("sla") or {}).get("escalate_to") or "").lower()
    if not user:
        return None
    return Choice(user, "escalation", f"{why}; escalated to {user}")


def _free(email: str, desk: Desk, cap: int | None) -> bool:
    if email in desk.away:
        return False
    return cap is None or desk.today.get(email, 0) < cap


def _busy_words(email: str, desk: Desk, cap: int | None) -> str:
    return "away" if email in desk.away else f"at their daily cap of {cap}"
