"""`nurture report funnel` and `nurture report campaign`: counts checked by hand, on both DBs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture.cli import app
from nurture.models import CampaignVersion, Delivery, Enrollment, Lead
from nurture.reports import Source, campaign_report, funnel
from nurture.runtime.database import sessions_for
from nurture.runtime.deploying import deploy_sources
from nurture.store.lifecycle import mark_mql, return_to_nurture, transition
from nurture.store.scoring import record_event

NOW = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
runner = CliRunner()


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def url(migrated_url: str) -> str:
    return migrated_url


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


def lead(session: Session, name: str, created: datetime, source: str | None) -> Lead:
    row = Lead(email=f"{name}@client.io", source=source, created_at=created, updated_at=created)
    session.add(row)
    session.flush()
    return row


@pytest.fixture
def funnel_data(engine: Engine) -> None:
    """Six leads, each taking a different way through the funnel (see each line)."""
    with Session(engine) as session, session.begin():
        a = lead(session, "a", at(3, 1), "webinar")  # MQL after 4 days, then sql, opportunity
        mark_mql(session, a, "rule", "rule", None, at(3, 5), DAY)
        transition(session, a, "sql", "accepted", at(3, 5, 12))
        transition(session, a, "opportunity", "deal", at(3, 10))
        b = lead(session, "b", at(3, 2), "webinar")  # MQL yesterday: sales has until 12:00
        mark_mql(session, b, "rule", "rule", None, at(3, 19, 12), DAY)
        c = lead(session, "c", at(2, 1), "ads")  # MQL last month, never answered
        mark_mql(session, c, "rule", "rule", None, at(2, 11), DAY)
        d = lead(session, "d", at(3, 10), None)  # just a lead
        e = lead(session, "e", at(2, 15), "ads")  # straight to sql, no MQL record
        transition(session, e, "sql", "met at a fair", at(2, 20))
        f = lead(session, "f", at(3, 3), None)  # MQL after 3 days, returned the next
        mark_mql(session, f, "rule", "rule", None, at(3, 6), DAY)
        return_to_nurture(session, f, "no budget", at(3, 7))
        assert d.stage == "lead"


def test_the_funnel_counts_stages_conversion_sources_timing_and_sla(
    engine: Engine, funnel_data: None
) -> None:
    with Session(engine) as session:
        report = funnel(session, NOW)

    assert report.leads == 6
    reached = [(s.stage, s.now, s.reached) for s in report.stages]
    assert reached == [
        ("lead", 1, 6),
        ("mql", 2, 5),  # e jumped over mql; f was an MQL before it was returned
        ("sql", 1, 2),
        ("opportunity", 1, 1),
        ("customer", 0, 0),
    ]
    assert [s.conversion for s in report.stages] == [None, 5 / 6, 2 / 5, 1 / 2, 0.0]
    assert report.returned == 1
    # e jumped to sql: as in the stages above, it counts as having reached MQL
    assert report.sources == (Source("", 2, 1), Source("ads", 2, 2), Source("webinar", 2, 2))
    assert (report.days_to_mql_median, report.days_to_mql_p90) == (7.0, 17.5)  # 3, 4, 10, 17.5
    assert (report.mqls_this_month, report.mqls_last_month) == (3, 1)
    assert report.lead_velocity_rate == 2.0
    assert (report.sla_waiting, report.sla_overdue) == (1, 1)  # b in time, c overdue


def test_the_funnel_since_a_date_counts_only_leads_created_since(
    engine: Engine, funnel_data: None
) -> None:
    with Session(engine) as session:
        report = funnel(session, NOW, since=at(3, 1))

    assert report.leads == 4  # a, b, d, f
    assert [s.reached for s in report.stages] == [4, 3, 1, 1, 0]
    assert report.mqls_last_month == 0 and report.lead_velocity_rate is None


def test_an_empty_database_has_an_empty_funnel(engine: Engine) -> None:
    with Session(engine) as session:
        report = funnel(session, NOW)

    assert report.leads == 0 and report.sources == ()
    assert [s.conversion for s in report.stages] == [None, None, None, None, None]
    assert report.days_to_mql_median is None and report.days_to_mql_p90 is None


FLOW = """\
campaign "Launch"
  enroll when lead created
  send email "t/hello"
  wait 2 days
  send email "t/hello" as second
