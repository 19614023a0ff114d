"""Which leads a campaign enrolls, and whether a lead may enter it again.

Triggers are the compiled `enroll when` settings: `{"on": "created"}`,
`{"on": "tagged", "tag": ...}`, `{"on": "event", "name": ...}` (with `"count"` and
`"within"` for `enroll when event "x" count >= 3 within 7 days`),
`{"on": "inactive", "seconds": ...}`, `{"on": "segment", "segment": ...}` and
`{"on": "returned"}` (sales sent the lead back to nurture).

`created`, `tagged`, `event` and `returned` fire on the happening itself (a tag the lead
already had when the campaign was deployed does not enroll it); a counted `event` fires
on the event that brings the count to what it asks, so the candidate must carry the
lead's events. `inactive`
and `segment` are states, checked on a periodic `Sweep`; `segment` is also
checked on every other happening, since any change may bring a lead into a
segment. Whether a lead enters is then up to `reenter`: never again when the
campaign has no `reenter after` (the default), else once the last enrollment
in it ended at least that long ago — counted from its end, so a 13-week
campaign with `reenter after 180 days` leaves a 180-day gap between runs.
A lead still in the campaign never enters twice, and suppressed leads are
not enrolled at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dsl.graph import Json, StepGraph
from nurture.engine.conditions import Context, Facts, counted, evaluate, span_of
from nurture.engine.predicates import Predicate, compile_condition
from nurture.engine.state import Event, LeadView
from nurture.engine.values import as_instant


@dataclass(frozen=True, slots=True)
class LeadCreated:
    at: datetime


@dataclass(frozen=True, slots=True)
class TagAdded:
    tag: str
    at: datetime


@dataclass(frozen=True, slots=True)
class EventOccurred:
    event: Event

    @property
    def at(self) -> datetime:
        return self.event.at


@dataclass(frozen=True, slots=True)
class Returned:
    """Sales returned the lead to nurture (with a reason)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Sweep:
    """A periodic check of state triggers (`inactive for`, `segment`)."""

    at: datetime


Happening = LeadCreated | TagAdded | EventOccurred | Returned | Sweep

NOT_ACTIVITY = frozenset({"delivered", "sent", "bounced", "bounced_hard", "bounced_soft"})
"""Event names that happen *to* a lead and so do not end its inactivity."""


@dataclass(frozen=True, slots=True)
class PastEnrollment:
    """One of the lead's enrollments, in any campaign (`ended_at` None: still running)."""

    campaign: str
    entered_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A lead with what triggers need to know about it."""

    lead: LeadView
    events: Sequence[Event] = ()
    past: Sequence[PastEnrollment] = ()


def fires(
    trigger: Mapping[str, Json],
    candidate: Candidate,
    happening: Happening,
    now: datetime,
    segments: Mapping[str, Json] | None = None,
) -> bool:
    """Whether one trigger enrolls this lead on this happening."""
    on = trigger.get("on")
    if on == "created":
        return isinstance(happening, LeadCreated)
    if on == "tagged":
        return isinstance(happening, TagAdded) and happening.tag == trigger.get("tag")
    if on == "event":
        if not isinstance(happening, EventOccurred) or happening.event.name != trigger.get("name"):
            return False
        return "count" not in trigger or _count_reached(trigger, candidate, happening.at)
    if on == "returned":
        return isinstance(happening, Returned)
    if on == "inactive":
        return isinstance(happening, Sweep) and _inactive(candidate, trigger, now)
    if on == "segment":
        return _in_segment(segments, str(trigger.get("segment")), candidate, now)
    return False


class Segments(Mapping[str, Json]):
    """Segment conditions by name, compiled (`predicates`) on first use and kept.

    For a caller that tests many leads against the same segments (the
    simulator, at every happening of every lead): pass it to `should_enroll`
    or `fires` in place of the plain mapping, with the same answers. The
    conditions must not be edited once in use.
    """

    def __init__(self, segments: Mapping[str, Json]) -> None:
        self._json = dict(segments)
        self._compiled: dict[str, Predicate | None] = {}

    def __getitem__(self, name: str) -> Json:
        return self._json[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    def holds(self, name: str, candidate: Candidate, now: datetime) -> bool:
        """Whether the candidate is in segment `name` at `now` (False for an unknown name)."""
        if name not in self._compiled:
            segment = self._json.get(name)
            self._compiled[name] = None if segment is None else compile_condition(segment)
        test = self._compiled[name]
        return test is not None and test.test(Facts(candidate.lead, candidate.events, now)) is True


def _in_segment(
    segments: Mapping[str, Json] | None, name: str, candidate: Candidate, now: datetime
) -> bool:
    if isinstance(segments, Segments):
        return segments.holds(name, candidate, now)
    segment = (segments or {}).get(name)
    return segment is not None and evaluate(segment, Context(candidate.lead, candidate.events, now))


def last_activity(candidate: Candidate, now: datetime) -> datetime | None:
    """The lead's latest own activity by `now`: its events, else `last_activity_at`, else
    `created_at` (events later than `now` are ignored, as everywhere in the core)."""
    moments = [e.at for e in candidate.events if e.name not in NOT_ACTIVITY and e.at <= now]
    recorded = as_instant(candidate.lead.field("last_activity_at"))
    if recorded is not None:
        moments.append(recorded)
    if moments:
        return max(moments)
    return as_instant(candidate.lead.field("created_at"))


def _count_reached(trigger: Mapping[str, Json], candidate: Candidate, at: datetime) -> bool:
    """`enroll when event "x" count >= 3 within 7 days`: the count as it stood when this
    event happened (not when the trigger is checked), counting it and those before it."""
    name = trigger.get("name")
    times = [e.at for e in candidate.events if e.name == name and e.at <= at]
    span = span_of(trigger.get("within"))
    return counted(times, trigger.get("count"), span, Facts(candidate.lead, (), at)) is True


def _inactive(candidate: Candidate, trigger: Mapping[str, Json], now: datetime) -> bool:
    last = last_activity(candidate, now)
    span = timedelta(seconds=float(trigger.get("seconds") or 0))
    return last is not None and now - last >= span


def may_enter(graph: StepGraph, past: Iterable[PastEnrollment], now: datetime) -> bool:
    """The reentry rule: first time yes; again only after `reenter after` since the last end."""
    mine = [p for p in past if p.campaign == graph.name]
    if not mine:
        return True
    if graph.reenter_after is None or any(p.ended_at is None for p in mine):
        return False
    last_end = max(p.ended_at for p in mine if p.ended_at is not None)
    return now - last_end >= timedelta(seconds=graph.reenter_after)


def should_enroll(
    graph: StepGraph,
    candidate: Candidate,
    happening: Happening,
    now: datetime,
    segments: Mapping[str, Json] | None = None,
) -> bool:
    """A trigger fires, the lead is not suppressed, and reentry allows it."""
    if candidate.lead.suppressed:
        return False
    if not any(fires(t, candidate, happening, now, segments) for t in graph.triggers):
        return False
    return may_enter(graph, candidate.past, now)


def leads_to_enroll(
    graph: StepGraph,
    candidates: Iterable[Candidate],
    happening: Happening,
    now: datetime,
    segments: Mapping[str, Json] | None = None,
) -> list[LeadView]:
    """The candidates' leads that `graph` enrolls on `happening`, in the given order."""
    return [c.lead for c in candidates if should_enroll(graph, c, happening, now, segments)]
