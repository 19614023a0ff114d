"""`enroll when segment` on time alone: a lead drifts into a segment with nothing happening to it
(an event leaves a `within` span, interest decays, reentry opens), and the dry run enrolls it
at that moment, as production's periodic sweep (`sweep_segments`) would, without polling."""

from __future__ import annotations

import json

from dsl.graph import CompiledProgram
from nurture.simulate import Rates, Settings, Simulation, synthetic_leads
from tests.simulate.helpers import ALWAYS, NEVER, campaign, program, run, step

OPENS = Rates(open=1.0, click=0.0, reply=0.0, event=0.0)
"""Leads who open every message and do nothing else."""

TRIAL = """\
segment "trial gone quiet"
  tagged "trial" and not event "pricing_viewed" within 30 days

campaign "Onboard"
  send email "o/hello"
  if event "pricing_viewed" within 5 days:
    tag "trial"
    wait 30 days
    tag "ref"
    wait 1 minute
    untag "ref"
  else:
    exit

campaign "Trial nudge"
  enroll when segment "trial gone quiet"
  if tagged "ref":
    tag "on time"
  else:
    tag "late"
"""
"""Onboard tags "trial" the moment the lead views pricing (so it is not in the segment yet),
and holds the tag "ref" from exactly 30 days after that view for one minute: Trial nudge
finds "ref" only if it takes the lead within that minute."""


def test_a_lead_enters_a_segment_just_after_an_event_leaves_its_within_span() -> None:
    # Given leads who open and click everything (half of the clicks lead to a pricing view,
    # the event Onboard's branch waits for), and the "trial gone quiet" segment
    prog = program(TRIAL)

    # When 20 leads run through Onboard for 40 days
    report = run(prog, leads=20, days=40, rates=ALWAYS, entry=("Onboard",))

    # Then the 10 who viewed pricing were tagged "trial" then, while the view was recent
    assert report["events"]["pricing_viewed"] == 10
    assert step(report, "n3", "Onboard")["entered"] == 10
    # and each entered Trial nudge once, just after the view turned 30 days old: not at
    # 30 days sharp (Onboard's "ref" tag then makes the loop check segments, and the view
    # still counts), and before "ref" went a minute later (that change would enroll it too)
    assert campaign(report, "Trial nudge")["enrolled"] == 10
    assert step(report, "n2", "Trial nudge")["entered"] == 10  # tag "on time"
    assert step(report, "n3", "Trial nudge")["entered"] == 0  # tag "late"


COOLING = """\
scoring "s"
  interest:
    +10 per open
    decay 50% every 7 days

segment "cooled"
  tagged "engaged" and interest < 8

campaign "Onboard"
  send email "o/hello"
  if opened within 3 days:
    tag "engaged"
    wait 167 hours
    tag "ref"
    wait 2 hours
    untag "ref"
  else:
    exit

campaign "Cooled"
  enroll when segment "cooled"
  if tagged "ref":
    tag "on time"
  else:
    tag "late"
"""
"""An open is worth 10, halved 7 days later: 5, below 8. Onboard tags "engaged" at the open
(interest 10) and holds "ref" from an hour before the halving to an hour after it."""


def test_a_lead_enters_an_interest_below_segment_when_its_interest_decays() -> None:
    # Given leads who open every message, and a segment of engaged leads whose interest < 8
    prog = program(COOLING)

    # When 20 leads run through Onboard for 20 days
    report = run(prog, leads=20, days=20, rates=OPENS, entry=("Onboard",))

    # Then each opened and was tagged "engaged" with interest 10 (not in the segment),
    assert report["events"] == {"opened": 20}
    assert step(report, "n3", "Onboard")["entered"] == 20
    # and entered Cooled once, when the open's 10 points were halved 7 days later
    assert campaign(report, "Cooled")["enrolled"] == 20
    assert step(report, "n2", "Cooled")["entered"] == 20  # tag "on time"
    assert step(report, "n3", "Cooled")["entered"] == 0  # tag "late"


