"""Leads and events from files: CSV or JSON Lines rows, checked like API items, located by line.

`nurture leads import` and `nurture events ingest` read the whole file first
and check every row the way ``POST /api/leads`` and ``POST /api/events`` check
their items (`nurture.tracking.schema`). Any problem is reported as
``FILE:LINE: field: message`` and nothing is written; a file that passes is
stored in one transaction (`nurture.tracking.records`), so a failure half way
leaves nothing behind either.

CSV: a header row of field names, UTF-8 (with or without the BOM that Excel
writes). An empty cell is "not given". For leads, ``tags`` holds tags
separated by ``;`` and every column that is not a lead field is an attribute.
For events, the lead is named by the ``lead_id``, ``email``, ``phone`` or
``messaging_id`` columns, ``delivery_id`` is a number, and every other column
goes to the event's ``data``. JSON Lines (``.jsonl``, ``.ndjson``): one API
item (a JSON object) per line; blank lines are skipped. Lines end at ``\n``
(or ``\r\n``) only: U+2028, U+0085 and the like are text inside a JSON string,
as JSON Lines says, not line breaks (`str.splitlines` would split there).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

from sqlalchemy.orm import Session

from nurture.csv_words import csv_words, separator_words
from nurture.store.cleaning import CleanLead, LeadRules, kind_of
from nurture.tracking.records import Effects, LeadsOutcome, record_events, store_leads
from nurture.tracking.schema import (
    ID_DIGITS,
    EventInput,
    Invalid,
    NotJson,
    Problem,
    load_json,
    parse_events,
    parse_leads,
)

Kind = Literal["leads", "events", "costs", "accounts"]
JSON_LINES: Final = (".jsonl", ".ndjson")
EVENT_LEAD_COLUMNS: Final = {
    "lead_id": "id",
    "email": "email",
    "phone": "phone",
    "messaging_id": "messaging_id",
}
"""CSV columns that name an event's lead, and the field of ``lead`` each one fills."""
EVENT_COLUMNS: Final = ("type", "name", "at", "link", "delivery_id")
TAG_SEPARATOR: Final = ";"


class FileError(ValueError):
    """Raised when a file cannot be read as rows at all; the message names the file and line."""


class RowProblems(ValueError):
    """Raised when rows do not validate; `problems` are ``FILE:LINE: field: message`` lines.

    `total` counts them all when only the first ones were kept (a file of a million bad
    rows)."""

    def __init__(self, problems: Sequence[str], total: int | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)
        self.total = len(self.problems) if total is None else total


@dataclass(frozen=True, slots=True)
class Row:
    """One item of a file and where it stands."""

    path: Path
    line: int
    item: Any

    def located(self, problem: Problem) -> str:
        """``FILE:LINE: field: message`` for a problem found in this row's item."""
        field = problem.path.removeprefix("$").lstrip(".")
        return f"{self.path}:{self.line}: {field or 'row'}: {problem.message}"


# ---------------------------------------------------------------- reading


def read_rows(path: Path, kind: Kind) -> list[Row]:
    """Every row of a CSV or JSON Lines file as an API item; `FileError` when unreadable."""
    rows = list(iter_rows(path, kind))
    if not rows:
        raise FileError(f"{path}: no rows")
    return rows


def iter_rows(path: Path, kind: Kind) -> Iterator[Row]:
    """The rows of a CSV or JSON Lines file one by one, as API items, reading the file as it
    goes (memory flat in its length); `FileError` (raised while iterating) when unreadable."""
    try:
        with path.open("rb") as file:
            lines = _text_lines(path, file)
            if path.suffix.lower() in JSON_LINES:  # each line is already an API item
                yield from _json_lines(path, lines)
            else:
                cells = {"leads": _lead_item, "events": _event_item}.get(kind, dict)
                for row in _csv(path, lines):
                    yield replace(row, item=cells(row.item))
    except OSError as e:
        raise FileError(f"{path}: {e.strerror or e}") from None


def _text_lines(path: Path, file: BinaryIO) -> Iterator[str]:
    """The file's lines as text, each ending at ``\n`` (kept); a UTF-8 BOM at the start is
    dropped. A byte that is not UTF-8 is a `FileError` naming its offset in the file."""
    offset = 0
    for number, raw in enumerate(file):
        data = raw[3:] if number == 0 and raw.startswith(codecs.BOM_UTF8) else raw
        try:
            yield data.decode("utf-8")
        except UnicodeDecodeError as e:
            start = offset + e.start + len(raw) - len(data)
            raise FileError(f"{path}: not UTF-8 text (byte {start}); save it as UTF-8") from None
        offset += len(raw)


def _json_lines(path: Path, lines: Iterable[str]) -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = load_json(line)
        except NotJson as e:
            column = f" (column {e.column})" if e.column else ""
            raise FileError(f"{path}:{number}: not JSON: {e}{column}") from None
        yield Row(path, number, item)


