"""A small fixed set of leads, tags and events, and the Python evaluator's verdict on it.

The leads are chosen to hit the awkward cases: case and spaces in text,
numbers written as text (``"1,500"``), true/false spelled many ways, lists
with mixed elements, JSON null, empty strings, an ``email_domain`` attribute
overriding the email, an email only in the attributes, custom events named
like standard ones, a future event, ``score +N`` totals of several types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dsl.graph import Json
from nurture.engine.conditions import Context, evaluate
from nurture.engine.state import Event as CoreEvent
from nurture.engine.state import LeadView
from nurture.models import Event, Lead, Tag
from nurture.runtime.loading import lead_view, load_events

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Person:
    """One lead of the dataset: its row, tags and events (type, name, age, link)."""

    label: str
    row: Mapping[str, Any]
    tags: tuple[str, ...] = ()
    events: tuple[tuple[str, str | None, timedelta, str | None], ...] = ()


PEOPLE: tuple[Person, ...] = (
    Person(
        "ada",
        {
            "email": "ada@acme.com",
            "first_name": "Ada",
            "company": "ACME Corp",
            "title": "CEO",
            "fit": 45,
            "interest": 30.0,
            "grade": "A",
            "stage": "lead",
            "created_at": datetime(2025, 1, 15, tzinfo=UTC),
            "attributes": {
                "industry": "SaaS",
                "employees": 1200,
                "region": "Shanghai",
                "is_customer": False,
                "interests": ["AI", "数据"],
                "budget": "1,500",
            },
        },
        ("industry:saas", "区域:华东"),
        (
            ("custom", "webinar_attended", 3 * DAY, None),
            ("opened", None, 2 * DAY, None),
            ("clicked", None, 5 * DAY, "https://acme.test/Pricing?x=1"),
        ),
    ),
    Person(
        "bo",
        {
            "email": "bo@gmail.com",
            "first_name": "波",
            "title": "VP Marketing",
            "fit": 10,
            "interest": 55.5,
            "grade": "C",
            "stage": "mql",
            "created_at": datetime(2025, 6, 1, tzinfo=UTC),
            "attributes": {
                "industry": "finance",
                "employees": "80",
                "region": "Beijing",
                "is_customer": "yes",
                "score_delta": 5,
                "interests": [],
            },
        },
        ("industry:finance", "customer"),
        (
            ("clicked", None, 40 * DAY, "https://x.test/Download"),
            ("bounced_hard", None, DAY, None),
        ),
    ),
    Person(
        "cy",
        {
            "phone": "13912345678",
            "stage": "sql",
            "created_at": datetime(2025, 12, 31, 23, 59, tzinfo=UTC),
            "attributes": {
                "email": "Cy@QQ.com",
                "industry": " saas ",
                "employees": 12.5,
                "is_customer": 1,
                "score_delta": True,
                "notes": {"a": 1},
            },
        },
        ("pool:nurture",),
        (
            ("custom", "pricing_viewed", 100 * DAY, None),
            ("custom", "opened", DAY, None),
            ("custom", "webinar_attended", -2 * DAY, None),
        ),
    ),
    Person(
        "dee",
        {
            "email": "dee@sub.example.cn",
            "first_name": "Dee",
            "title": "cto",
            "fit": 30,
            "interest": 12.25,
            "grade": "B",
            "stage": "customer",
            "created_at": datetime(2024, 6, 1, tzinfo=UTC),
            "last_activity_at": datetime(2026, 2, 20, tzinfo=UTC),
            "attributes": {
                "industry": None,
                "employees": "n/a",
                "region": "",
                "is_customer": "0",
                "email_domain": "override.cn",
                "interests": ["ml", 3, True, None, ["x"], ""],
                "launch": "2025-06-01",
            },
        },
        (),
        (("replied", None, 10 * DAY, None), ("page_viewed", None, 6 * DAY, None)),
    ),
    Person(
        "eve",
        {
            "email": "eve@acme.com",
            "company": "",
            "fit": 25,
            "interest": 0.0,
            "grade": "D",
            "stage": "returned",
            "created_at": datetime(2026, 2, 1, tzinfo=UTC),
            "attributes": {
                "industry": "SAAS",
                "employees": 500,
                "is_customer": "off",
                "score_delta": 2.5,
                "launch": "2024-12-31",
                "interests": "AI",
                "budget": " 42 ",
            },
        },
        ("industry:saas", "customer", "白皮书下载"),
        (("bounced_soft", None, 20 * DAY, None), ("custom", "", 4 * DAY, None)),
    ),
    Person(
        "fay",
        {"stage": "opportunity", "created_at": datetime(2023, 3, 3, tzinfo=UTC), "attributes": {}},
    ),
    Person(
        "gus",
        {
            "email": "gus@example.org",
            "title": "Head of Data",
            "fit": 60,
            "interest": 80.0,
            "grade": "a",
            "stage": "lead",
            "source": "webinar",
            "created_at": datetime(2024, 1, 1, tzinfo=UTC),
            "last_activity_at": datetime(2026, 2, 28, tzinfo=UTC),
            "attributes": {
                "employees": 0,
                "is_customer": "true",
                "region": "Jiangsu",
                "budget": 2000.0,
                "industry": "制造业",
                "score_delta": "7",
            },
        },
        ("industry:制造业", "区域:华东"),
        (("form_submitted", None, 29 * DAY, None), ("custom", "webinar_attended", 31 * DAY, None)),
    ),
)

FIELDS_BLOCK = """\
fields
  budget number
  interests list
  launch date
  notes text
"""
"""The custom fields the dataset's conditions may name, for `dsl.build`."""


def load(engine: Engine) -> dict[str, int]:
    """Insert `PEOPLE`; the lead id of each label."""
    ids: dict[str, int] = {}
    with Session(engine) as session:
        for person in PEOPLE:
            lead = Lead(**person.row)
            session.add(lead)
            session.flush()
            ids[person.label] = lead.id
            session.add_all(Tag(lead_id=lead.id, tag=t) for t in person.tags)
            for kind, name, age, link in person.events:
                at = NOW - age
                session.add(Event(lead_id=lead.id, type=kind, name=name, occurred_at=at, link=link))
        session.commit()
    return ids


@dataclass(frozen=True, slots=True)
class Reference:
    """The leads as the Python evaluator sees them, for comparing verdicts with SQL."""

    views: tuple[tuple[LeadView, tuple[CoreEvent, ...]], ...]

    @classmethod
    def read(cls, engine: Engine, now: datetime = NOW) -> Reference:
        """Each lead as the runtime loads it; `grade`/`fit grade` read the stored grade."""
        with Session(engine) as session:
            rows = session.execute(select(Lead.__table__).order_by(Lead.id)).all()
            tags: dict[int, list[str]] = {}
            for lead_id, tag in session.execute(select(Tag.lead_id, Tag.tag)):
                tags.setdefault(lead_id, []).append(tag)
            events = load_events(session, [r.id for r in rows], now)
        views = []
        for row in rows:
            view = lead_view(row, tags.get(row.id, ()))
            view = replace(view, scores=replace(view.scores, fit_grade=row.grade))
            views.append((view, tuple(events.get(row.id, ()))))
        return cls(tuple(views))

    def ids(self, cond: Json, now: datetime = NOW) -> set[int]:
        """The ids of the leads for which `evaluate` holds."""
        return {
            int(view.id)
            for view, events in self.views
            if evaluate(cond, Context(view, events, now))
        }
