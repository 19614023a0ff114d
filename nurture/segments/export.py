"""Count and export a segment: one ``COUNT``, then one streamed query that renders every row.

A row is the lead's id, identity (email, phone, messaging id), the chosen
profile fields, its tags, fit, interest, score, grade and stage. The
database renders each cell (tags aggregated, dates in ISO 8601, custom fields
as text or JSON) and, for JSONL, the whole line, so Python only moves text:

- on PostgreSQL, ``COPY (SELECT ...) TO STDOUT``: the server streams CSV (or
  JSON lines) while the client writes them, the fastest way out of it;
- elsewhere (SQLite), the same ``SELECT`` through a streamed cursor, read in
  batches (``yield_per``) and written with `csv.writer`.

Either way memory does not grow with the number of leads and no query runs per
row. Numbers print as each database prints them (``30`` or ``30.0``), lists
as JSON, tags sorted in the database's collation and joined by ``;``.

CSV files get opened in spreadsheets, which run a cell that starts with
``=``, ``+``, ``-`` or ``@`` as a formula (CSV injection). As OWASP
recommends, a text cell starting with one of those, a tab
or a carriage return gets a ``'`` in front, which spreadsheets show as text;
the database adds it, so both ways out do. ``escape_formulas=False`` writes
the text as stored, for programs that read the file. Numbers (id, fit,
interest, score) are never escaped; JSON Lines never are.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TextIO

from sqlalchemy import (
    Connection,
    Float,
    Select,
    String,
    Text,
    case,
    cast,
    func,
    literal,
    select,
    type_coerce,
)

from dsl.graph import Json
from dsl.vocabulary import LEAD_FIELDS, stored_field
from nurture.models import Lead, Tag
from nurture.segments.cells import (
    AttributeJson,
    AttributeText,
    DateText,
    EmptyArray,
    JsonObject,
    TagArray,
    TextAsJson,
)
from nurture.segments.dialect import EmailDomain, FormulaSafe, JsonKind, JsonText
from nurture.segments.sql import COLUMNS, DATE_COLUMNS, score, to_sql
from nurture.segments.values import Expr

IDENTITY: Final = ("email", "phone", "messaging_id")
DEFAULT_FIELDS: Final = ("first_name", "last_name", "company", "title")
SCORES: Final = ("fit", "interest", "score", "grade", "stage")
BATCH: Final = 5000
"""Rows fetched from a cursor at a time."""
ONE_PASS_FROM: Final = 10_000
"""Below this many leads, tags are looked up a lead at a time whatever the share."""
COPY_ROWS: Final = 2000
"""COPY messages (a row each) gathered before a write and a progress update."""
TAG_SEPARATOR: Final = ";"
"""Between tags in a CSV cell (JSONL has a list)."""
JSON_LINES: Final = "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"
"""COPY options that pass one JSON text a row through untouched: JSON escapes control
characters, so the quote and delimiter never occur and nothing is ever quoted."""

NUMERIC: Final = frozenset({"id", "fit", "interest", "score"})
"""Columns that are never text."""

Format = Literal["csv", "jsonl"]
Method = Literal["auto", "copy", "cursor"]


def columns(fields: Sequence[str]) -> list[str]:
    """The exported columns, in order, for the chosen profile `fields`."""
    return ["id", *IDENTITY, *profile_fields(fields), "tags", *SCORES]


def profile_fields(fields: Sequence[str]) -> list[str]:
    """`fields` once each, without ``lead.`` and without the columns every row has anyway."""
    always = {"id", *IDENTITY, "tags", *SCORES}
    names = (name.removeprefix("lead.") for name in fields)
    return [name for name in dict.fromkeys(names) if name and name not in always]


def known_fields(custom: Sequence[str] = ()) -> list[str]:
    """Fields an export may name: the standard profile and the declared custom ones."""
    return sorted({*LEAD_FIELDS, *custom} - {*IDENTITY})


def count_query(cond: Json, now: datetime) -> Select[Any]:
    """``SELECT count(*)`` of the leads in the segment."""
    return select(func.count()).select_from(Lead).where(to_sql(cond, now))


def count(connection: Connection, cond: Json, now: datetime) -> int:
    """How many leads the segment holds at `now`."""
    found: int = connection.execute(count_query(cond, now)).scalar_one()
    return found


# ---------------------------------------------------------------- cells


@dataclass(frozen=True, slots=True)
class Cell:
    """One exported column: its CSV text (or number) and its JSON value, in SQL."""

    name: str
    text: Expr
    json: Expr

    @classmethod
    def plain(cls, name: str, value: Expr) -> Cell:
        return cls(name, value, value)


def cells(fields: Sequence[str], tags: Cell) -> list[Cell]:
    """The cells of `columns(fields)`, in order, with the `tags` cell given."""
    return [
        Cell.plain("id", Lead.id),
        *(Cell.plain(name, COLUMNS[name]) for name in IDENTITY),
        *(_field(name) for name in profile_fields(fields)),
        tags,
        Cell.plain("fit", Lead.fit),
        _number("interest", Lead.interest),
        _number("score", type_coerce(score(), Float())),
        Cell.plain("grade", Lead.grade),
        Cell.plain("stage", Lead.stage),
    ]


def _number(name: str, value: Expr) -> Cell:
    """A float, printed by the database (``30`` on PostgreSQL, ``30.0`` on SQLite)."""
    return Cell(name, cast(value, Text), value)


def _field(name: str) -> Cell:
    if name == "stage":
        return Cell.plain(name, Lead.stage)
    if name in COLUMNS:
        return Cell.plain(name, COLUMNS[name])
    if name in DATE_COLUMNS:
        return Cell.plain(name, DateText(DATE_COLUMNS[name]))
    if name == "email_domain":
        return _email_domain()
    key = literal(stored_field(name), String())  # `account.name` is stored as `account_name`
    return Cell(name, AttributeText(Lead.attributes, key), AttributeJson(Lead.attributes, key))


def _email_domain() -> Cell:
    """``LeadView.field("email_domain")``: the attribute, else after the email's last ``@``.

    The attribute's text is NULL just when the view derives the domain (the
    attribute absent or JSON null), so a row looks the attribute up once.
    """
    stored, email = literal("email_domain", String()), literal("email", String())
    text = AttributeText(Lead.attributes, stored)
    from_attribute = case(
        (
            JsonKind(Lead.attributes, email) == "string",
            EmailDomain(JsonText(Lead.attributes, email)),
        )
    )
    derived = case((Lead.email.is_not(None), EmailDomain(Lead.email)), else_=from_attribute)
    return Cell(
        "email_domain",
        func.coalesce(text, derived),
        case(
            (text.is_not(None), AttributeJson(Lead.attributes, stored)), else_=TextAsJson(derived)
        ),
    )


@dataclass(frozen=True, slots=True)
class _Tags:
    """How a row gets its tags: the cell, and the join that feeds it (if any)."""

    cell: Cell
    join: Any = None

    @classmethod
    def per_lead(cls, format: Format) -> _Tags:
        """A correlated subquery a row over the tags' primary key: cheap for a few leads."""
        ordered = select(Tag.tag).where(Tag.lead_id == Lead.id).order_by(Tag.tag)
        inner = ordered.correlate(Lead).subquery("lead_tags")
        found = _aggregate(inner.c.tag, format)
        return cls(
            Cell(
                "tags", select(found).scalar_subquery(), EmptyArray(select(found).scalar_subquery())
            )
        )

    @classmethod
    def in_one_pass(cls, format: Format) -> _Tags:
        """Every lead's tags aggregated in one ordered pass and joined: cheap for many leads."""
        ordered = (
            select(Tag.lead_id, Tag.tag).order_by(Tag.lead_id, Tag.tag).subquery("ordered_tags")
        )
        tags: Expr = _aggregate(ordered.c.tag, format).label("tags")
        grouped = select(ordered.c.lead_id, tags).group_by(ordered.c.lead_id).subquery("lead_tags")
        cell = Cell("tags", grouped.c.tags, EmptyArray(grouped.c.tags))
        return cls(cell, grouped)


