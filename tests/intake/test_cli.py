"""`nurture leads import` and `nurture events ingest`: files in, all or nothing, on both DBs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture.cli import app
from nurture.models import CampaignVersion, Enrollment, Event, Lead, Tag
from nurture.runtime.database import sessions_for
from nurture.runtime.deploying import deploy_sources

runner = CliRunner()

LEADS = """\
email,first_name,company,phone,tags,industry
ada@analytical-engines.io,Ada,Analytical Engines,+86 150 6182 7305,industry:saas;trial,saas
li@huaxia-manufacturing.cn,李,华夏制造,,,manufacturing
test@example.com,Test,,,,
"""


@pytest.fixture
def url(migrated_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A migrated database, the only one the commands can see."""
    monkeypatch.chdir(tmp_path)
    for name in ("NURTURE_DATABASE_URL", "NURTURE_COMPETITOR_DOMAINS"):
        monkeypatch.delenv(name, raising=False)
    return migrated_url


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


def nurture(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def leads(engine: Engine) -> dict[str, Lead]:
    with Session(engine) as session:
        return {lead.email or "": lead for lead in session.scalars(select(Lead))}


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_csv_of_leads_is_cleaned_and_stored(url: str, engine: Engine, tmp_path: Path) -> None:
    file = write(tmp_path, "leads.csv", "\ufeff" + LEADS)  # as Excel saves it

    code, out, err = nurture("leads", "import", str(file), "--url", url)

    assert code == 0, err
    stored = leads(engine)
    assert set(stored) == {"ada@analytical-engines.io", "li@huaxia-manufacturing.cn"}
    ada = stored["ada@analytical-engines.io"]
    assert (ada.first_name, ada.company, ada.phone) == (
        "Ada",
        "Analytical Engines",
        "+8615061827305",
    )
    assert ada.attributes["industry"] == "saas"
    assert stored["li@huaxia-manufacturing.cn"].company == "华夏制造"
    with Session(engine) as session:
        tags = set(session.scalars(select(Tag.tag).where(Tag.lead_id == ada.id)))
    assert tags == {"industry:saas", "trial"}
    assert "created      2" in out and "skipped      1" in out
    assert "test lead: email test@example.com" in out


def test_importing_again_updates_and_dedups_by_phone(
    url: str, engine: Engine, tmp_path: Path
) -> None:
    nurture("leads", "import", str(write(tmp_path, "a.csv", LEADS)), "--url", url)
    again = "email,phone,title\nada.l@analytical-engines.io,+8615061827305,CTO\n"

    code, out, err = nurture(
        "leads", "import", str(write(tmp_path, "b.csv", again)), "--url", url, "--json"
    )

    assert code == 0, err
    data = json.loads(out)
    assert (len(data["created"]), len(data["updated"])) == (0, 1)
    ada = leads(engine)["ada@analytical-engines.io"]
    assert ada.title == "CTO"
    assert ada.attributes["other_emails"] == ["ada.l@analytical-engines.io"]


def test_one_bad_row_stores_nothing_and_names_every_problem(
    url: str, engine: Engine, tmp_path: Path
) -> None:
    # Given rows without an identity (line 5) and with a bad email (line 7)
    rows = LEADS + ",,No identity,,,\nbob@analytical-engines.io,Bob,,,,\nnot-an-email,,,,,\n"
    file = write(tmp_path, "bad.csv", rows + "carol@analytical-engines.io,Carol,,,,,extra\n")

    # When a row has more cells than the header has columns, the file is refused whole
    code, out, err = nurture("leads", "import", str(file), "--url", url)
    assert code == 2 and out == ""
    assert f"{file}:8: 7 cells, but the header names 6 columns" in err

    # And when the rest of the file is read, every bad row is named, and nothing stored
    file.write_text(rows, encoding="utf-8")
    code, out, err = nurture("leads", "import", str(file), "--url", url)

    assert code == 1 and out == ""
    assert f"{file}:5: row: a lead needs an email, a phone or a messaging_id" in err
    assert f"{file}:7: email:" in err
    assert "2 problems" in err and "nothing stored" in err
    assert count(engine, Lead) == 0


def test_a_dry_run_says_what_would_happen_and_stores_nothing(
    url: str, engine: Engine, tmp_path: Path
) -> None:
    code, out, err = nurture(
        "leads", "import", str(write(tmp_path, "l.csv", LEADS)), "--url", url, "--dry-run"
    )

    assert code == 0, err
    assert "created      2" in out and "nothing stored (--dry-run)" in out
    assert count(engine, Lead) == 0


WAITING = """\
campaign "Webinar follow-up"
  enroll when lead created
  send email "t/more"
  if event "webinar_attended" within 7 days:
    tag "attended"
"""


def test_events_are_recorded_scored_and_wake_what_waits_for_them(
    url: str, engine: Engine, tmp_path: Path
) -> None:
    # Given an imported lead whose enrollment waits for a webinar
    nurture("leads", "import", str(write(tmp_path, "l.csv", LEADS)), "--url", url)
    li = leads(engine)["li@huaxia-manufacturing.cn"]
    (tmp_path / "templates" / "t").mkdir(parents=True)
    write(tmp_path, "templates/t/more.email.j2", "{% block subject %}More{% endblock %}Hi")
    flow = write(tmp_path, "flow.nurture", WAITING)
    sessions = sessions_for(engine)
    deploy_sources(sessions, {str(flow): WAITING}, datetime.now(UTC))
    later = datetime(2099, 1, 1, tzinfo=UTC)
    with sessions() as session, session.begin():
        version = session.scalars(select(CampaignVersion.id)).one()
        waiting = {"until": later.isoformat(), "node": "n2"}
        session.add(
            Enrollment(
                lead_id=li.id,
                campaign_version_id=version,
                cursor="n2",
                state="waiting",
                next_run_at=later,
                waiting_for=waiting,
            )
        )
    events = (
        "email,type,name,at,room\n"
        "li@huaxia-manufacturing.cn,custom,webinar_attended,2026-03-02T09:00:00+08:00,A\n"
        "li@huaxia-manufacturing.cn,page_viewed,,,\n"
    )

    # When the events are ingested
    code, out, err = nurture(
        "events", "ingest", str(write(tmp_path, "e.csv", events)), "--url", url, "--json"
    )

    # Then both are stored, with the extra column as data, and the waiting enrollment is due now
    assert code == 0, err
    data = json.loads(out)
    assert data["recorded"] == 2 and len(data["woken"]) == 1
    with Session(engine) as session:
        rows = session.scalars(select(Event).order_by(Event.id)).all()
        assert [(e.type, e.name, e.data) for e in rows] == [
            ("custom", "webinar_attended", {"room": "A"}),
            ("page_viewed", None, {}),
        ]
        enrollment = session.get(Enrollment, data["woken"][0])
        assert enrollment is not None and enrollment.next_run_at is not None
        assert enrollment.next_run_at.replace(tzinfo=UTC) < later


def test_an_event_for_an_unknown_lead_stores_nothing(
    url: str, engine: Engine, tmp_path: Path
) -> None:
    nurture("leads", "import", str(write(tmp_path, "l.csv", LEADS)), "--url", url)
    events = '{"lead": {"email": "ada@analytical-engines.io"}, "type": "opened"}\n\n'
    events += '{"lead": {"email": "nobody@x.io"}, "type": "opened"}\n'

    code, out, err = nurture(
        "events", "ingest", str(write(tmp_path, "e.jsonl", events)), "--url", url
    )

    assert code == 1 and out == ""
    assert "e.jsonl:3: lead.email: no lead with email nobody@x.io" in err
    assert count(engine, Event) == 0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("e.jsonl", '{"lead": {"id": 1}, "type": "opened"}\n{"lead": \n', "e.jsonl:2: not JSON"),
        ("e.jsonl", "[1, 2]\n", "e.jsonl:1: row: expected a JSON object, not a list"),
        ("e.csv", "email,type,email\n", "e.csv:1: column 'email' is named twice"),
        ("e.csv", "", "e.csv:1: the first row must name the columns"),
        ("e.csv", "email,type\n", "e.csv: no rows"),
        (
            "e.csv",
            "email;type\nada@analytical-engines.io;opened\n",
            "e.csv:1: the header is one column, 'email;type': "
            "separate the columns with commas, not ';'",
        ),
        (
            "e.jsonl",
            '{"lead": {"id": 1}, "type": "opened", "data": {"n": NaN}}\n',
            "e.jsonl:1: data.n: nan is not a finite number",
        ),
        (
            "e.csv",
            "lead_id,type,at\n1,opened,9999-12-31T23:00:00-14:00\n",
            "e.csv:2: at: '9999-12-31T23:00:00-14:00' is out of range (years 1 to 9999 in UTC)",
        ),
        (
            "e.csv",
            'lead_id,type\n1,"opened\n2,clicked\n',
            "e.csv:3: not valid CSV: a quoted cell is never closed",
        ),
    ],
)
def test_malformed_files_are_named_with_their_line(
    url: str, tmp_path: Path, name: str, text: str, message: str
) -> None:
    code, _out, err = nurture("events", "ingest", str(write(tmp_path, name, text)), "--url", url)

    assert code in (1, 2)
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [["leads", "import"], ["events", "ingest"]])
def test_a_bad_url_option_is_named_as_the_option(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    file = write(tmp_path, "rows.csv", LEADS)
    monkeypatch.setenv("NURTURE_DATABASE_URL", "mysql://db/x")  # overridden by --url: no matter

    code, _out, err = nurture(*command, str(file), "--url", "mysql://db/y")
    assert (code, err) == (1, "error: --url: use sqlite or postgresql, not mysql\n")

    code, _out, err = nurture(*command, str(file), "--url", url, "--dry-run")
    assert code in (0, 1) and "mysql" not in err


DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("command", "name", "text", "message"),
    [
        (
            "leads",
            "l.jsonl",
            '{"email": "ada@fabrikam.com", "x": ' + DEEP + "}\n",
            "l.jsonl:1: not JSON: arrays and objects nest more than 64 levels deep",
        ),
        ("leads", "l.jsonl", DEEP + "\n", "l.jsonl:1: not JSON: arrays and objects nest more"),
        (
            "leads",
            "l.jsonl",
            '{"email": "ada@fabrikam.com", "employees": ' + HUGE + "}\n",
            "l.jsonl:1: not JSON: a number has 5,000 digits; at most 4,300",
        ),
        (
            "events",
            "e.jsonl",
            '{"lead": {"id": 1}, "type": "opened", "delivery_id": ' + HUGE + "}\n",
            "e.jsonl:1: not JSON: a number has 5,000 digits; at most 4,300",
        ),
        (
            "events",
            "e.jsonl",
            '{"lead": {"id": 1}, "type": "opened", "delivery_id": ' + "9" * 4000 + "}\n",
            "e.jsonl:1: delivery_id: 999999999999",
        ),
        (
            "events",
            "e.csv",
            "lead_id,type,delivery_id\n1,opened," + HUGE + "\n",
            "e.csv:2: delivery_id: '999999999999",
        ),
        ("events", "e.csv", "lead_id,type\n" + HUGE + ",opened\n", "e.csv:2: lead.id: '9999"),
    ],
    ids=[
        "deep value",
        "deep line",
        "huge integer",
        "huge delivery_id",
        "long delivery_id",
        "huge CSV delivery_id",
        "huge CSV lead_id",
    ],
)
def test_absurd_json_and_numbers_are_named_not_tracebacks(
    url: str, engine: Engine, tmp_path: Path, command: str, name: str, text: str, message: str
) -> None:
    verb = "import" if command == "leads" else "ingest"

    code, out, err = nurture(command, verb, str(write(tmp_path, name, text)), "--url", url)

    assert code in (1, 2) and out == ""
    assert message in err
    assert "Traceback" not in err and len(err) < 2000
    assert count(engine, Lead) == 0 and count(engine, Event) == 0


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x1c", "\x0b", "\x0c"])
def test_a_unicode_line_separator_inside_a_value_is_text_not_a_new_line(
    url: str, engine: Engine, tmp_path: Path, separator: str
) -> None:
    # Given a JSON Lines file and a CSV file whose values hold a raw separator str.splitlines
    # would split at (valid JSON: only control characters below U+0020 must be escaped)
    name = f"A{separator}B"
    jsonl = json.dumps({"email": "ada@fabrikam.com", "first_name": name}, ensure_ascii=False)
    csv_text = f"email,first_name\nbo@fabrikam.com,{name}\ncy@fabrikam.com,Cy\n"

    # When both are imported (json.dumps escapes the control characters, as JSON requires)
    first = nurture("leads", "import", str(write(tmp_path, "l.jsonl", jsonl + "\n")), "--url", url)
    second = nurture("leads", "import", str(write(tmp_path, "l.csv", csv_text)), "--url", url)

    # Then every row is one lead, the value kept whole
    assert first[0] == 0, first[2]
    assert second[0] == 0, second[2]
    stored = leads(engine)
    assert stored["ada@fabrikam.com"].first_name == name
    assert stored["bo@fabrikam.com"].first_name == name
    assert set(stored) == {"ada@fabrikam.com", "bo@fabrikam.com", "cy@fabrikam.com"}


