"""The pure decision core: given a lead, its events, a step graph and *now*, what to do next.

Nothing here reads a clock, a database or a broker; the actors, the store and
the simulator wire those around `decide`. Modules, one job each:

- `state`: leads, events, send history and enrollments as frozen data;
- `actions`: what a decision asks the caller to do;
- `conditions`: condition JSON evaluated against a lead (branches, exits, segments);
- `calendar`, `caps`: send windows, `wait until` and frequency caps;
- `loops`: repeat counters, delivery iteration keys, split arms;
- `scoring`: fit, interest with decay, grades and the MQL rule;
- `decide`: the step function, with `draft` (one decision's working copy),
  `steps` (one function per step kind) and `plan` (what is worked out once
  per graph, conditions compiled by `predicates`);
- `observer`: hooks around each step, for metrics, audit and traces;
- `triggers`: which leads a campaign enrolls, and reentry;
- `clock`: the `Clock` protocol, the system clock and a virtual one.
"""

from __future__ import annotations

from nurture.engine.actions import (
    Action,
    Decision,
    Deferred,
    EmitMql,
    EnrollInto,
    Exit,
    NotifySales,
    Score,
    Send,
    Suppressed,
    Tag,
    Untag,
)
from nurture.engine.calendar import Window, next_opening, next_weekday_at, zone_named
from nurture.engine.caps import Cap, Limits, next_send_time
from nurture.engine.clock import Clock, SystemClock, VirtualClock
from nurture.engine.conditions import Context, Refs, evaluate, truth
from nurture.engine.decide import MAX_STEPS, decide
from nurture.engine.observer import NullObserver, StepObserver
from nurture.engine.scoring import compute_scores, mql_due
from nurture.engine.state import (
    Delivered,
    DeliveryKey,
    EnrollmentState,
    Event,
    LeadView,
    Scores,
    SendHistory,
    SentTouch,
    WaitingFor,
)
from nurture.engine.triggers import (
    Candidate,
    EventOccurred,
    LeadCreated,
    PastEnrollment,
    Sweep,
    TagAdded,
    leads_to_enroll,
    may_enter,
    should_enroll,
)

__all__ = [
    "MAX_STEPS",
    "Action",
    "Candidate",
    "Cap",
    "Clock",
    "Context",
    "Decision",
    "Deferred",
    "Delivered",
    "DeliveryKey",
    "EmitMql",
    "EnrollInto",
    "EnrollmentState",
    "Event",
    "EventOccurred",
    "Exit",
    "LeadCreated",
    "LeadView",
    "Limits",
    "NotifySales",
    "NullObserver",
    "PastEnrollment",
    "Refs",
    "Score",
    "Scores",
    "Send",
    "SendHistory",
    "SentTouch",
    "StepObserver",
    "Suppressed",
    "Sweep",
    "SystemClock",
    "Tag",
    "TagAdded",
    "Untag",
    "VirtualClock",
    "WaitingFor",
    "Window",
    "compute_scores",
    "decide",
    "evaluate",
    "leads_to_enroll",
    "may_enter",
    "mql_due",
    "next_opening",
    "next_send_time",
    "next_weekday_at",
    "should_enroll",
    "truth",
    "zone_named",
]
