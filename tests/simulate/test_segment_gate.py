"""The simulator's segment gate: a campaign enrolled by segments alone asks a lead's tags and
stage first (`graphs.relaxed`) and goes no further where they shut it out. The gate must hold
wherever the segment does (else a lead who belongs would be missed), and must shut out leads
who lack a segment's tag (else it saves nothing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.graph import Json
from nurture.engine import Event, LeadView, Scores
from nurture.engine.conditions import Facts
from nurture.engine.predicates import compile_condition
from nurture.simulate import Rates, Settings, Simulation, synthetic_leads
from nurture.simulate.graphs import STAGE, TAGS, relaxed
from tests.simulate.helpers import campaign, program

NOW = datetime(2026, 3, 1, tzinfo=UTC)

SEGMENTS = """\
scoring "s"
  interest:
    +10 per open
    +20 per event "pricing_viewed"

segment "warm east"
  tagged "region:east"
  interest >= 20
  stage < mql
  not tagged "dormant"

segment "quiet trial"
  tagged "trial" and not event "pricing_viewed" within 30 days

segment "either"
  (tagged "vip" or interest >= 40) and not (tagged "customer" and interest < 5)

segment "counted"
  not tagged "spam" and event "pricing_viewed" count >= 2 within 7 days
"""

TAG_NAMES = ("region:east", "dormant", "trial", "vip", "customer", "spam")


def segments() -> dict[str, Json]:
    return dict(program(SEGMENTS + 'campaign "c"\n  send email "a/b"\n').segments)


@settings(max_examples=300, deadline=None)
@given(
    tags=st.frozensets(st.sampled_from(TAG_NAMES)),
    stage=st.sampled_from(["lead", "mql", "sql", "customer"]),
    interest=st.integers(min_value=0, max_value=60),
    ages=st.lists(st.integers(min_value=0, max_value=60), max_size=4),
)
def test_the_gate_holds_wherever_the_segment_holds(
    tags: frozenset[str], stage: str, interest: int, ages: list[int]
) -> None:
    # Given a lead with any tags, stage, interest and pricing views of any age
    events = [Event("pricing_viewed", NOW - timedelta(days=a)) for a in sorted(ages, reverse=True)]
    view = LeadView("l1", {}, tags, stage, scores=Scores(0.0, float(interest)))
    facts = Facts(view, events, NOW)
    for name, cond in segments().items():
        # When the segment and its gate are asked
        whole = compile_condition(cond).test(facts)
        gate = compile_condition(relaxed(cond, TAGS | STAGE)).test(facts)
        # Then the gate holds wherever the segment does
        assert whole is not True or gate is True, name


def test_the_gate_shuts_out_a_lead_without_the_segments_tag_whatever_its_scores() -> None:
    # Given a very engaged lead who lacks "region:east", and one who has it
    scores = Scores(0.0, 100.0)
    outside = LeadView("l1", {}, frozenset({"vip"}), scores=scores)
    inside = LeadView("l2", {}, frozenset({"region:east"}), scores=scores)
    gate = compile_condition(relaxed(segments()["warm east"], TAGS | STAGE))
    # Then the gate shuts out the first, and lets the second on to the whole segment
    assert gate.test(Facts(outside, (), NOW)) is False
    assert gate.test(Facts(inside, (), NOW)) is True
    # and a lead at MQL or beyond, which the segment's `stage < mql` shuts out, too
    mql = LeadView("l3", {}, frozenset({"region:east"}), "mql", scores=scores)
    assert gate.test(Facts(mql, (), NOW)) is False


FLOWS = """\
campaign "Onboard"
  send email "o/hello"
  if opened within 3 days:
    tag "region:east"
    send email "o/more"
  else:
    tag "trial"

campaign "Warm"
  enroll when segment "warm east"
  send email "w/hi"

campaign "Quiet"
  enroll when segment "quiet trial"
  send email "q/hi"

campaign "Mixed"
  enroll when segment "either"
  enroll when event "pricing_viewed"
  send email "m/hi"
"""


def test_a_run_with_gates_reports_what_a_run_without_them_does() -> None:
    # Given segment-triggered campaigns (one also triggered by an event: it has no gate)
    prog = program(SEGMENTS + FLOWS)
    rates = Rates(open=0.5, click=0.5, reply=0.0, event=0.5)
    sim_settings = Settings(leads=300, days=60, seed=3, rates=rates, entry=("Onboard",))

    def simulation() -> Simulation:
        return Simulation(prog, sim_settings, synthetic_leads(300, 3, prog))

    gated = simulation()
    assert gated.campaigns["Warm"].gate is not None
    assert gated.campaigns["Mixed"].gate is None
    ungated = simulation()
    for run in ungated.campaigns.values():
        run.gate = None
    # When both run
    with_gates, without = gated.run(), ungated.run()
    # Then the reports are the same, and the segment campaigns did enroll leads
    assert with_gates == without
    assert campaign(with_gates, "Warm")["enrolled"] > 0
    assert campaign(with_gates, "Quiet")["enrolled"] > 0
