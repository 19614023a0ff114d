"""The story reads the lead's events once, for its timeline and for the scoring rules behind
the points: the rules are those `explain` gives over the events the scores count (up to
now, after the latest return), and the timeline still has every event."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from nurture.engine.scoring import explain
from nurture.handoff.story import story
from nurture.models import Definition
from nurture.store import record_event
from nurture.store.lifecycle import return_to_nurture
from nurture.store.views import engine_events, lead_view
from tests.handoff.test_handoff_store import HOUR, RULES, T, east_lead, qualify
from tests.store.test_scoring_store import MODEL


def test_the_rules_count_the_events_after_the_return_and_the_timeline_has_them_all(
    session: Session,
) -> None:
    session.add(
        Definition(
            kind="scoring", name="m", version=1, content_hash="0" * 64, body=MODEL, source="s"
        )
    )
    lead = east_lead(session, "ada@corp.com")
    assert qualify(session, lead, RULES) is not None  # webinar events: the interest of an MQL
    assert return_to_nurture(session, lead, "not now", T + HOUR) is not None
    for kind, at in (("clicked", 2), ("opened", 3), ("opened", 30)):  # the last one: future
        record_event(session, lead.id, kind, None, T + timedelta(hours=at), rules=RULES)
    now = T + 5 * HOUR

    told = story(session, lead, now)

    interest = {r["rule"]: r["times"] for r in told["scores"]["because"] if r["part"] != "fit"}
    assert interest == {"+5 per click": 1, "+1 per open": 1}  # not the webinars, not the future
    events = engine_events(session, lead.id, until=now, after=T + HOUR)
    expected = explain(MODEL, lead_view(session, lead), events, now)
    assert [(r["part"], r["rule"], r["points"], r["times"]) for r in told["scores"]["because"]] == [
        (r.part, r.rule, round(r.points, 2), r.times) for r in expected
    ]
    shown = [e["what"] for e in told["timeline"] if e["kind"] == "event"]
    assert shown.count("opened") == 2 and "clicked" in shown
    assert '"webinar_attended"' in shown  # before the return: in the story, not in the score


def test_without_a_scoring_model_there_are_no_rules_and_the_timeline_is_whole(
    session: Session,
) -> None:
    lead = east_lead(session, "ada@corp.com")
    record_event(session, lead.id, "clicked", None, T, rules=RULES)

    told = story(session, lead, T + HOUR)

    assert told["scores"]["because"] == []
    assert [e["what"] for e in told["timeline"] if e["kind"] == "event"] == ["clicked"]
