"""Counting and exporting: one COUNT and one streamed query, CSV and JSONL, Chinese intact."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from dsl.graph import Json
from nurture import db
from nurture.models import Lead
from nurture.segments import Sizes, columns, count, export, sizes
from tests.segments.conftest import Loaded
from tests.segments.dataset import NOW

EVERYONE: Json = {"op": "and", "args": []}
SAAS_OR_EAST: Json = {
    "op": "or",
    "args": [{"op": "tagged", "tag": "industry:saas"}, {"op": "tagged", "tag": "区域:华东"}],
}
FIELDS = ["first_name", "company", "industry", "interests", "email_domain", "created_at", "stage"]


def exported(loaded: Loaded, cond: Json, output: str, **options: object) -> str:
    out = io.StringIO()
    with loaded.engine.connect() as connection:
        export(connection, cond, NOW, out, format=output, **options)  # type: ignore[arg-type]
    return out.getvalue()


def test_count_is_the_number_of_leads_in_the_segment(loaded: Loaded) -> None:
    with loaded.engine.connect() as connection:
        assert count(connection, SAAS_OR_EAST, NOW) == 3
        assert count(connection, EVERYONE, NOW) == 7
        assert sizes(connection, SAAS_OR_EAST, NOW) == Sizes(3, 7)


@pytest.mark.parametrize(
    ("segment", "leads", "one_pass"),
    [(3, 7, False), (9_999, 10_000, False), (10_000, 20_000, True), (400_000, 1_000_000, False)],
)
def test_tags_come_in_one_pass_when_the_segment_holds_half_the_leads(
    segment: int, leads: int, one_pass: bool
) -> None:
    assert Sizes(segment, leads).one_pass is one_pass


def test_csv_has_a_header_and_one_row_per_lead_by_id(loaded: Loaded) -> None:
    # When the segment is exported as CSV with chosen fields
    text = exported(loaded, SAAS_OR_EAST, "csv", fields=FIELDS)

    # Then the header names the columns, and each lead is a row, in id order
    rows = list(csv.DictReader(io.StringIO(text)))
    assert (
        list(rows[0])
        == columns(FIELDS)
        == [
            "id",
            "email",
            "phone",
            "messaging_id",
            *FIELDS[:-1],  # stage is a column of every row anyway
            "tags",
            "fit",
            "interest",
            "score",
            "grade",
            "stage",
        ]
    )
    ids = loaded.ids
    assert [int(r["id"]) for r in rows] == sorted([ids["ada"], ids["eve"], ids["gus"]])
    ada = next(r for r in rows if r["email"] == "ada@acme.com")
    assert ada["tags"] == "industry:saas;区域:华东"
    assert json.loads(ada["interests"]) == ["AI", "数据"]
    assert "数据" in ada["interests"]
    assert ada["email_domain"] == "acme.com"
    assert ada["created_at"] == "2025-01-15T00:00:00+00:00"
    assert (ada["fit"], float(ada["interest"]), float(ada["score"])) == ("45", 30.0, 75.0)
    assert ada["grade"] == "A"
    eve = next(r for r in rows if r["email"] == "eve@acme.com")
    assert eve["tags"] == "customer;industry:saas;白皮书下载"
    assert float(eve["score"]) == 27.5  # fit + interest + the score +N total
    assert eve["phone"] == "" and eve["company"] == ""


def test_jsonl_is_one_object_a_line_with_chinese_as_written(loaded: Loaded) -> None:
    # When the whole dataset is exported as JSONL
    fields = ["first_name", "is_customer", "interests", "industry"]
    text = exported(loaded, EVERYONE, "jsonl", fields=fields)

    # Then every line is a JSON object and Chinese is not escaped
    lines = text.splitlines()
    assert len(lines) == 7
    assert "区域:华东" in text and "制造业" in text and "\\u" not in text
    records = {r["id"]: r for r in map(json.loads, lines)}
    bo = records[loaded.ids["bo"]]
    assert bo["first_name"] == "波"
    assert bo["tags"] == ["customer", "industry:finance"]
    assert bo["is_customer"] == "yes" and bo["interests"] == []
    assert bo["score"] == 70.5 and bo["stage"] == "mql"
    cy = records[loaded.ids["cy"]]
    assert cy["email"] is None and cy["phone"] == "13912345678"
    assert cy["is_customer"] == 1 and cy["interests"] is None
    ada = records[loaded.ids["ada"]]
    assert ada["is_customer"] is False and ada["interests"] == ["AI", "数据"]
    assert records[loaded.ids["fay"]]["tags"] == []


def test_export_runs_one_query_for_the_rows_whatever_the_batch_size(loaded: Loaded) -> None:
    # Given a statement counter on the engine
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement != "BEGIN":  # SQLite's explicit BEGIN (`nurture.db`)
            statements.append(statement)

    event.listen(loaded.engine, "before_cursor_execute", seen)
    try:
        # When the count and an export in batches of 2 rows run
        with loaded.engine.connect() as connection:
            total = sizes(connection, EVERYONE, NOW)
            out = io.StringIO()
            written = export(connection, EVERYONE, NOW, out, fields=FIELDS, expected=total)
    finally:
        event.remove(loaded.engine, "before_cursor_execute", seen)

    # Then two statements ran: the COUNT and the one that streamed every row
    assert total.segment == written == 7
    assert len(statements) == 2
    assert "count(*)" in statements[0].lower()


def test_progress_hears_every_row_once(loaded: Loaded) -> None:
    heard: list[int] = []
    exported(loaded, EVERYONE, "csv", progress=heard.append)
    assert sum(heard) == 7


def test_a_cursor_reports_each_batch(loaded: Loaded) -> None:
    heard: list[int] = []
    exported(loaded, EVERYONE, "jsonl", batch=3, progress=heard.append, method="cursor")
    assert heard == [3, 3, 1]


@pytest.mark.parametrize("output", ["csv", "jsonl"])
def test_copy_and_a_cursor_write_the_same_text(loaded: Loaded, output: str) -> None:
    fields = [*FIELDS, "launch", "notes", "budget", "last_activity_at"]
    streamed = exported(loaded, EVERYONE, output, fields=fields, method="cursor", batch=2)
    if loaded.dialect != "postgresql":  # COPY is PostgreSQL's
        with pytest.raises(ValueError, match="COPY is PostgreSQL's"):
            exported(loaded, EVERYONE, output, fields=fields, method="copy")
        return
    assert exported(loaded, EVERYONE, output, fields=fields, method="copy") == streamed


@pytest.mark.parametrize("output", ["csv", "jsonl"])
def test_tags_gathered_per_lead_or_in_one_pass_read_the_same(loaded: Loaded, output: str) -> None:
    # Given the export of a small segment (a lookup a lead) and of a large one (one pass)
    few = exported(loaded, SAAS_OR_EAST, output, fields=FIELDS)
    many = exported(loaded, SAAS_OR_EAST, output, fields=FIELDS, expected=Sizes(10**6, 10**6))

    # Then both write the same
    assert few == many
    assert "白皮书下载" in many


@pytest.mark.parametrize("output", ["csv", "jsonl"])
def test_a_file_gets_the_same_text_and_progress_counts_leads_not_lines(
    db_url: str, tmp_path: Path, output: str
) -> None:
    # Given leads whose text holds line breaks, quotes and Chinese
    engine = db.make_engine(db_url)
    with Session(engine) as session:
        session.add(Lead(email="ada@acme.com", first_name="波", company='Acme\n"Labs"'))
        session.add(Lead(email="bo@qq.com", title="市场\r\n经理"))
        session.commit()

    # When the export goes to a file (on PostgreSQL, the bytes as they came) and to a StringIO
    fields = ["first_name", "company", "title"]
    heard: list[int] = []
    path = tmp_path / f"out.{output}"
    try:
        with engine.connect() as connection, path.open("w", encoding="utf-8", newline="") as file:
            written = export(
                connection, EVERYONE, NOW, file, format=output, fields=fields, progress=heard.append
            )
        text = io.StringIO()
        with engine.connect() as connection:
            export(connection, EVERYONE, NOW, text, format=output, fields=fields)
    finally:
        engine.dispose()

    # Then both hold the same text, and progress heard of each lead once
    assert path.read_bytes().decode("utf-8") == text.getvalue()
    kept = "市场\r\n经理" if output == "csv" else "市场\\r\\n经理"  # JSON escapes the break
    assert kept in text.getvalue()
    assert written == sum(heard) == 2
