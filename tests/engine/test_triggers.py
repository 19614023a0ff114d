"""Which leads a campaign enrolls, and when a lead may enter again."""

from __future__ import annotations

from datetime import timedelta

import dsl
from nurture.engine import (
    Candidate,
    Event,
    EventOccurred,
    LeadCreated,
    LeadView,
    PastEnrollment,
    Scores,
    Sweep,
    TagAdded,
    leads_to_enroll,
    may_enter,
    should_enroll,
)
from tests.engine.conftest import MONDAY

DAY = timedelta(days=1)

PROGRAM = dsl.build(
    {
        "t.nurture": """
campaign "Welcome"
  enroll when lead created
  send email "w"
campaign "Product drip"
  enroll when tagged "interest:product"
  reenter after 30 days
  send email "d"
campaign "Webinar"
  enroll when event "webinar_registered"
  send email "x"
campaign "Win back"
  enroll when inactive for 90 days
  reenter after 180 days
  send email "g"
campaign "Hot"
  enroll when segment "hot-saas"
  send email "h"
segment "hot-saas"
  tagged "industry:saas" and score >= 50 and not tagged "customer"
"""
    }
)
C = PROGRAM.campaigns
SEGMENTS = PROGRAM.segments


def cand(lead: LeadView | None = None, **kw: object) -> Candidate:
    return Candidate(lead or LeadView("L"), **kw)  # type: ignore[arg-type]


def test_lead_created_enrolls_once_by_default() -> None:
    welcome = C["Welcome"]
    assert should_enroll(welcome, cand(), LeadCreated(MONDAY), MONDAY)
    assert not should_enroll(welcome, cand(), TagAdded("x", MONDAY), MONDAY)
    done = [PastEnrollment("Welcome", MONDAY - 400 * DAY, MONDAY - 300 * DAY)]
    # no `reenter after`: never again, however long ago
    assert not should_enroll(welcome, cand(past=done), LeadCreated(MONDAY), MONDAY)


def test_tagged_fires_on_that_tag_and_reenters_after_its_delay() -> None:
    drip = C["Product drip"]
    assert should_enroll(drip, cand(), TagAdded("interest:product", MONDAY), MONDAY)
    assert not should_enroll(drip, cand(), TagAdded("interest:other", MONDAY), MONDAY)
    ended = [PastEnrollment("Product drip", MONDAY - 60 * DAY, MONDAY - 29 * DAY)]
    assert not should_enroll(drip, cand(past=ended), TagAdded("interest:product", MONDAY), MONDAY)
    ended = [PastEnrollment("Product drip", MONDAY - 60 * DAY, MONDAY - 30 * DAY)]
    assert should_enroll(drip, cand(past=ended), TagAdded("interest:product", MONDAY), MONDAY)
    running = [PastEnrollment("Product drip", MONDAY - 90 * DAY, None)]
    assert not may_enter(drip, running, MONDAY)


def test_event_fires_on_its_name() -> None:
    webinar = C["Webinar"]
    assert should_enroll(
        webinar, cand(), EventOccurred(Event("webinar_registered", MONDAY)), MONDAY
    )
    assert not should_enroll(webinar, cand(), EventOccurred(Event("opened", MONDAY)), MONDAY)


def test_inactive_for_ninety_days_on_a_sweep() -> None:
    win_back = C["Win back"]
    quiet = cand(LeadView("Q", {"last_activity_at": (MONDAY - 91 * DAY).isoformat()}))
    active = cand(
        LeadView("A", {"created_at": "2020-01-01"}), events=[Event("opened", MONDAY - DAY)]
    )
    new = cand(LeadView("N", {"created_at": (MONDAY - 10 * DAY).isoformat()}))
    unknown = cand(LeadView("U"))
    # a delivery or a bounce is not the lead's own activity
    bounced = cand(
        LeadView("B", {"created_at": "2020-01-01"}), events=[Event("bounced_soft", MONDAY - DAY)]
    )
    # an event after the sweep's moment has not happened yet
    later = cand(
        LeadView("F", {"created_at": "2020-01-01"}), events=[Event("opened", MONDAY + DAY)]
    )
    picked = leads_to_enroll(
        win_back, [quiet, active, new, unknown, bounced, later], Sweep(MONDAY), MONDAY
    )
    assert [lead.id for lead in picked] == ["Q", "B", "F"]
    # only sweeps check inactivity
    assert not should_enroll(win_back, quiet, LeadCreated(MONDAY), MONDAY)
    # and reentry after 180 days from the last end
    past = [PastEnrollment("Win back", MONDAY - 200 * DAY, MONDAY - 170 * DAY)]
    assert not should_enroll(win_back, cand(quiet.lead, past=past), Sweep(MONDAY), MONDAY)
    later = MONDAY + 10 * DAY
    assert should_enroll(win_back, cand(quiet.lead, past=past), Sweep(later), later)


def test_segment_membership() -> None:
    hot = C["Hot"]
    member = LeadView("M", tags=frozenset({"industry:saas"}), scores=Scores(fit=40, interest=15))
    customer = LeadView("C", tags=frozenset({"industry:saas", "customer"}), scores=member.scores)
    cold = LeadView("X", tags=frozenset({"industry:saas"}), scores=Scores(fit=10))
    leads = [cand(member), cand(customer), cand(cold)]
    assert [lead.id for lead in leads_to_enroll(hot, leads, Sweep(MONDAY), MONDAY, SEGMENTS)] == [
        "M"
    ]
    # a tag that brings a lead into the segment enrolls it on that change too
    assert should_enroll(hot, cand(member), TagAdded("industry:saas", MONDAY), MONDAY, SEGMENTS)
    # an unknown segment enrolls nobody
    assert not should_enroll(hot, cand(member), Sweep(MONDAY), MONDAY, {})


def test_suppressed_leads_are_not_enrolled() -> None:
    gone = LeadView("S", suppressed="unsubscribed")
    assert not should_enroll(C["Welcome"], cand(gone), LeadCreated(MONDAY), MONDAY)