def _csv(path: Path, lines: Iterable[str]) -> Iterator[Row]:
    reader = csv.reader(lines, strict=True)  # rows end at \n only
    try:
        header = [name.strip() for name in next(reader, [])]
        if not any(header):
            raise FileError(f"{path}:1: the first row must name the columns")
        _check_header(path, header)
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise FileError(
                    f"{path}:{reader.line_num}: {len(cells)} cells, "
                    f"but the header names {len(header)} columns"
                )
            values = {k: v.strip() for k, v in zip(header, cells, strict=False) if v.strip()}
            yield Row(path, reader.line_num, values)
    except csv.Error as e:
        raise FileError(f"{path}:{reader.line_num}: not valid CSV: {csv_words(e)}") from None


def _check_header(path: Path, header: list[str]) -> None:
    wrong = separator_words(header)
    if wrong is not None:
        raise FileError(f"{path}:1: {wrong}")
    if "" in header:
        raise FileError(f"{path}:1: column {header.index('') + 1} has no name")
    seen = {name for name in header if header.count(name) > 1}
    if seen:
        raise FileError(f"{path}:1: column {sorted(seen)[0]!r} is named twice")


def _lead_item(cells: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = dict(cells)
    if "tags" in item:
        item["tags"] = [t.strip() for t in item["tags"].split(TAG_SEPARATOR) if t.strip()]
    return item


def _event_item(cells: dict[str, str]) -> dict[str, Any]:
    lead: dict[str, Any] = {}
    item: dict[str, Any] = {}
    data: dict[str, str] = {}
    for column, value in cells.items():
        if column in EVENT_LEAD_COLUMNS:
            lead[EVENT_LEAD_COLUMNS[column]] = _number(value) if column == "lead_id" else value
        elif column in EVENT_COLUMNS:
            item[column] = _number(value) if column == "delivery_id" else value
        else:
            data[column] = value
    return {"lead": lead or None, **item, **({"data": data} if data else {})}


def _number(text: str) -> int | str:
    """An id cell as a number; left as text when it is none (or far too long for an id),
    for the checks to name."""
    digits = text.isascii() and text.isdigit()
    return int(text) if digits and len(text.lstrip("0")) <= ID_DIGITS else text


# ---------------------------------------------------------------- checking and storing


def check_leads(rows: Sequence[Row], rules: LeadRules) -> list[CleanLead]:
    """Each row prepared as `POST /api/leads` prepares an item; `RowProblems` on any problem."""
    problems: list[str] = []
    leads: list[CleanLead] = []
    for row in rows:
        if not isinstance(row.item, dict):
            problems.append(row.located(_not_an_object(row.item)))
            continue
        try:
            leads += parse_leads(row.item, rules)
        except Invalid as e:
            problems += [row.located(p) for p in e.problems]
    if problems:
        raise RowProblems(problems)
    return leads


def check_events(rows: Sequence[Row], now: datetime, rules: LeadRules) -> list[EventInput]:
    """Each row checked as `POST /api/events` checks an item; `RowProblems` on any problem."""
    problems: list[str] = []
    events: list[EventInput] = []
    for index, row in enumerate(rows):
        if not isinstance(row.item, dict):
            problems.append(row.located(_not_an_object(row.item)))
            continue
        try:
            events += [replace(e, path=f"${index}") for e in parse_events(row.item, now, rules)]
        except Invalid as e:
            problems += [row.located(p) for p in e.problems]
    if problems:
        raise RowProblems(problems)
    return events


def store_lead_rows(
    session: Session, leads: list[CleanLead], now: datetime, progress: Callable[[], None]
) -> LeadsOutcome:
    """Store checked leads (cleaning skips some); the caller commits."""
    return store_leads(session, leads, now, Effects(), progress=progress)


def record_event_rows(
    session: Session,
    rows: Sequence[Row],
    events: list[EventInput],
    now: datetime,
    progress: Callable[[], None],
) -> tuple[list[int], list[int]]:
    """Record checked events (ids) and make the enrollments waiting for them due (ids).

    `RowProblems` names the rows whose lead or delivery does not exist; then
    nothing is recorded (the caller rolls back).
    """
    effects = Effects()
    try:
        ids = record_events(session, events, now, effects, progress=progress)
    except Invalid as e:
        raise RowProblems([_row_of(rows, p).located(_within(p)) for p in e.problems]) from None
    return ids, effects.woken


def _not_an_object(item: Any) -> Problem:
    """One row is one item: a list in a JSON line would be several rows on one line."""
    return Problem("$", f"expected a JSON object, not {kind_of(item)}")


def _row_of(rows: Sequence[Row], problem: Problem) -> Row:
    """The row of a problem whose path starts with ``$<index>`` (see `check_events`)."""
    index = problem.path[1:].split(".", 1)[0]
    return rows[int(index)]


def _within(problem: Problem) -> Problem:
    rest = problem.path[1:].partition(".")[2]
    return Problem(f"$.{rest}" if rest else "$", problem.message)
