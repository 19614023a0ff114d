"""`nurture deploy`: versions, redeploys, step migration and refusals, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from nurture.cli import app
from nurture.models import Campaign, CampaignVersion, Definition, Enrollment, Lead
from nurture.store import active_scoring, active_segments, current_graph, current_version

runner = CliRunner()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

V1 = """\
campaign "Welcome"
  kind welcome
  enroll when lead created
  send email "welcome/hello" subject "Hi"
  wait 3 days
  send email "welcome/tips" subject "Tips"
"""
# n1 send hello, n2 wait, n3 send tips

V2 = """\
campaign "Welcome"
  kind welcome
  enroll when lead created
  tag "welcomed"
  send email "welcome/hello" subject "Hi"
  wait 3 days
  send email "welcome/tips" subject "Tips"
"""
# n1 tag, n2 send hello, n3 wait, n4 send tips: every old step moved down by one

SCORING = """\
scoring "B2B default"
  fit:
    +20 when lead.industry in ["saas", "finance"]
  interest:
    +5 per click
  grade fit: A >= 20, else D
  mql when fit grade in [A] and interest >= 10

segment "hot"
  score >= 30
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder of campaigns with the templates they send."""
    folder = tmp_path / "campaigns"
    templates = folder / "templates" / "welcome"
    templates.mkdir(parents=True)
    (templates / "hello.email.j2").write_text("Hello", encoding="utf-8")
    (templates / "tips.email.j2").write_text("Tips", encoding="utf-8")
    write(folder, "welcome.nurture", V1)
    write(folder, "scoring.nurture", SCORING)
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def deploy(db_url: str, *args: str) -> Result:
    return runner.invoke(app, ["deploy", *args, "--url", db_url])


def versions(engine: Engine, name: str = "Welcome") -> list[tuple[int, str]]:
    with Session(engine) as session:
        rows = session.execute(
            select(CampaignVersion.version, CampaignVersion.content_hash)
            .join(Campaign)
            .where(Campaign.name == name)
            .order_by(CampaignVersion.version)
        )
        return [(v, h) for v, h in rows]


def enroll(engine: Engine, cursor: str, state: str = "waiting", **extra: object) -> int:
    """A lead enrolled in the current version of Welcome, at `cursor`."""
    with Session(engine) as session, session.begin():
        version = current_version(session, "Welcome")
        assert version is not None
        lead = Lead(email=f"{cursor}.{state}@example.com")
        session.add(lead)
        session.flush()
        enrollment = Enrollment(
            lead_id=lead.id,
            campaign_version_id=version.id,
            cursor=cursor,
            state=state,
            next_run_at=NOW,
            **extra,
        )
        session.add(enrollment)
        session.flush()
        return enrollment.id


def enrollment(engine: Engine, enrollment_id: int) -> tuple[int, str, object, object]:
    """(version number, cursor, waiting_for, iterations) of an enrollment."""
    with Session(engine) as session:
        row = session.get(Enrollment, enrollment_id)
        assert row is not None
        number = session.scalar(
            select(CampaignVersion.version).where(CampaignVersion.id == row.campaign_version_id)
        )
        assert number is not None
        return number, row.cursor, row.waiting_for, row.iterations


def table_row(output: str, name: str) -> list[str]:
    line = next(line for line in output.splitlines() if f" {name} " in line)
    return line.split()


# ---------------------------------------------------------------- versions


def test_first_deploy_stores_version_1_with_graph_source_and_hash(
    engine: Engine, db_url: str, project: Path
) -> None:
    # When the campaigns are deployed for the first time
    result = deploy(db_url, str(project))

    # Then each campaign is version 1, reported as new with a 12-character hash
    assert result.exit_code == 0, result.output
    [(number, content_hash)] = versions(engine)
    assert number == 1
    assert table_row(result.stdout, "Welcome") == [
        "campaign", "Welcome", "v1", content_hash[:12], "new",
    ]  # fmt: skip
    with Session(engine) as session:
        version = current_version(session, "Welcome")
        assert version is not None
        assert version.graph["hash"] == content_hash
        assert version.source == V1
        assert version.deployed_at.tzinfo is not None
        graph = current_graph(session, "Welcome")
        assert graph is not None and graph.hash == content_hash
        # And the scoring model and segment are stored where the engine finds them
        scoring = active_scoring(session)
        assert scoring is not None and scoring["name"] == "B2B default"
        assert set(active_segments(session)) == {"hot"}
    assert "scoring" in result.stdout and "segment" in result.stdout


def test_redeploying_unchanged_text_stores_nothing(
    engine: Engine, db_url: str, project: Path
) -> None:
    # Given a deployed project
    assert deploy(db_url, str(project)).exit_code == 0

    # When it is deployed again, with only a comment added
    write(project, "welcome.nurture", "# reviewed by sales\n" + V1)
    result = deploy(db_url, str(project))

    # Then nothing new is stored and every row says unchanged
    assert result.exit_code == 0, result.output
    assert len(versions(engine)) == 1
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Definition)) == 2
    assert table_row(result.stdout, "Welcome")[-1] == "unchanged"
    assert table_row(result.stdout, "hot")[-1] == "unchanged"
    assert "nothing changed" in result.stdout


def test_a_changed_campaign_is_version_2_and_leads_in_flight_stay_on_1(
    engine: Engine, db_url: str, project: Path
) -> None:
    # Given version 1 with a lead waiting at its second step
    assert deploy(db_url, str(project)).exit_code == 0
    waiting = enroll(engine, "n2")

    # When the campaign changes and is deployed
    write(project, "welcome.nurture", V2)
    result = deploy(db_url, str(project))

    # Then it is version 2, new leads would enter it, and the lead in flight stays on 1
    assert result.exit_code == 0, result.output
    assert [v for v, _ in versions(engine)] == [1, 2]
    assert table_row(result.stdout, "Welcome")[2:] == [
        "v2", versions(engine)[1][1][:12], "changed",
    ]  # fmt: skip
    with Session(engine) as session:
        current = current_version(session, "Welcome")
        assert current is not None and current.version == 2
    assert enrollment(engine, waiting)[:2] == (1, "n2")


def test_reverting_the_text_points_back_at_the_old_version(
    engine: Engine, db_url: str, project: Path
) -> None:
    # Given versions 1 and 2
    assert deploy(db_url, str(project)).exit_code == 0
    write(project, "welcome.nurture", V2)
    assert deploy(db_url, str(project)).exit_code == 0

    # When the first text is deployed again
    write(project, "welcome.nurture", V1)
    result = deploy(db_url, str(project))

    # Then no third copy is stored: version 1 is current again
    assert result.exit_code == 0, result.output
    assert [v for v, _ in versions(engine)] == [1, 2]
    assert "reverted (was v2)" in result.stdout
    with Session(engine) as session:
        current = current_version(session, "Welcome")
        assert current is not None and current.version == 1


def test_a_changed_scoring_model_is_the_active_one(
    engine: Engine, db_url: str, project: Path
) -> None:
    assert deploy(db_url, str(project)).exit_code == 0

    write(project, "scoring.nurture", SCORING.replace("+5 per click", "+7 per click"))
    result = deploy(db_url, str(project))

    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "B2B")[-1] == "changed"
    with Session(engine) as session:
        scoring = active_scoring(session)
        assert scoring is not None
        assert scoring["interest"][0]["points"] == 7


# ---------------------------------------------------------------- --migrate


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".json", json.dumps({"Welcome": {"n1": "n2", "n2": "n3", "n3": "n4"}})),
        (".toml", '[Welcome]\nn1 = "n2"\nn2 = "n3"\nn3 = "n4"\n'),
    ],
    ids=["json", "toml"],
)
def test_migrate_moves_leads_in_flight_to_the_new_version(
    engine: Engine, db_url: str, project: Path, tmp_path: Path, suffix: str, text: str
) -> None:
    # Given version 1 with one lead waiting at n2, one due at n3, and one finished
    assert deploy(db_url, str(project)).exit_code == 0
    waiting = enroll(engine, "n2", waiting_for={"node": "n2", "event": "opened"})
    due = enroll(engine, "n3", state="active")
    finished = enroll(engine, "end", state="done")

    # When version 2 is deployed with a map of every step
    write(project, "welcome.nurture", V2)
    step_map = write(tmp_path, f"map{suffix}", text)
    result = deploy(db_url, str(project), "--migrate", str(step_map))

    # Then the leads in flight are on version 2 at the mapped steps, the finished one is not
    assert result.exit_code == 0, result.output
    assert enrollment(engine, waiting)[:3] == (2, "n3", {"node": "n3", "event": "opened"})
    assert enrollment(engine, due)[:2] == (2, "n4")
    assert enrollment(engine, finished)[:2] == (1, "end")
    assert 'moved 2 enrollments of "Welcome" from v1 to v2' in result.stdout


def test_migrate_refuses_a_map_that_leaves_a_lead_behind(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    # Given leads in flight at n2 and n3 of version 1
    assert deploy(db_url, str(project)).exit_code == 0
    at_n2 = enroll(engine, "n2")
    at_n3 = enroll(engine, "n3", state="active")

    # When version 2 is deployed with a map that forgets n3
    write(project, "welcome.nurture", V2)
    step_map = write(tmp_path, "map.json", json.dumps({"Welcome": {"n2": "n3"}}))
    result = deploy(db_url, str(project), "--migrate", str(step_map))

    # Then the whole deploy is refused, naming the step and the enrollment left behind
    assert result.exit_code == 1
    assert 'cannot migrate "Welcome" v1 → v2' in result.stderr
    assert f"n3 (send, line 6): enrollment {at_n3} (lead " in result.stderr
    assert "Traceback" not in result.output
    # And nothing changed: no version 2, both leads where they were
    assert [v for v, _ in versions(engine)] == [1]
    assert enrollment(engine, at_n2)[:2] == (1, "n2")
    assert enrollment(engine, at_n3)[:2] == (1, "n3")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"Welcome": {"n9": "n2"}}, '--migrate "Welcome": step n9 is not in v1'),
        ({"Welcome": {"n1": "n9"}}, '--migrate "Welcome": step n9 is not in v2'),
        ({"Nope": {}}, 'campaign "Nope", which this deploy does not have'),
    ],
    ids=["old step", "new step", "campaign"],
)
def test_migrate_refuses_unknown_names(
    engine: Engine,
    db_url: str,
    project: Path,
    tmp_path: Path,
    mapping: dict[str, dict[str, str]],
    message: str,
) -> None:
    assert deploy(db_url, str(project)).exit_code == 0
    write(project, "welcome.nurture", V2)
    step_map = write(tmp_path, "map.json", json.dumps(mapping))

    result = deploy(db_url, str(project), "--migrate", str(step_map))

    assert result.exit_code == 1
    assert message in result.stderr
    assert [v for v, _ in versions(engine)] == [1]


def test_migrate_refuses_an_unchanged_campaign(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    assert deploy(db_url, str(project)).exit_code == 0
    step_map = write(tmp_path, "map.toml", '[Welcome]\nn1 = "n1"\n')

    result = deploy(db_url, str(project), "--migrate", str(step_map))

    assert result.exit_code == 1
    assert 'maps campaign "Welcome", but it is unchanged' in result.stderr


def test_a_malformed_map_is_refused_before_the_database_is_touched(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    step_map = write(tmp_path, "map.json", '{"Welcome": {"n1": 2}}')

    result = deploy(db_url, str(project), "--migrate", str(step_map))

    assert result.exit_code == 1
    assert "step 'n1' should map to a step id" in result.stderr
    assert versions(engine) == []


# ---------------------------------------------------------------- refusals


def test_a_campaign_with_errors_stores_nothing(engine: Engine, db_url: str, project: Path) -> None:
    # Given a project where one file has an error
    write(project, "broken.nurture", 'campaign "Broken"\n  enroll when lead created\n  wait 3\n')

    # When it is deployed
    result = deploy(db_url, str(project))

    # Then the diagnostics are printed as `nurture check` prints them, and nothing is stored
    assert result.exit_code == 1
    assert "broken.nurture:3:" in result.stderr
    assert "error" in result.stderr
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
        assert session.scalar(select(func.count()).select_from(Definition)) == 0


def test_a_chinese_campaign_name_round_trips(engine: Engine, db_url: str, project: Path) -> None:
    name = "华东客户沙龙邀请"
    write(project, "cn.nurture", V1.replace('"Welcome"', f'"{name}"'))

    result = deploy(db_url, str(project))

    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, name)[-1] == "new"
    with Session(engine) as session:
        graph = current_graph(session, name)
        assert graph is not None and graph.name == name
        stored = session.scalar(select(Campaign.name).where(Campaign.name == name))
        assert stored == name


def test_a_database_that_was_never_upgraded_is_refused(
    sqlite_url: str, project: Path, tmp_path: Path
) -> None:
    Path(sqlite_url.removeprefix("sqlite:///")).touch()

    result = deploy(sqlite_url, str(project))

    assert result.exit_code == 1
    assert "has no nurture schema; run `nurture db upgrade`" in result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////no/such/directory/nurture.db", "no database there"),
        ("postgresql://app:s3cret@127.0.0.1:1/nurture", "127.0.0.1"),
        ("not a url", "Could not parse"),
    ],
    ids=["missing file", "nothing listening", "not a URL"],
)
def test_an_unusable_database_is_one_line_and_exit_1(
    project: Path, url: str, expected: str
) -> None:
    result = deploy(url, str(project))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot deploy to")
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "s3cret" not in result.output


def test_teams_are_stored_with_the_routing_source_not_the_fields(
    engine: Engine, db_url: str, project: Path
) -> None:
    # Given a project with custom fields, a team in one file and the routing in another
    write(project, "fields.nurture", "fields\n  budget number\n")
    write(project, "teams.nurture", 'team "inbound"\n  member "amy@tidewater.io"\n')
    routing = 'routing\n  assign round robin team "inbound" otherwise\n'
    write(project, "routing.nurture", routing)

    # When it is deployed
    result = deploy(db_url, str(project))

    # Then the routing's stored source holds the team, and the fields' source only the fields
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        rows = session.scalars(select(Definition).where(Definition.kind.in_(["routing", "fields"])))
        sources = {row.kind: row.source for row in rows}
    assert 'team "inbound"' in sources["routing"] and routing in sources["routing"]
    assert sources["fields"] == "fields\n  budget number\n"
