"""The syntax tree: frozen, slotted dataclasses, each with the span it came from.

Nothing after `syntax.py` sees a `lark.Tree`; checks and the compiler read
these nodes only. Tuples, never lists, so a tree is hashable and immutable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node stands in its file: 1-based line and column, end exclusive."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True, slots=True)
class Word:
    """A located name or text: a channel, a tag, a template, a message name."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Duration:
    """`3 days`: the unit is kept as written so the checker can suggest a fix."""

    amount: int
    unit: Word
    span: Span


# ---------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class Subject:
    """The left side of a comparison: `score`, `fit grade`, `lead.industry`, ..."""

    kind: str  # field | score | fit | interest | grade | fit_grade | stage
    field: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Value:
    """A literal on the right side of a comparison; lists hold Values."""

    kind: str  # string | number | name | list
    value: str | float | tuple[Value, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Compare:
    """`subject op value`, op one of == != >= <= > < in `not in` matches."""

    subject: Subject
    op: str
    value: Value
    span: Span


@dataclass(frozen=True, slots=True)
class Truthy:
    """A bare `lead.is_customer`: true when the field is set and not false."""

    field: str
    span: Span


@dataclass(frozen=True, slots=True)
class Count:
    """`count >= 3`: how many of the events an atom matches, compared with a whole number."""

    op: str  # == != >= <= > <
    number: int
    span: Span


@dataclass(frozen=True, slots=True)
class Engagement:
    """`opened`, `clicked [link] [message]`, `replied`, `bounced`, with optional `count`
    and `within`."""

    kind: str  # opened | clicked | replied | bounced
    link: Word | None
    message: Word | None
    within: Duration | None
    span: Span
    count: Count | None = None


@dataclass(frozen=True, slots=True)
class Tagged:
    tag: Word
    span: Span


@dataclass(frozen=True, slots=True)
class EventCond:
    """`event "pricing_viewed" [count >= 3] [within 7 days]`."""

    name: Word
    within: Duration | None
    span: Span
    count: Count | None = None


@dataclass(frozen=True, slots=True)
class Not:
    item: Cond
    span: Span


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Cond, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Cond, ...]
    span: Span


Cond: TypeAlias = Compare | Truthy | Engagement | Tagged | EventCond | Not | And | Or


# ---------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class Send:
    channel: Word
    template: Word
    subject: Word | None
    alias: Word | None
    span: Span


@dataclass(frozen=True, slots=True)
class Wait:
    duration: Duration
    span: Span


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """`wait until tuesday 10:00` or `wait until 2026-12-01 09:00`, in the lead's time zone."""

    day: Word | None
    date: Word | None
    time: Word
    span: Span


@dataclass(frozen=True, slots=True)
class TagStmt:
    tag: Word
    remove: bool
    span: Span


@dataclass(frozen=True, slots=True)
class ScoreStmt:
    delta: int
    span: Span


@dataclass(frozen=True, slots=True)
class EnrollStmt:
    campaign: Word
    span: Span


@dataclass(frozen=True, slots=True)
class Notify:
    template: Word
    span: Span


@dataclass(frozen=True, slots=True)
class Mql:
    span: Span


@dataclass(frozen=True, slots=True)
class Exit:
    span: Span