def test_an_interest_at_least_segment_is_entered_at_the_change_that_brings_the_lead_in() -> None:
    # Given the same flow, but a segment of engaged leads whose interest is still >= 8
    prog = program(COOLING.replace("interest < 8", "interest >= 8"))

    # When 20 leads run through Onboard for 20 days
    report = run(prog, leads=20, days=20, rates=OPENS, entry=("Onboard",))

    # Then every lead entered at the open's tag (interest 10), while "ref" was not there yet
    assert campaign(report, "Cooled")["enrolled"] == 20
    assert step(report, "n3", "Cooled")["entered"] == 20  # tag "late"


ONE_SEND = """\
scoring "s"
  interest:
    +10 per open
    decay 50% every 1 day

segment "opened lately"
  tagged "nobody" and opened within 3 days
segment "warm"
  tagged "nobody" and interest >= 5
segment "gone quiet"
  opened and not opened within 3 days
segment "vip gone quiet"
  tagged "nobody" and opened and not opened within 3 days

campaign "Hello"
  send email "o/hello"
"""
QUIET = """\
campaign "Quiet"
  enroll when segment "{segment}"
  tag "seen"
"""


def pushes(prog: CompiledProgram, leads: int = 20, days: int = 10) -> tuple[int, dict[str, int]]:
    """How many wake-ups the run scheduled, and how many leads entered each campaign."""
    settings = Settings(leads=leads, days=days, seed=1, rates=ALWAYS, entry=("Hello",))
    simulation = Simulation(prog, settings, synthetic_leads(leads, 1, prog))
    report = simulation.run()
    return simulation.agenda.seq, {c["name"]: c["enrolled"] for c in report["campaigns"]}


def test_wake_ups_only_for_a_segment_trigger_that_time_alone_can_make_true() -> None:
    # Given one send that every lead opens and clicks, and segments no campaign enrolls from
    alone = program(ONE_SEND)
    # Then each lead is woken three times: to be sent to, to open, to click
    assert pushes(alone) == (60, {"Hello": 20})

    # Given a campaign enrolling from a segment that time alone can only make false (an open
    # leaving its span, interest decaying): no lead is in it, and none is woken for it;
    # and from one time could make true, but for a tag no lead has
    for segment in ("opened lately", "warm", "vip gone quiet"):
        assert pushes(program(ONE_SEND + QUIET.format(segment=segment))) == (
            60,
            {"Hello": 20, "Quiet": 0},
        ), segment

    # Given one enrolling leads who opened, but not in the last 3 days: one wake-up each
    # when its open turns 3 days old (decay is not looked at), then its enrollment
    quiet = program(ONE_SEND + QUIET.format(segment="gone quiet"))
    assert pushes(quiet) == (100, {"Hello": 20, "Quiet": 20})


AGAIN = """\
segment "everyone"
  not tagged "nobody"

campaign "Again"
  enroll when segment "everyone"
  reenter after 10 days
  tag "seen"
"""


def test_a_segment_campaign_takes_a_lead_again_the_moment_reentry_allows() -> None:
    # Given a campaign enrolling every lead, again 10 days after each run ends (at once:
    # it only tags), and leads to whom nothing else ever happens
    prog = program(AGAIN)

    # When 20 leads, arrived on day one, run for 35 days
    report = run(prog, leads=20, days=35, rates=NEVER)

    # Then each entered on arrival and 10, 20 and 30 days later: 4 times
    assert campaign(report, "Again")["enrolled"] == 80
    assert campaign(report, "Again")["completed"] == 80


def test_the_same_seed_gives_the_same_report_with_drift() -> None:
    # Given the trial flow
    prog = program(TRIAL)

    # When it runs twice with the same seed
    first = run(prog, leads=30, days=40, rates=ALWAYS, entry=("Onboard",))
    second = run(prog, leads=30, days=40, rates=ALWAYS, entry=("Onboard",))

    # Then the reports are the same, to the byte
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
