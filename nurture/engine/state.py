"""The core's plain data: a lead as the core sees it, events, send history, enrollments.

Everything here is a frozen dataclass with aware UTC datetimes, so a decision
depends only on its arguments and two equal inputs give equal outputs. The
store builds these from rows; the core never sees a database object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from dsl.graph import Json, StepGraph

T = TypeVar("T")

EnrollmentId = int | str
"""The store's enrollment id (an int in the database; any stable key in tests)."""

LeadId = int | str

ACTIVE, WAITING, DONE, EXITED = "active", "waiting", "done", "exited"
ENDED = frozenset({DONE, EXITED})
"""States after which `decide` does nothing."""

ENGAGEMENT = ("opened", "clicked", "replied", "bounced")
"""Event names that belong to one delivery; `bounced_hard`/`bounced_soft` count as `bounced`."""
BOUNCED = "bounced"


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive value is refused, never guessed."""
    if moment.tzinfo is UTC:  # the usual case, and `astimezone` would return it as is
        return moment
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware datetime")
    return moment.astimezone(UTC)


def positional_builder(cls: type[T]) -> Callable[..., T]:
    """A constructor for the frozen, slotted dataclass `cls` that takes every field, in order.

    A frozen dataclass's `__init__` sets each field through
    `object.__setattr__`, which looks the attribute up on the class again
    every time; this sets each slot through its own descriptor, in about half
    the time. For the objects built on every decision and every rescoring
    (the next state, sends, copies of the lead); it runs no `__post_init__`
    and fills no defaults (`tests/engine/test_state.py` checks it builds
    equal objects).
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    scope: dict[str, Any] = {f"set_{n}": getattr(cls, n).__set__ for n in names}
    scope.update(cls=cls, new=object.__new__)
    lines = [f"def build({', '.join(names)}):", "    obj = new(cls)"]
    lines += [f"    set_{n}(obj, {n})" for n in names]
    exec("\n".join([*lines, "    return obj"]), scope)
    built: Callable[..., T] = scope["build"]
    return built


@dataclass(frozen=True, slots=True)
class DeliveryKey:
    """Which touch an event belongs to: the delivery row's unique key."""

    enrollment: EnrollmentId
    node: str
    iteration: str | int = ""
    """`Send.iteration` (`"n3:2"`) or its integer form `Send.iteration_no`, whichever
    the store keeps (the deliveries table has an integer column)."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something the lead did, or that happened to one of its messages.

    `name` is the event type for standard events (`opened`, `clicked`,
    `replied`, `bounced_hard`, `form_submitted`, `page_viewed`, ...) and the
    event's own name for custom ones (`webinar_attended`), so `event "x"`
    conditions, `per event "x"` scoring and `enroll when event "x"` all match
    on one field. Message events carry the delivery they belong to, which is
    what makes "opened the last message" unambiguous across repeats and
    campaigns; `message` (the send's `as` name) serves segments, which have
    no enrollment to resolve names in.
    """

    name: str
    at: datetime
    delivery: DeliveryKey | None = None
    message: str | None = None
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Scores:
    """A lead's computed scores (see `scoring.compute_scores`)."""

    fit: float = 0.0
    interest: float = 0.0
    fit_grade: str | None = None
    interest_grade: str | None = None

    @property
    def grade(self) -> str | None:
        """The lead's grade: of fit, as grades usually are in B2B, else of interest."""
        return self.fit_grade if self.fit_grade is not None else self.interest_grade


@dataclass(frozen=True, slots=True)
class LeadView:
    """What the core knows about a lead: profile, tags, stage, suppression and scores."""

    id: LeadId
    fields: Mapping[str, Any] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    stage: str = "lead"
    suppressed: str | None = None
    """Why the lead receives nothing (`unsubscribed`, `bounced`, `complained`), or None."""
    score_delta: float = 0.0
    """The sum of `score +N/-N` steps so far: the manual part of `score`."""
    scores: Scores = Scores()
    closed: Mapping[str, str] = field(default_factory=dict)
    """Channels closed for this lead alone (a WeChat 43004, an SMS STOP), and why: a send on
    one is withheld and the flow goes on; `suppressed` stops every channel."""

    @property
    def score(self) -> float:
        """`score` in conditions: fit + interest + manual deltas."""
        return self.scores.fit + self.scores.interest + self.score_delta

    @property
    def time_zone(self) -> str | None:
        zone = self.fields.get("time_zone")
        return zone if isinstance(zone, str) and zone else None

    def field(self, name: str) -> Any:
        """A profile field by name (`lead.` prefix optional); None when missing."""
        name = name.removeprefix("lead.")
        if name == "stage":
            return self.stage
        value = self.fields.get(name)
        if value is None and name == "email_domain":
            return _email_domain(self)
        return value


# Copies of a lead with one part changed: what steps and the simulator do on every
# tag, score, stage change and rescoring. Faster than `dataclasses.replace`, which
# reads the class's fields on every call; `test_state.py` pins the field list.

_lead = positional_builder(LeadView)


def with_tags(lead: LeadView, tags: frozenset[str]) -> LeadView:
    return _lead(
        lead.id,
        lead.fields,
        tags,
        lead.stage,
        lead.suppressed,
        lead.score_delta,
        lead.scores,
        lead.closed,
    )


def with_stage(lead: LeadView, stage: str) -> LeadView:
    return _lead(
        lead.id,
        lead.fields,
        lead.tags,
        stage,
        lead.suppressed,
        lead.score_delta,
        lead.scores,
        lead.closed,
    )


def with_suppressed(lead: LeadView, suppressed: str | None) -> LeadView:
    return _lead(
        lead.id,
        lead.fields,
        lead.tags,
        lead.stage,
        suppressed,
        lead.score_delta,
        lead.scores,
        lead.closed,
    )


