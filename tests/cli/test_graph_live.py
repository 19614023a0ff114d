"""`nurture graph FILE --counts live`: production's numbers on the picture, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture.cli import app
from nurture.models import CampaignVersion, Delivery, Enrollment, Lead
from nurture.runtime.database import sessions_for
from nurture.runtime.deploying import deploy_sources
from nurture.runtime.edges import add_ways
from nurture.store.scoring import record_event

runner = CliRunner()
AT = datetime(2026, 3, 1, tzinfo=UTC)
FLOW = """\
campaign "Launch"
  enroll when lead created
  send email "t/hello"
  if opened within 2 days:
    send email "t/hello" as second
  else:
    exit
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "templates" / "t").mkdir(parents=True)
    (tmp_path / "templates" / "t" / "hello.email.j2").write_text(
        "{% block subject %}Hi{% endblock %}{% block html %}<a href='https://x.io'>x</a>"
        "{% endblock %}"
    )
    path = tmp_path / "launch.nurture"
    path.write_text(FLOW, encoding="utf-8")
    return path


@pytest.fixture
def deployed(migrated_engine: Engine, flow: Path) -> None:
    """Four leads in `Launch`: every one got the first email (one deferred), two opened it
    (one twice), one of them clicked and got the second; two exited at the `exit` step (the
    runtime counted one way `yes` out of the `if` and two `no`)."""
    deploy_sources(sessions_for(migrated_engine), {str(flow): FLOW}, AT)
    with Session(migrated_engine) as session, session.begin():
        version = session.query(CampaignVersion).one()
        plan = [("n3", "waiting", "sent"), ("n3", "active", "sent"), ("n4", "exited", "sent")]
        plan.append(("n4", "exited", "deferred"))
        for n, (cursor, state, status) in enumerate(plan):
            person = Lead(email=f"p{n}@client.io", created_at=AT, updated_at=AT)
            session.add(person)
            session.flush()
            enrollment = Enrollment(
                lead_id=person.id, campaign_version_id=version.id, cursor=cursor, state=state
            )
            session.add(enrollment)
            session.flush()
            first = _delivery(session, enrollment, "n1", status)
            if n < 2:
                record_event(session, person.id, "opened", None, AT, delivery_id=first.id)
            if n == 0:
                record_event(session, person.id, "opened", None, AT, delivery_id=first.id)
                record_event(session, person.id, "clicked", None, AT, delivery_id=first.id)
                _delivery(session, enrollment, "n3", "sent")
        # the ways out of the `if`, as the runtime counts them when it stores a decision
        add_ways(session, [(version.id, [("n2", "n3")]), (version.id, [("n2", "n4")])])
        add_ways(session, [(version.id, [("n2", "n4")])])


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


@pytest.mark.usefixtures("deployed")
def test_live_counts_label_each_step_with_what_the_database_records(
    migrated_url: str, flow: Path
) -> None:
    mermaid = runner.invoke(app, ["graph", str(flow), "--counts", "live", "--url", migrated_url])
    dot = runner.invoke(
        app, ["graph", str(flow), "--counts", "live", "--url", migrated_url, "--format", "dot"]
    )

    assert mermaid.exit_code == 0, mermaid.output
    text = mermaid.stdout
    assert "email: t/hello<br/>entered 4 · sent 3 · opened 2 · clicked 1 · deferred 1" in text
    assert "as second<br/>entered 1 · sent 1" in text
    assert "exit campaign<br/>exits 2" in text
    assert 'n2 -->|"yes · 1"| n3' in text and 'n2 -->|"no open in 2 days · 2"| n4' in text
    assert dot.exit_code == 0 and "\\nentered 4 · sent 3 · opened 2" in dot.stdout


def test_a_campaign_not_deployed_as_written_is_refused_by_name(
    migrated_engine: Engine, migrated_url: str, flow: Path
) -> None:
    args = ["graph", str(flow), "--counts", "live", "--url", migrated_url]
    never = runner.invoke(app, args)
    deploy_sources(sessions_for(migrated_engine), {str(flow): FLOW.replace("2 days", "3 days")}, AT)

    changed = runner.invoke(app, args)

    assert never.exit_code == 2 and "campaign 'Launch' is not deployed" in never.stderr
    assert changed.exit_code == 2 and never.stdout == "" and changed.stdout == ""
    assert f"campaign 'Launch' is not deployed as {flow} writes it (deployed versions: v1)" in (
        changed.stderr
    )


def test_a_way_nobody_took_shows_zero_once_another_was_counted(
    migrated_engine: Engine, migrated_url: str, flow: Path
) -> None:
    deploy_sources(sessions_for(migrated_engine), {str(flow): FLOW}, AT)
    args = ["graph", str(flow), "--counts", "live", "--url", migrated_url]
    uncounted = runner.invoke(app, args)
    with Session(migrated_engine) as session, session.begin():
        version = session.query(CampaignVersion).one()
        add_ways(session, [(version.id, [("n2", "n4")])])

    counted = runner.invoke(app, args)

    assert uncounted.exit_code == 0 and counted.exit_code == 0, counted.output
    assert 'n2 -->|"yes"| n3' in uncounted.stdout  # nothing counted yet: no numbers
    assert 'n2 -->|"yes · 0"| n3' in counted.stdout
    assert 'n2 -->|"no open in 2 days · 1"| n4' in counted.stdout
    assert "n1 --> n2" in counted.stdout  # one way out: no number
