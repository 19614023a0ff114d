"""`nurture report funnel` carries the handoff: steps by source, campaign and owner, the SLA
kept, return reasons, costs and ROMI; and `nurture costs import` feeds it, all or nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture.cli import app
from nurture.db import session_factory
from nurture.handoff import sla
from nurture.handoff.answers import accept, give_back, report_stage
from nurture.models import CampaignVersion, Cost, Enrollment
from nurture.reports import funnel
from nurture.runtime.deploying import deploy_sources
from tests.handoff.test_handoff_store import RULES, east_lead, qualify

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CAMPAIGN = 'campaign "Welcome"\n  enroll when lead created\n  wait 1 day\n'
runner = CliRunner()


@pytest.fixture
def story(migrated_url: str, migrated_engine: Engine, tmp_path: Path) -> str:
    """Four east leads from two sources, in one campaign: one won after an on-time accept,
    one accepted late, one returned, one reassigned by the SLA and still waiting."""
    sessions = session_factory(migrated_engine)
    deploy_sources(sessions, {str(tmp_path / "w.nurture"): CAMPAIGN}, T)
    with sessions() as session, session.begin():
        version = session.scalars(select(CampaignVersion)).one()
        leads = []
        for n, source in enumerate(("webinar", "webinar", "ads", "ads")):
            lead = east_lead(session, f"l{n}@corp.com")
            lead.source = source
            session.add(Enrollment(lead_id=lead.id, campaign_version_id=version.id, cursor="n1"))
            assert qualify(session, lead, RULES, T) is not None
            leads.append(lead)
        won, late, returned, _waiting = leads  # owners: wang, li.na, wang, wang (round robin)
        accept(session, won, str(won.owner), T + HOUR)
        report_stage(session, won, "won", str(won.owner), T + 2 * HOUR, amount="30000")
        accept(session, late, str(late.owner), T + 30 * HOUR)
        give_back(session, returned, str(returned.owner), "no budget", T + HOUR)
        assert sla.sweep(session, T + 25 * HOUR, 10, RULES.routing) != []
        session.add_all(
            [
                Cost(
                    kind="source",
                    name="webinar",
                    month=T.date().replace(day=1),
                    amount=Decimal("10000"),
                    imported_at=T,
                ),
                Cost(
                    kind="campaign",
                    name="Welcome",
                    month=T.date().replace(day=1),
                    amount=Decimal("6000"),
                    imported_at=T,
                ),
            ]
        )
    return migrated_url


def test_the_funnel_reports_the_handoff_with_costs_and_romi(
    story: str, migrated_engine: Engine
) -> None:
    with Session(migrated_engine) as session:
        report = funnel(session, T + 40 * HOUR).sales

    ads, webinar = report.by_source  # most leads first, then by name
    assert (webinar.name, webinar.leads, webinar.mqls, webinar.accepted) == ("webinar", 2, 2, 2)
    assert (webinar.customers, webinar.won, webinar.cost) == (1, Decimal("30000"), 10000)
    assert (webinar.cost_per_mql, webinar.romi) == (Decimal("5000.00"), 3.0)
    assert (ads.leads, ads.accepted, ads.cost, ads.romi) == (2, 0, None, None)
    [welcome] = report.by_campaign
    assert (welcome.leads, welcome.cost_per_lead, welcome.romi) == (4, Decimal("1500.00"), 5.0)
    assert report.return_reasons == (("no budget", 1),)
    by_owner = {k.name: k for k in report.sla_by_owner}
    assert (by_owner["li.na@t.io"].accepted, by_owner["li.na@t.io"].in_time) == (1, 0)
    assert by_owner["wang.fang@t.io"].reassigned == 1  # the waiting lead moved on after 24 h
    [east] = report.sla_by_team
    assert (east.mqls, east.accepted, east.in_time, east.reassigned) == (4, 2, 1, 1)
    # medians of the waits to accept (of an odd and an even number of MQLs: the middle one,
    # the middle two's mean), read from the middle rows alone
    assert by_owner["wang.fang@t.io"].median_hours_to_accept == 1.0
    assert by_owner["li.na@t.io"].median_hours_to_accept == 30.0
    assert east.median_hours_to_accept == 15.5
    assert report.won == Decimal("30000")
    assert report.costs == {"source": Decimal("10000"), "campaign": Decimal("6000")}
    assert (report.romi("source"), report.romi("campaign")) == (3.0, 5.0)


def test_the_median_wait_is_of_the_waits_in_order_not_of_the_mqls_in_order(
    migrated_engine: Engine,
) -> None:
    with session_factory(migrated_engine)() as session, session.begin():
        leads = [east_lead(session, f"w{n}@corp.com") for n in range(3)]
        for lead in leads:
            assert qualify(session, lead, RULES, T) is not None
        for lead, hours in zip(leads, (5, 1, 3), strict=True):  # owners: wang, li.na, wang
            accept(session, lead, str(lead.owner), T + hours * HOUR)

    with Session(migrated_engine) as session:
        report = funnel(session, T + 10 * HOUR).sales

    [east] = report.sla_by_team
    assert (east.accepted, east.median_hours_to_accept) == (3, 3.0)
    waits = {k.name: k.median_hours_to_accept for k in report.sla_by_owner}
    assert waits == {"wang.fang@t.io": 4.0, "li.na@t.io": 1.0}


def test_report_funnel_prints_and_exports_the_handoff(
    story: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE_URL", story)

    text = runner.invoke(app, ["report", "funnel"])
    data = runner.invoke(app, ["report", "funnel", "--json"])

    assert text.exit_code == data.exit_code == 0
    for title in (
        "By source",
        "By campaign",
        "By owner",
        "SLA by owner",
        "SLA by team",
        "Return reasons",
    ):
        assert title in text.stdout
    assert "3.00×" in text.stdout  # webinar's ROMI
    sales = json.loads(data.stdout)["sales"]
    assert sales["by_source"][1]["romi"] == 3.0 and sales["accepted"] == 2


def test_costs_import_is_all_or_nothing_and_replaces_a_month(
    story: str, migrated_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE_URL", story)
    good = tmp_path / "costs.csv"
    good.write_text(
        'source,campaign,month,amount\nwebinar,,2026-03,"12,500.50"\n,Welcome,2026-04,800\n',
        encoding="utf-8",
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"source": "ads", "month": "2026-03", "amount": 5}\n'
        '{"source": "ads", "campaign": "Welcome", "month": "3/2026", "amount": -1}\n',
        encoding="utf-8",
    )

    refused = runner.invoke(app, ["costs", "import", str(bad)])
    stored = runner.invoke(app, ["costs", "import", str(good)])

    assert refused.exit_code == 1
    for words in (
        "bad.jsonl:2: source: give a source or a campaign (one of them)",
        "bad.jsonl:2: month: '3/2026' is not a month",
        "bad.jsonl:2: amount: -1 is not an amount",
        "nothing stored",
    ):
        assert words in refused.stderr
    assert stored.exit_code == 0, stored.output
    with Session(migrated_engine) as session:
        costs = {(c.kind, c.name, c.month.month): c.amount for c in session.scalars(select(Cost))}
    assert costs == {
        ("source", "webinar", 3): Decimal("12500.50"),
        ("campaign", "Welcome", 3): Decimal("6000.00"),
        ("campaign", "Welcome", 4): Decimal("800.00"),
    }