def with_closed(lead: LeadView, closed: Mapping[str, str]) -> LeadView:
    return _lead(
        lead.id,
        lead.fields,
        lead.tags,
        lead.stage,
        lead.suppressed,
        lead.score_delta,
        lead.scores,
        closed,
    )


def with_score_delta(lead: LeadView, score_delta: float) -> LeadView:
    return _lead(
        lead.id,
        lead.fields,
        lead.tags,
        lead.stage,
        lead.suppressed,
        score_delta,
        lead.scores,
        lead.closed,
    )


def with_scores(lead: LeadView, scores: Scores) -> LeadView:
    return _lead(
        lead.id,
        lead.fields,
        lead.tags,
        lead.stage,
        lead.suppressed,
        lead.score_delta,
        scores,
        lead.closed,
    )


def field_getter(name: str) -> Callable[[LeadView], Any]:
    """`LeadView.field(name)` with the name resolved once, for conditions compiled ahead."""
    name = name.removeprefix("lead.")
    if name == "stage":
        return _stage
    if name == "email_domain":
        return _field_or_email_domain
    return lambda lead: lead.fields.get(name)


def _field_or_email_domain(lead: LeadView) -> Any:
    value = lead.fields.get("email_domain")
    return _email_domain(lead) if value is None else value


def _stage(lead: LeadView) -> str:
    return lead.stage


def _email_domain(lead: LeadView) -> str | None:
    """The domain of the lead's email, lower case: what `lead.email_domain` means when unset."""
    email = lead.fields.get("email")
    if isinstance(email, str) and "@" in email:
        return email.rsplit("@", 1)[1].lower()
    return None


@dataclass(frozen=True, slots=True)
class SentTouch:
    """One send in the lead's history, from any campaign: what caps count."""

    at: datetime
    campaign: str


SendHistory = Sequence[SentTouch]


@dataclass(frozen=True, slots=True)
class Delivered:
    """The latest delivery of one send step in this enrollment."""

    node: str
    iteration: str
    at: datetime
    number: int = 0
    """The iteration as `Send.iteration_no`."""

    def is_key(self, key: DeliveryKey, enrollment: EnrollmentId) -> bool:
        """Whether `key` names this delivery (by string key or integer form)."""
        return (
            key.enrollment == enrollment
            and key.node == self.node
            and (key.iteration == self.iteration or key.iteration == self.number)
        )


@dataclass(frozen=True, slots=True)
class WaitingFor:
    """A branch parked on `within`: reached at `since`, gives up at `deadline`."""

    node: str
    since: datetime
    deadline: datetime


@dataclass(frozen=True, slots=True)
class EnrollmentState:
    """One lead in one campaign version: where it is and when it runs next."""

    id: EnrollmentId
    cursor: str
    entered_at: datetime
    state: str = ACTIVE
    next_run_at: datetime | None = None
    """When to run next; None only once the enrollment is done or exited."""
    waiting_for: WaitingFor | None = None
    loops: Mapping[str, int] = field(default_factory=dict)
    """Repeat counters by repeat step id, 1-based; absent when not inside that repeat."""
    sent: Mapping[str, Delivered] = field(default_factory=dict)
    """The latest delivery of each send step, for `opened`/`clicked` references."""
    last_sent: str | None = None
    """The send step that sent last: what a bare `opened` refers to."""
    exit_reason: str | None = None
    ended_at: datetime | None = None

    @classmethod
    def start(cls, enrollment_id: EnrollmentId, graph: StepGraph, now: datetime) -> EnrollmentState:
        """A new enrollment at the graph's entry, due at once."""
        now = utc(now)
        return cls(enrollment_id, graph.entry, now, ACTIVE, now)

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def to_json(self) -> dict[str, Json]:
        """A JSON document for the store; `from_json` reads it back equal."""
        return {
            "id": self.id,
            "cursor": self.cursor,
            "entered_at": _iso(self.entered_at),
            "state": self.state,
            "next_run_at": _iso(self.next_run_at),
            "waiting_for": None
            if self.waiting_for is None
            else {
                "node": self.waiting_for.node,
                "since": _iso(self.waiting_for.since),
                "deadline": _iso(self.waiting_for.deadline),
            },
            "loops": dict(self.loops),
            "sent": {k: [d.node, d.iteration, _iso(d.at), d.number] for k, d in self.sent.items()},
            "last_sent": self.last_sent,
            "exit_reason": self.exit_reason,
            "ended_at": _iso(self.ended_at),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Json]) -> EnrollmentState:
        waiting = data.get("waiting_for")
        return cls(
            id=data["id"],
            cursor=data["cursor"],
            entered_at=_parse(data["entered_at"]),
            state=data.get("state", ACTIVE),
            next_run_at=_parse_opt(data.get("next_run_at")),
            waiting_for=None
            if not waiting
            else WaitingFor(waiting["node"], _parse(waiting["since"]), _parse(waiting["deadline"])),
            loops={str(k): int(v) for k, v in dict(data.get("loops") or {}).items()},
            sent={
                str(k): Delivered(v[0], v[1], _parse(v[2]), int(v[3]) if len(v) > 3 else 0)
                for k, v in dict(data.get("sent") or {}).items()
            },
            last_sent=data.get("last_sent"),
            exit_reason=data.get("exit_reason"),
            ended_at=_parse_opt(data.get("ended_at")),
        )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else utc(moment).isoformat()


def _parse(text: str) -> datetime:
    return utc(datetime.fromisoformat(text))


def _parse_opt(text: str | None) -> datetime | None:
    return None if text is None else _parse(text)