def _aggregate(tag: Expr, format: Format) -> Expr:
    return func.aggregate_strings(tag, TAG_SEPARATOR) if format == "csv" else TagArray(tag)


# ---------------------------------------------------------------- queries


def rows_query(
    cond: Json,
    now: datetime,
    fields: Sequence[str],
    format: Format = "csv",
    *,
    dialect: str = "sqlite",
    one_pass: bool = False,
    escape_formulas: bool = True,
) -> Select[Any]:
    """The segment's rows for `dialect`, by id: CSV cells, or one JSON object (text) a row.

    In CSV, empty text is NULL: CSV writers differ on quoting ``""``, and both
    read back as an empty cell anyway; text that a spreadsheet would run as a
    formula gets a ``'`` in front unless `escape_formulas` is false.
    `one_pass` aggregates the tags of every lead in one pass instead of a
    lookup a row: cheaper when the segment holds most leads (`Sizes.one_pass`).
    """
    tags = _Tags.in_one_pass(format) if one_pass else _Tags.per_lead(format)
    found = cells(fields, tags.cell)
    selected: list[Expr]
    if format == "csv":
        selected = [
            (func.nullif(c.text, "") if c.name not in NUMERIC else c.text).label(c.name)
            for c in found
        ]
    elif dialect == "postgresql":
        selected = [c.json.label(c.name) for c in found]
    else:
        pairs = [part for c in found for part in (literal(c.name, String()), c.json)]
        selected = [cast(JsonObject(*pairs), Text)]
    query = select(*selected).select_from(Lead)
    if tags.join is not None:
        query = query.outerjoin(tags.join, tags.join.c.lead_id == Lead.id)
    query = query.where(to_sql(cond, now)).order_by(Lead.id)
    if format == "jsonl" and dialect == "postgresql":  # the row as a whole, as JSON
        rows = query.subquery("lead_row")
        return select(cast(func.row_to_json(rows.table_valued()), Text)).order_by(rows.c.id)
    if format == "csv" and escape_formulas:
        return _formula_safe(query, found)
    return query


