"""Properties over random campaigns and random leads, run on a virtual clock.

Campaigns are random combinations of statements rendered as source text and
compiled with `dsl.build`; leads react to each touch with a drawn delay (or
not at all), may be tagged "stop" (the exit condition) or unsubscribe at a
drawn moment. Whatever the mix: no send while suppressed or after the exit
condition, no cap ever exceeded, every send inside its window, every
enrollment either ended or waiting for a future moment, and the same inputs
giving the same actions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dsl
from dsl.graph import StepGraph
from nurture.engine import Cap, DeliveryKey, Event, Exit, LeadView, Send, SentTouch, VirtualClock
from nurture.engine.calendar import Window, in_window, window_zone
from tests.engine.conftest import MONDAY
from tests.engine.sim import Change, Run, simulate

ZONES = ("UTC", "Asia/Shanghai", "America/New_York")
WINDOWS = (
    None,
    "window weekdays 09:00-18:00 lead time",
    'window daily 08:00-20:00 in "Asia/Shanghai"',
    "window mon-fri 10:00-16:00",
)
CAPS = (None, "cap 3 per week", "cap 1 per day", "cap 2 per week")
DURATIONS = ("2 hours", "1 day", "3 days", "1 week")
WEEKDAYS = ("monday", "tuesday", "friday", "sunday")


@st.composite
def statements(draw: st.DrawFn, depth: int, indent: str, in_loop: bool) -> list[str]:
    """A block of 1-3 statements at `indent`; nesting stops at depth 2."""
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        simple = ["send", "wait", "wait_until", "tag", "untag", "score", "mql"]
        compound = ["if_engaged", "if_tagged", "split", "repeat"] if depth < 2 else []
        kind = draw(st.sampled_from(simple + compound))
        i = len(lines)
        if kind == "send":
            channel = draw(st.sampled_from(["email", "sms", "wechat"]))
            name = "t{{ loop.index }}" if in_loop else f"t{depth}{i}"
            lines.append(f'{indent}send {channel} "{name}"')
        elif kind == "wait":
            lines.append(f"{indent}wait {draw(st.sampled_from(DURATIONS))}")
        elif kind == "wait_until":
            day, hour = draw(st.sampled_from(WEEKDAYS)), draw(st.integers(0, 23))
            lines.append(f"{indent}wait until {day} {hour:02d}:30")
        elif kind in ("tag", "untag"):
            lines.append(f'{indent}{kind} "{draw(st.sampled_from(["a", "b", "c"]))}"')
        elif kind == "score":
            lines.append(f"{indent}score +{draw(st.integers(1, 30))}")
        elif kind == "mql":
            lines.append(f"{indent}mql")
        elif kind in ("if_engaged", "if_tagged"):
            if kind == "if_engaged":
                what = draw(st.sampled_from(["opened", "clicked", 'clicked "pricing"']))
                if draw(st.booleans()):  # a count: the peak of the wait, known early or not
                    cmp = draw(st.sampled_from([">=", ">", "<", "<=", "==", "!="]))
                    what += f" count {cmp} {draw(st.integers(2, 3))}"
                cond = f"{what} within {draw(st.sampled_from(DURATIONS))}"
                if draw(st.booleans()):
                    cond = "not " + cond
            else:
                cond = f'tagged "{draw(st.sampled_from(["a", "b"]))}" or score >= 30'
            lines.append(f"{indent}if {cond}:")
            lines += draw(statements(depth + 1, indent + "  ", in_loop))
            if draw(st.booleans()):
                lines.append(f"{indent}else:")
                lines += draw(statements(depth + 1, indent + "  ", in_loop))
        elif kind == "split":
            share = draw(st.sampled_from([10, 30, 50]))
            lines.append(f"{indent}split:")
            lines.append(f"{indent}  {share}%:")
            lines += draw(statements(depth + 1, indent + "    ", in_loop))
            lines.append(f"{indent}  {100 - share}%:")
            lines += draw(statements(depth + 1, indent + "    ", in_loop))
        else:
            lines.append(f"{indent}repeat {draw(st.integers(1, 4))} times:")
            lines += draw(statements(depth + 1, indent + "  ", True))
            lines.append(f"{indent}  wait {draw(st.sampled_from(DURATIONS))}")
    return lines


@st.composite
def campaigns(draw: st.DrawFn) -> StepGraph:
    lines = ['campaign "Random"', "  enroll when lead created", '  exit when tagged "stop"']
    for setting in (draw(st.sampled_from(WINDOWS)), draw(st.sampled_from(CAPS))):
        if setting:
            lines.append("  " + setting)
    lines.append('  send email "first" as first')
    lines += draw(statements(0, "  ", False))
    try:
        program = dsl.build({"random.nurture": "\n".join(lines) + "\n"})
    except dsl.DslError:
        assume(False)
        raise
    return program.campaigns["Random"]


@dataclass(frozen=True)
class Scenario:
    """A lead, its reactions to each touch, and the moments it stops or unsubscribes."""

    zone: str
    reactions: list[tuple[bool, bool, int]]
    """(opens, clicks, hours later) for the 1st, 2nd, ... touch, cycling."""
    stop_at: datetime | None
    unsubscribe_at: datetime | None
    start: datetime
    global_cap: Cap | None
    history: list[int]
    """Hours before the start at which another campaign sent something."""


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    reaction = st.tuples(st.booleans(), st.booleans(), st.integers(0, 120))
    moment = st.one_of(
        st.none(), st.integers(0, 60 * 24).map(lambda h: MONDAY + timedelta(hours=h))
    )
    return Scenario(
        zone=draw(st.sampled_from(ZONES)),
        reactions=draw(st.lists(reaction, min_size=1, max_size=8)),
        stop_at=draw(moment),
        unsubscribe_at=draw(moment),
        start=MONDAY + timedelta(minutes=draw(st.integers(0, 7 * 24 * 60))),
        global_cap=draw(st.sampled_from([None, Cap(4, timedelta(weeks=1))])),
        history=draw(st.lists(st.integers(1, 200), max_size=4)),
    )


def stop(lead: LeadView) -> LeadView:
    return replace(lead, tags=lead.tags | {"stop"})


def unsubscribe(lead: LeadView) -> LeadView:
    return replace(lead, suppressed="unsubscribed")


def play(graph: StepGraph, scenario: Scenario) -> Run:
    count = [0]

    def respond(send: Send, key: DeliveryKey, at: datetime) -> list[Event]:
        opened, clicked, hours = scenario.reactions[count[0] % len(scenario.reactions)]
        count[0] += 1
        later = at + timedelta(hours=hours)
        found = [Event("opened", later, key, send.name)] if opened else []
        if clicked:
            found.append(Event("clicked", later, key, send.name, "https://x.test/pricing"))
        return found

    changes: list[tuple[datetime, Change]] = []
    if scenario.stop_at is not None:
        changes.append((scenario.stop_at, stop))
    if scenario.unsubscribe_at is not None:
        changes.append((scenario.unsubscribe_at, unsubscribe))
    history = [SentTouch(scenario.start - timedelta(hours=h), "Other") for h in scenario.history]
    return simulate(
        graph,
        LeadView("lead-1", {"time_zone": scenario.zone}),
        VirtualClock(scenario.start),
        timedelta(days=120),
        respond=respond,
        changes=changes,
        history=history,
        global_cap=scenario.global_cap,
    )


def assert_within_caps(times: list[datetime], cap: Cap) -> None:
    ordered = sorted(times)
    for t in ordered:
        assert sum(1 for s in ordered if t - cap.period < s <= t) <= cap.count, (t, cap)


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@PROPERTY
@given(campaigns(), scenarios())
def test_random_campaigns_keep_every_promise(graph: StepGraph, scenario: Scenario) -> None:
    run = play(graph, scenario)
    sends = [t for t, _ in run.sends()]

    # no send at or after the moment the lead unsubscribed or met the exit condition
    for moment in (scenario.unsubscribe_at, scenario.stop_at):
        if moment is not None:
            assert all(t < moment for t in sends)
            if run.state is not None and run.state.ended_at is not None:
                assert run.state.ended_at <= max(moment, scenario.start)

    # no cap exceeded: this campaign's caps on its sends, the global cap on all sends
    for cap in (Cap.from_json(c) for c in graph.caps):
        assert_within_caps(sends, cap)
    if scenario.global_cap is not None:
        assert_within_caps([s.at for s in run.history], scenario.global_cap)

    # every send inside the window, in the right zone
    if graph.window is not None:
        window = Window.from_json(graph.window)
        zone = window_zone(window, run.lead)
        assert all(in_window(t, window, zone) for t in sends)

    # the enrollment ended, or waits for a future moment past the simulated span
    assert run.state is not None
    if not run.state.ended:
        assert run.state.next_run_at is not None
    else:
        assert isinstance(run.log[-1][1], Exit) or run.state.state == "done"

    # delivery keys are unique within the enrollment
    keys = [(s.node_id, s.iteration) for _, s in run.sends()]
    assert len(keys) == len(set(keys))

    # the same inputs give the same actions
    again = play(graph, scenario)
    assert again.log == run.log and again.state == run.state


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=50, unique=True))
def test_split_arms_are_stable_per_lead(ids: list[int]) -> None:
    from nurture.engine.loops import pick_arm

    graph = dsl.build(
        {
            "s.nurture": 'campaign "S"\n  enroll when lead created\n  split:\n'
            '    30% "a":\n      tag "a"\n    70% "b":\n      tag "b"\n'
        }
    ).campaigns["S"]
    node = graph.node(graph.entry)
    for lead_id in ids:
        first = pick_arm(node.edges, lead_id, "S", node.id)
        assert pick_arm(node.edges, lead_id, "S", node.id) == first