@dataclass(frozen=True, slots=True)
class Branch:
    """One `if` or `elif` arm."""

    cond: Cond
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    branches: tuple[Branch, ...]
    orelse: tuple[Stmt, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class SplitArm:
    percent: float
    label: Word | None
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Split:
    arms: tuple[SplitArm, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Repeat:
    times: int
    body: tuple[Stmt, ...]
    span: Span


Stmt: TypeAlias = (
    Send
    | Wait
    | WaitUntil
    | TagStmt
    | ScoreStmt
    | EnrollStmt
    | Notify
    | Mql
    | Exit
    | If
    | Split
    | Repeat
)


# ---------------------------------------------------------------- campaign settings


@dataclass(frozen=True, slots=True)
class KindSetting:
    label: Word
    span: Span


@dataclass(frozen=True, slots=True)
class Trigger:
    """`enroll when ...`: kind is created | tagged | event | inactive | segment."""

    kind: str
    value: Word | None
    duration: Duration | None
    span: Span
    count: Count | None = None
    """`enroll when event "x" count >= 3 [within 7 days]`: the count and its window."""
    within: Duration | None = None


@dataclass(frozen=True, slots=True)
class ExitWhen:
    cond: Cond
    span: Span


@dataclass(frozen=True, slots=True)
class Reenter:
    """`reenter after 180 days`; `after` is None for `reenter never`."""

    after: Duration | None
    span: Span


@dataclass(frozen=True, slots=True)
class Window:
    """`window weekdays 09:00-18:00 lead time`: days as written, expanded by the checker."""

    days: tuple[Word, ...]
    day_range: bool
    start: Word
    end: Word
    zone: Word | None  # None: UTC; "lead": the lead's own time zone; else an IANA name
    span: Span


@dataclass(frozen=True, slots=True)
class Cap:
    count: int
    period: Word
    span: Span


@dataclass(frozen=True, slots=True)
class EndAfter:
    """`end after 13 weeks`: the campaign's lifetime for one lead."""

    duration: Duration
    span: Span


Setting: TypeAlias = KindSetting | Trigger | ExitWhen | Reenter | Window | Cap | EndAfter


# ---------------------------------------------------------------- top-level items


@dataclass(frozen=True, slots=True)
class Campaign:
    name: Word
    settings: tuple[Setting, ...]
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class FitRule:
    points: int
    cond: Cond
    span: Span


@dataclass(frozen=True, slots=True)
class InterestRule:
    """`+5 per click` (activity is a Word) or `+20 per event "webinar_attended"`."""

    points: int
    activity: Word
    is_event: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Decay:
    percent: float
    every: Duration
    span: Span


@dataclass(frozen=True, slots=True)
class GradeStep:
    """`A >= 40` or, with threshold None, `else D`."""

    letter: Word
    threshold: float | None
    span: Span


@dataclass(frozen=True, slots=True)
class GradeRule:
    target: Word
    steps: tuple[GradeStep, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MqlRule:
    cond: Cond
    span: Span


@dataclass(frozen=True, slots=True)
class Scoring:
    name: Word
    fit: tuple[FitRule, ...]
    interest: tuple[InterestRule, ...]
    decay: tuple[Decay, ...]
    grades: tuple[GradeRule, ...]
    mql: tuple[MqlRule, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Assign:
    """`assign to team "east" when ...`; target is owner | team | user | round_robin."""

    target: str
    team: Word | None  # the team for team and round_robin, the user's email for user
    cond: Cond | None  # None: `otherwise`
    span: Span


@dataclass(frozen=True, slots=True)
class Sla:
    """`accept within 24 hours else reassign[, then escalate to user "x"]`.

    `then` is the word after `then` (only `escalate` is right); `escalate_to` the user
    named by `else escalate to user "x"` or `then escalate to user "x"`.
    """

    within: Duration
    action: Word
    then: Word | None
    escalate_to: Word | None
    span: Span


@dataclass(frozen=True, slots=True)
class Remind:
    """`remind 4 hours before`: the owner is reminded once before the SLA runs out."""

    before: Duration
    span: Span


@dataclass(frozen=True, slots=True)
class Notification:
    """One `CHANNEL "TEMPLATE"` of a `notify by` line."""

    channel: Word
    template: Word
    span: Span


@dataclass(frozen=True, slots=True)
class ReturnReasons:
    """`return reasons: "not a fit", "no budget"`: offered to sales when they return a lead."""

    reasons: tuple[Word, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Routing:
    rules: tuple[Assign, ...]
    sla: tuple[Sla, ...]
    reminders: tuple[Remind, ...]
    notify: tuple[Notification, ...]
    reasons: tuple[ReturnReasons, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MemberOption:
    """`name "..."`, `weight 2`, `wecom "id"`, `phone "..."` or `cap 10 per day` (with `per`)."""

    kind: str  # name | weight | wecom | phone | cap
    value: Word  # numbers as written
    per: Word | None
    span: Span


@dataclass(frozen=True, slots=True)
class Member:
    email: Word
    options: tuple[MemberOption, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Team:
    """`team "east"` and its `member` lines; an empty team is the checker's to report."""

    name: Word
    members: tuple[Member, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Segment:
    """A named condition; several lines are joined with `and`."""

    name: Word
    conds: tuple[Cond, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class FieldDecl:
    name: Word
    type: Word
    span: Span


@dataclass(frozen=True, slots=True)
class Fields:
    decls: tuple[FieldDecl, ...]
    span: Span


Item: TypeAlias = Campaign | Scoring | Routing | Team | Segment | Fields


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed file."""

    path: str
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Program:
    """Every file checked together: an `enroll "X"` may name a campaign in another file."""

    modules: tuple[Module, ...]

    def items(self) -> tuple[Item, ...]:
        return tuple(item for module in self.modules for item in module.items)

    def campaigns(self) -> tuple[Campaign, ...]:
        return tuple(i for i in self.items() if isinstance(i, Campaign))

    def scorings(self) -> tuple[Scoring, ...]:
        return tuple(i for i in self.items() if isinstance(i, Scoring))

    def routings(self) -> tuple[Routing, ...]:
        return tuple(i for i in self.items() if isinstance(i, Routing))

    def teams(self) -> tuple[Team, ...]:
        return tuple(i for i in self.items() if isinstance(i, Team))

    def segments(self) -> tuple[Segment, ...]:
        return tuple(i for i in self.items() if isinstance(i, Segment))

    def fields(self) -> tuple[FieldDecl, ...]:
        return tuple(d for i in self.items() if isinstance(i, Fields) for d in i.decls)