def test_the_forms_of_one_mailbox_are_one_lead(url: str, engine: Engine, tmp_path: Path) -> None:
    # Given one mailbox written as the sender would deliver it in three ways, across rows
    # and files (a JSON line may hold what a CSV cell can)
    rows = 'email,first_name\n<a@fabrikam.com>,A\n"""a""@fabrikam.com",B\n'
    more = '{"email": "a@fabrikam.com", "title": "CTO"}\n{"email": " <\\"A\\"@Fabrikam.com> "}\n'

    # When both files are imported
    first = nurture("leads", "import", str(write(tmp_path, "a.csv", rows)), "--url", url)
    second = nurture("leads", "import", str(write(tmp_path, "b.jsonl", more)), "--url", url)

    # Then they are one lead, stored as the sender puts it in RCPT TO
    assert first[0] == 0, first[2]
    assert second[0] == 0, second[2]
    stored = leads(engine)
    assert list(stored) == ["a@fabrikam.com"]
    assert stored["a@fabrikam.com"].title == "CTO"
    assert "other_emails" not in stored["a@fabrikam.com"].attributes


@pytest.mark.parametrize(
    "email",
    [
        '"a b"@fabrikam.com',
        '"x@y.com"@fabrikam.com',
        "a@fabrikam.com>",
        "A <a@x.com>",
        "a(c)@x.com",
    ],
)
def test_an_address_the_sender_would_refuse_or_rewrite_is_named(
    url: str, engine: Engine, tmp_path: Path, email: str
) -> None:
    line = json.dumps({"email": email})

    code, out, err = nurture("leads", "import", str(write(tmp_path, "l.jsonl", line)), "--url", url)

    assert code == 1 and out == ""
    assert f"l.jsonl:1: email: {email!r}" in err
    assert count(engine, Lead) == 0
