"""The step function: given an enrollment, its lead, events, graph and *now*, what to do.

`decide` runs steps until the enrollment has to wait (a `wait`, a `wait
until`, a branch whose `within` is still open, a touch deferred by its window
or a cap), ends, or exits. It returns the actions in order and the next state;
it never performs anything, so a caller may run it on a virtual clock, retry
it, or throw its answer away.

Choices where DESIGN.md is silent:

- Global suppression exits the enrollment (`Exit("suppressed")`, plus a
  `Suppressed` record when the step at hand is a send) instead of skipping
  sends and carrying on: a suppressed lead receives nothing from any campaign
  ever, so nothing is left for the flow to do, and tags, scores or an MQL
  from a flow the lead can no longer see would only mislead.
- Exit checks (suppression, `exit when`, `end after`) also run when the
  enrollment is woken before it is due, so a lead who became a customer
  during a two-week wait leaves at once instead of in two weeks.
- A branch with `within` takes yes as soon as its condition is true, and
  otherwise waits until the deadline (when it takes the timeout edge) even
  if the answer is already false: a negated `within` (`if not opened within
  3 days`) is only decided at the deadline.
- `wait`, `within` and deferrals count from the moment the step actually
  runs, so a late scheduler shifts the rest of the flow instead of bunching it.
- `wait until` uses the lead's time zone; a lead without one uses the send
  window's named zone, else UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from dsl.graph import Node, StepGraph
from nurture.engine.actions import Decision
from nurture.engine.caps import Cap
from nurture.engine.draft import Draft, Outcome
from nurture.engine.observer import StepObserver
from nurture.engine.state import ENDED, EnrollmentState, Event, LeadView, SendHistory, utc

MAX_STEPS = 1000
"""Steps one decision may run before it gives up on a cycle with no wait in it."""


def decide(
    enrollment: EnrollmentState,
    lead: LeadView,
    events: Sequence[Event],
    graph: StepGraph,
    now: datetime,
    history: SendHistory = (),
    global_cap: Cap | None = None,
    *,
    max_steps: int = MAX_STEPS,
    observer: StepObserver | None = None,
) -> Decision:
    """The actions to perform at `now` and the enrollment's next state.

    `history` is the lead's sends from every campaign (for caps); `events` are
    the lead's events (later ones than `now` are ignored). `observer` is told
    about each step run (see `observer`).
    """
    if enrollment.state in ENDED:
        return Decision((), enrollment)
    draft = Draft(enrollment, lead, events, graph, utc(now), history, global_cap)
    reason = draft.leave_reason()
    if reason is not None:
        return draft.exit(reason)
    due = enrollment.next_run_at
    if enrollment.waiting_for is None and due is not None and draft.now < due:
        return Decision((), enrollment)
    return _run(draft, max_steps, observer)


def _run(draft: Draft, max_steps: int, observer: StepObserver | None) -> Decision:
    """Run steps from the cursor until one returns a decision; check exits before each.

    The exit checks passed just before the first step; they run again only
    after a step changed something they look at (see `Draft.checked`).
    """
    steps = draft.plan.steps
    before, after = _hooks(observer)
    for _ in range(max_steps):
        if not draft.checked and (reason := draft.leave_reason()) is not None:
            return draft.exit(reason)
        step = steps.get(draft.cursor)
        if step is None:  # no such step, or one of a kind this release does not know
            return draft.exit(f"missing step {draft.cursor}")
        node, handler = step
        if before is not None:
            before(node)
        outcome = handler(draft, node)
        if after is not None:
            after(node, outcome)
        draft.waiting = None
        if isinstance(outcome, Decision):
            return outcome
        draft.cursor = outcome
    return draft.exit("step limit")


Before = Callable[[Node], None]
After = Callable[[Node, Outcome], None]


def _hooks(observer: StepObserver | None) -> tuple[Before | None, After | None]:
    """The observer's hooks, looked up once per call; None for a hook it left as the default.

    The defaults do nothing, so skipping them changes nothing but the time a
    step takes (a trace that only overrides `before_step` is one call a step).
    """
    if observer is None:
        return None, None
    before: Before | None = observer.before_step
    after: After | None = observer.after_step
    if getattr(before, "__func__", None) is StepObserver.before_step:
        before = None
    if getattr(after, "__func__", None) is StepObserver.after_step:
        after = None
    return before, after
