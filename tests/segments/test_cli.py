"""`nurture segment count|export`: where the condition comes from, output, errors and exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture import db
from nurture.cli import app
from nurture.models import Lead, Tag
from tests.segments.conftest import write

runner = CliRunner()

PROJECT = """\
fields
  budget number
  interests list

segment "hot-saas"
  tagged "industry:saas" and score >= 50 and not tagged "customer"

segment "华东"
  tagged "区域:华东"
"""


@pytest.fixture
def url(db_url: str) -> str:
    """A migrated database (each kind) with three leads."""
    engine = db.make_engine(db_url)
    with Session(engine) as session:
        leads = [
            Lead(
                email="ada@acme.com",
                first_name="Ada",
                fit=40,
                interest=20.0,
                attributes={"budget": 5000, "interests": ["AI", "数据"]},
            ),
            Lead(
                email="bo@gmail.com",
                first_name="波",
                fit=50,
                interest=10.0,
                attributes={"budget": "800"},
            ),
            Lead(email="cy@acme.com", fit=5),
        ]
        session.add_all(leads)
        session.flush()
        session.add_all(
            [
                Tag(lead_id=leads[0].id, tag="industry:saas"),
                Tag(lead_id=leads[0].id, tag="区域:华东"),
                Tag(lead_id=leads[1].id, tag="industry:saas"),
                Tag(lead_id=leads[1].id, tag="customer"),
                Tag(lead_id=leads[2].id, tag="区域:华东"),
            ]
        )
        session.commit()
    engine.dispose()
    return db_url


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path / "project", "segments.nurture", PROJECT).parent


def test_count_prints_the_size_of_a_where_expression(url: str) -> None:
    result = runner.invoke(app, ["segment", "count", "--where", 'tagged "区域:华东"', "--url", url])
    assert result.exit_code == 0, result.output
    assert result.stdout == "2\n"


def test_a_url_option_wins_over_an_unusable_environment_variable(
    url: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given NURTURE_DATABASE_URL naming a database nurture does not run on
    monkeypatch.setenv("NURTURE_DATABASE_URL", "mysql://app@db/nurture")

    # When count and deploy are given a good --url
    count = runner.invoke(app, ["segment", "count", "--where", 'tagged "区域:华东"', "--url", url])
    deploy = runner.invoke(app, ["deploy", str(project), "--url", url])

    # Then the variable plays no part
    assert (count.exit_code, count.stdout) == (0, "2\n"), count.output
    assert deploy.exit_code == 0, deploy.output


def test_count_of_a_segment_in_the_files_given(url: str, project: Path) -> None:
    result = runner.invoke(app, ["segment", "count", "hot-saas", str(project), "--url", url])
    assert result.exit_code == 0, result.output
    assert result.stdout == "1\n"


def test_a_where_expression_may_use_the_custom_fields_of_the_files(url: str, project: Path) -> None:
    where = 'lead.budget >= 1000 or lead.interests in ["数据"]'
    result = runner.invoke(app, ["segment", "count", "--where", where, str(project), "--url", url])
    assert result.exit_code == 0, result.output
    assert result.stdout == "1\n"


def test_a_bad_where_expression_is_located_on_the_expression(url: str) -> None:
    # When the expression has a typo
    result = runner.invoke(
        app, ["segment", "count", "--where", 'tagged "x" and scor >= 50', "--url", url]
    )

    # Then the diagnostic points into the expression itself, with a caret, and exit 1
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith('--where:1:16: error: unexpected "scor"')
    assert lines[1] == '    tagged "x" and scor >= 50'
    assert lines[2] == "    " + " " * 15 + "^"
    assert result.stdout == ""


def test_an_unknown_field_in_where_is_a_checked_error_with_a_hint(url: str, project: Path) -> None:
    result = runner.invoke(
        app, ["segment", "count", "--where", "lead.budgte > 1", str(project), "--url", url]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("--where:1:1: error: unknown lead field `lead.budgte`")
    assert "did you mean `lead.budget`?" in result.stderr


def test_an_unknown_segment_lists_the_known_ones(url: str, project: Path) -> None:
    result = runner.invoke(app, ["segment", "count", "hot-sass", str(project), "--url", url])
    assert result.exit_code == 2
    assert 'no segment "hot-sass"' in result.stderr
    assert 'did you mean "hot-saas"?' in result.stderr
    assert '"hot-saas", "华东"' in result.stderr


def test_no_name_and_no_where_is_usage_error(url: str) -> None:
    assert runner.invoke(app, ["segment", "count", "--url", url]).exit_code == 2
    assert runner.invoke(app, ["segment", "count", "--where", " ", "--url", url]).exit_code == 2


def test_the_deployed_segment_is_used_without_paths_and_the_files_with_them(
    url: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given "hot-saas" deployed, and a ./campaigns/ folder that defines it differently
    deployed = runner.invoke(app, ["deploy", str(project), "--url", url])
    assert deployed.exit_code == 0, deployed.output
    write(tmp_path / "cwd" / "campaigns", "s.nurture", 'segment "hot-saas"\n  tagged "区域:华东"\n')
    monkeypatch.chdir(tmp_path / "cwd")

    # When it is counted without and with PATH
    plain = runner.invoke(app, ["segment", "count", "hot-saas", "--url", url])
    files = runner.invoke(app, ["segment", "count", "hot-saas", "campaigns", "--url", url])
    exported = runner.invoke(app, ["segment", "export", "hot-saas", "--url", url])

    # Then the deployed definition wins without PATH, the files with PATH
    assert (plain.exit_code, plain.stdout) == (0, "1\n")
    assert (files.exit_code, files.stdout) == (0, "2\n")
    assert 'segment "hot-saas", deployed' in exported.stderr
    assert (
        "cy@acme.com"
        in runner.invoke(app, ["segment", "export", "hot-saas", "campaigns", "--url", url]).stdout
    )


def test_where_is_checked_against_the_deployed_fields(
    url: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["deploy", str(project), "--url", url]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["segment", "count", "--where", "lead.budget > 900", "--url", url])
    assert (result.exit_code, result.stdout) == (0, "1\n"), result.output


def test_export_csv_to_a_file_with_chinese_tags(url: str, project: Path, tmp_path: Path) -> None:
    # When the segment is exported to a file with a custom field
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        [
            "segment",
            "export",
            "华东",
            str(project),
            "--fields",
            "first_name,budget",
            "-o",
            str(out),
            "--url",
            url,
            "--progress",
        ],
    )

    # Then the file holds the rows; stderr says how many; nothing goes to stdout
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "exported 2 leads to" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["email"] for r in rows] == ["ada@acme.com", "cy@acme.com"]
    assert rows[0]["tags"] == "industry:saas;区域:华东"
    assert rows[0]["budget"] == "5000" and rows[1]["budget"] == ""
    assert not (tmp_path / "out.csv.part").exists()


def test_export_to_a_pipe_writes_into_it_and_leaves_it_a_pipe(url: str, tmp_path: Path) -> None:
    # Given a named pipe with a reader on the other end
    pipe = tmp_path / "rows"
    os.mkfifo(pipe)
    received: list[str] = []
    reader = threading.Thread(
        target=lambda: received.append(pipe.read_text(encoding="utf-8")), daemon=True
    )
    reader.start()

    # When the export is written to it
    args = ["segment", "export", "--where", "score > 1", "--format", "jsonl", "-o", str(pipe)]
    result = runner.invoke(app, [*args, "--url", url])
    reader.join(timeout=10)

    # Then the reader got the rows and the pipe is still a pipe
    assert result.exit_code == 0, result.output
    assert len(received[0].splitlines()) == 3
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    assert not (tmp_path / "rows.part").exists()


def test_export_jsonl_to_stdout(url: str) -> None:
    result = runner.invoke(
        app,
        [
            "segment",
            "export",
            "--where",
            'tagged "industry:saas"',
            "--format",
            "jsonl",
            "--fields",
            "first_name",
            "--fields",
            "email_domain",
            "--url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["first_name"] for r in records] == ["Ada", "波"]
    assert records[1]["email_domain"] == "gmail.com"
    assert records[1]["tags"] == ["customer", "industry:saas"]
    assert "波" in result.stdout


def test_an_unknown_export_field_is_usage_error(url: str) -> None:
    result = runner.invoke(
        app, ["segment", "export", "--where", "score > 1", "--fields", "compnay", "--url", url]
    )
    assert result.exit_code == 2
    assert "--fields: unknown field `compnay`; did you mean `company`?" in result.stderr


def test_an_export_field_like_none_known_says_to_declare_it(url: str) -> None:
    result = runner.invoke(
        app, ["segment", "export", "--where", "score > 1", "--fields", "zzzz", "--url", url]
    )
    assert result.exit_code == 2
    expected = "error: --fields: unknown field `zzzz`; declare it in a `fields` block\n"
    assert result.stderr == expected


def test_a_missing_database_file_is_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = runner.invoke(app, ["segment", "count", "--where", "score > 1", "--url", url])
    assert result.exit_code == 1
    assert "run `nurture db upgrade`" in result.stderr


def test_with_where_the_arguments_are_paths(url: str) -> None:
    result = runner.invoke(
        app, ["segment", "count", "hot-saas", "--where", "score > 1", "--url", url]
    )
    assert result.exit_code == 2
    assert "no such file or folder: hot-saas (with --where, the arguments are PATHs" in (
        result.stderr
    )


def test_a_database_without_the_schema_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    result = runner.invoke(
        app, ["segment", "count", "--where", "score > 1", "--url", f"sqlite:///{empty}"]
    )
    assert result.exit_code == 1
    assert "has no nurture schema; run `nurture db upgrade`" in result.stderr


def test_a_pattern_the_database_cannot_run_is_an_error_not_a_traceback(url: str) -> None:
    # Given a pattern Python reads but PostgreSQL does not (an atomic group)
    where = 'lead.first_name matches "(?>Ad)a"'
    result = runner.invoke(app, ["segment", "count", "--where", where, "--url", url])

    # Then SQLite (Python's re) runs it, and PostgreSQL's refusal is a message with exit 1
    if url.startswith("sqlite"):
        assert (result.exit_code, result.stdout) == (0, "1\n")
    else:
        assert result.exit_code == 1
        assert "the segment query failed: invalid regular expression" in result.stderr
    assert "Traceback" not in result.output


def test_without_paths_an_undeployed_segment_is_read_from_campaigns(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given nothing deployed and a ./campaigns/ folder defining the segment
    write(tmp_path / "cwd" / "campaigns", "s.nurture", PROJECT)
    monkeypatch.chdir(tmp_path / "cwd")

    # When it is counted by name alone
    result = runner.invoke(app, ["segment", "count", "华东", "--url", url])
    unknown = runner.invoke(app, ["segment", "count", "nope", "--url", url])

    # Then ./campaigns/ is where it comes from
    assert (result.exit_code, result.stdout) == (0, "2\n")
    assert unknown.exit_code == 2
    assert 'no segment "nope" in campaigns/' in unknown.stderr


FORMULAS = {
    "first_name": '=HYPERLINK("http://evil.test","Ada")',
    "last_name": "+1+2",
    "company": "-2+3",
    "title": "@SUM(A1:A9)",
}


@pytest.mark.parametrize("escape", [True, False], ids=["escaped", "--no-escape-formulas"])
def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_escaped(
    db_url: str, tmp_path: Path, escape: bool
) -> None:
    # Given a lead whose profile, tag, phone and custom field start with formula characters
    engine = db.make_engine(db_url)
    with Session(engine) as session:
        lead = Lead(
            email="mallory@acme.com",
            phone="+8615061827305",
            fit=-20,
            attributes={"note": "\tcmd", "cr": "\r=1"},
            **FORMULAS,
        )
        session.add(lead)
        session.flush()
        session.add_all([Tag(lead_id=lead.id, tag="=1+1"), Tag(lead_id=lead.id, tag="ok")])
        session.commit()
    engine.dispose()
    fields = "first_name,last_name,company,title,note,cr"
    project = write(tmp_path / "p", "fields.nurture", "fields\n  note text\n  cr text\n").parent

    # When the segment is exported as CSV (COPY on PostgreSQL, a cursor on SQLite)
    args = ["segment", "export", "--where", "fit < 0", str(project), "--fields", fields]
    args += ["--url", db_url]
    result = runner.invoke(app, args + ([] if escape else ["--no-escape-formulas"]))

    # Then every text cell starting with = + - @ tab or CR has a ' in front, numbers do not
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    quote = "'" if escape else ""
    assert {name: row[name] for name in FORMULAS} == {
        name: quote + value for name, value in FORMULAS.items()
    }
    assert (row["note"], row["cr"]) == (quote + "\tcmd", quote + "\r=1")
    assert row["tags"] == quote + "=1+1;ok"
    assert row["phone"] == quote + "+8615061827305"  # which also keeps the + in a spreadsheet
    assert (row["email"], row["fit"]) == ("mallory@acme.com", "-20")