def _formula_safe(query: Select[Any], found: Sequence[Cell]) -> Select[Any]:
    """`query` with a ``'`` before each text cell a spreadsheet would run as a formula.

    The cells are computed once, in a subquery that ``OFFSET 0`` keeps the
    database from inlining: the test and the result each read a plain column
    then, where inlined they would compute the cell (a JSON lookup, the tags)
    two or three times, which doubled the time of an export.
    """
    rows = query.offset(0).subquery("lead_row")
    safe = [
        rows.c[c.name] if c.name in NUMERIC else FormulaSafe(rows.c[c.name]).label(c.name)
        for c in found
    ]
    return select(*safe).order_by(rows.c.id)


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many leads the segment holds, and how many there are in all."""

    segment: int
    leads: int

    @property
    def one_pass(self) -> bool:
        """Whether to gather tags in one pass over all leads rather than a lookup a lead.

        A lookup costs about twice what one lead's share of the pass does.
        """
        return self.segment >= ONE_PASS_FROM and 2 * self.segment >= self.leads


def sizes(connection: Connection, cond: Json, now: datetime) -> Sizes:
    """The segment's size and the number of leads, in one statement."""
    everyone = select(func.count()).select_from(Lead).scalar_subquery()
    found = connection.execute(select(count_query(cond, now).scalar_subquery(), everyone)).one()
    return Sizes(int(found[0]), int(found[1]))


def export(
    connection: Connection,
    cond: Json,
    now: datetime,
    out: TextIO,
    *,
    fields: Sequence[str] = DEFAULT_FIELDS,
    format: Format = "csv",
    progress: Callable[[int], None] | None = None,
    method: Method = "auto",
    expected: Sizes | None = None,
    batch: int = BATCH,
    escape_formulas: bool = True,
) -> int:
    """Write the segment's leads to `out`; returns how many.

    `progress` hears how many more rows were written, now and then. `method`
    ``auto`` uses ``COPY`` on PostgreSQL and a streamed cursor elsewhere.
    `expected` are the `sizes` when known (the command line counts first);
    they pick how tags are gathered (`rows_query`). `escape_formulas`: see
    the module docstring.
    """
    dialect = connection.dialect.name
    if method == "copy" and dialect != "postgresql":
        raise ValueError(f"COPY is PostgreSQL's; {dialect} exports through a cursor")
    one_pass = expected is not None and expected.one_pass
    query = rows_query(
        cond,
        now,
        fields,
        format,
        dialect=dialect,
        one_pass=one_pass,
        escape_formulas=escape_formulas,
    )
    if format == "csv":
        csv.writer(out, lineterminator="\n").writerow(columns(fields))
    if method == "copy" or (method == "auto" and dialect == "postgresql"):
        return _copy(connection, query, out, format, progress)
    return _cursor(connection, query, out, format, progress, batch)