"""


@pytest.fixture
def campaign_data(engine: Engine, tmp_path: Path) -> None:
    """Three leads in `Launch`: all got the first email, two opened it (one twice), one
    clicked and unsubscribed; one second email went out; one lead exited."""
    (tmp_path / "templates" / "t").mkdir(parents=True)
    (tmp_path / "templates" / "t" / "hello.email.j2").write_text(
        "{% block subject %}Hi{% endblock %}{% block html %}<a href='https://x.io'>x</a>"
        "{% endblock %}"
    )
    deploy_sources(sessions_for(engine), {str(tmp_path / "launch.nurture"): FLOW}, at(3, 1))
    with Session(engine) as session, session.begin():
        version = session.query(CampaignVersion).one()
        for n, state in enumerate(["waiting", "done", "exited"]):
            person = lead(session, f"p{n}", at(3, 1), None)
            enrollment = Enrollment(
                lead_id=person.id,
                campaign_version_id=version.id,
                cursor="n3",
                state=state,
                exit_reason="unsubscribed" if state == "exited" else None,
            )
            session.add(enrollment)
            session.flush()
            first = _delivery(session, enrollment, "n1", "sent")
            if n < 2:
                record_event(session, person.id, "opened", None, at(3, 2), delivery_id=first.id)
            if n == 0:
                record_event(session, person.id, "opened", None, at(3, 3), delivery_id=first.id)
                record_event(session, person.id, "clicked", None, at(3, 3), delivery_id=first.id)
            if n == 2:
                record_event(
                    session, person.id, "unsubscribed", None, at(3, 2), delivery_id=first.id
                )
            if n == 1:
                _delivery(session, enrollment, "n3", "sent")
            if n == 0:
                _delivery(session, enrollment, "n3", "failed")


def _delivery(session: Session, enrollment: Enrollment, step: str, status: str) -> Delivery:
    row = Delivery(
        enrollment_id=enrollment.id,
        step_id=step,
        lead_id=enrollment.lead_id,
        channel="email",
        template="t/hello",
        status=status,
        message_id=f"{enrollment.id}.{step}@acme.test",
    )
    session.add(row)
    session.flush()
    return row


def test_a_campaign_report_counts_versions_and_steps(engine: Engine, campaign_data: None) -> None:
    with Session(engine) as session:
        report = campaign_report(session, "Launch")

    [version] = report.versions
    assert dict(version.states) == {"waiting": 1, "done": 1, "exited": 1}
    assert dict(version.exits) == {"unsubscribed": 1}
    first, second = report.steps
    assert (first.step, first.kind, first.template, first.sent) == ("n1", "send", "t/hello", 3)
    assert dict(first.engaged) == {"opened": 2, "clicked": 1, "unsubscribed": 1}  # unique
    assert first.rate("opened") == pytest.approx(2 / 3)
    assert (second.step, dict(second.touches)) == ("n3", {"sent": 1, "failed": 1})
    assert second.rate("opened") == 0


def test_the_report_commands_print_tables_and_json(
    url: str, campaign_data: None, funnel_data: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NURTURE_DATABASE_URL", raising=False)

    table = runner.invoke(app, ["report", "campaign", "Launch", "--url", url])
    data = runner.invoke(app, ["report", "campaign", "Launch", "--url", url, "--json"])
    funnel_table = runner.invoke(app, ["report", "funnel", "--url", url])
    funnel_json = runner.invoke(app, ["report", "funnel", "--url", url, "--json"])

    assert table.exit_code == 0, table.output
    assert "t/hello" in table.stdout and "2 (66.7%)" in table.stdout
    assert json.loads(data.stdout)["steps"][0]["engaged"]["opened"] == 2
    assert funnel_table.exit_code == 0, funnel_table.output
    assert "Funnel of the 9 leads" in funnel_table.stdout and "webinar" in funnel_table.stdout
    assert json.loads(funnel_json.stdout)["stages"][1] == {
        "stage": "mql",
        "now": 2,
        "reached": 5,
        "conversion": 5 / 9,
    }


def test_unknown_campaigns_and_bad_dates_are_usage_errors(url: str, campaign_data: None) -> None:
    unknown = runner.invoke(app, ["report", "campaign", "launch", "--url", url])
    since = runner.invoke(app, ["report", "funnel", "--since", "March", "--url", url])

    assert unknown.exit_code == 2
    assert "no campaign 'launch'; did you mean 'Launch'?" in unknown.stderr
    assert since.exit_code == 2 and "write a date such as 2026-03-01" in since.stderr