def _cursor(
    connection: Connection,
    query: Select[Any],
    out: TextIO,
    format: Format,
    progress: Callable[[int], None] | None,
    batch: int,
) -> int:
    """The rows through a streamed cursor, `batch` at a time."""
    written = 0
    streamed = connection.execution_options(stream_results=True, yield_per=batch)
    with streamed.execute(query) as result:
        for rows in result.partitions():
            if format == "csv":
                out.write(_csv_text(rows))
            else:
                out.write("".join(row[0] + "\n" for row in rows))
            written += len(rows)
            if progress is not None:
                progress(len(rows))
    return written


def _csv_text(rows: Sequence[Any]) -> str:
    """The rows as CSV lines ending in ``\\n``, a cell holding a CR quoted as COPY quotes it.

    `csv.writer` quotes only for the characters of its line terminator, so a
    bare CR would be written as is and read back as the end of a row; a row
    with one is written with every cell quoted instead.
    """
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    if "\r" not in text.getvalue():
        return text.getvalue()
    text = io.StringIO()
    plain = csv.writer(text, lineterminator="\n")
    quoted = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        has_cr = any(isinstance(cell, str) and "\r" in cell for cell in row)
        (quoted if has_cr else plain).writerow(row)
    return text.getvalue()


def _copy(
    connection: Connection,
    query: Select[Any],
    out: TextIO,
    format: Format,
    progress: Callable[[int], None] | None,
) -> int:
    """``COPY (query) TO STDOUT`` on PostgreSQL, written as it arrives.

    The statement goes through the connection's own transaction (the one the
    count ran in) and is announced to ``before_cursor_execute`` listeners.
    Each COPY message is one row; they are gathered `COPY_ROWS` at a time and
    written as they came, without a decode where `out` allows (`_byte_writer`).

    The COPY is one statement that lasts as long as the reader takes to read a
    million rows, so the connection's ``statement_timeout`` is lifted for it
    (for this transaction); the command line's count before it, which
    evaluates the same condition, runs under the limit. A reader that goes away ends the COPY at
    the server's next write.
    """
    statement, params = _copy_statement(connection, query, format)
    if not connection.in_transaction():
        connection.begin()
    raw = connection.connection.driver_connection
    assert raw is not None
    write = _byte_writer(out, raw.info.encoding)
    with raw.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")  # this transaction only: see above
        connection.dispatch.before_cursor_execute(
            connection, cursor, statement, params, None, False
        )
        with cursor.copy(statement, params) as copy:
            rows: list[bytes] = []
            for row in copy:
                rows.append(bytes(row))  # a copy frees libpq's buffer now: faster than keeping it
                if len(rows) == COPY_ROWS:
                    _flush(rows, write, progress)
            _flush(rows, write, progress)
        rowcount: int = cursor.rowcount
    return rowcount


def _copy_statement(
    connection: Connection, query: Select[Any], format: Format
) -> tuple[str, dict[str, Any]]:
    """The ``COPY`` statement around `query`, and its parameters as the driver takes them."""
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    processors: dict[str, Any] = getattr(compiled, "_bind_processors", {})
    params = {
        name: processors[name](value) if name in processors else value
        for name, value in compiled.construct_params().items()
    }
    options = "FORMAT csv" if format == "csv" else JSON_LINES
    return f"COPY ({compiled.string}) TO STDOUT WITH ({options})", params


def _byte_writer(out: TextIO, encoding: str) -> Callable[[bytes], object]:
    """How to write text the database encoded in `encoding` to `out`.

    A file or stdout that encodes the same way takes the bytes as they are
    (after what was already written as text): decoding 150 MB only to encode
    it again cost a third of a second. Anything else (a `StringIO`) gets text.
    """
    buffer = getattr(out, "buffer", None)
    same = _codec(getattr(out, "encoding", None)) == _codec(encoding)
    if buffer is not None and same:
        out.flush()
        write: Callable[[bytes], object] = buffer.write
        return write
    return lambda data: out.write(data.decode(encoding))


def _codec(encoding: str | None) -> str | None:
    try:
        return codecs.lookup(encoding).name if encoding else None
    except LookupError:
        return None


def _flush(
    rows: list[bytes],
    write: Callable[[bytes], object],
    progress: Callable[[int], None] | None,
) -> None:
    """Write the rows that arrived, and tell `progress` how many."""
    if not rows:
        return
    write(b"".join(rows))
    if progress is not None:
        progress(len(rows))
    rows.clear()
