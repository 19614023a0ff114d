"""The segments page's work: a ``--where`` expression or a deployed segment, checked,
counted, previewed, and streamed as CSV, as ``nurture segment count|export`` do.

The expression is checked against the deployed ``fields`` (as the command
line does without PATHs); its errors come back as located diagnostics.
The preview is the first `PREVIEW` rows of the export; the CSV is the
export's (formula-safe cells, the default fields), streamed from a cursor
in batches, so a large segment never sits in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from dsl.graph import Json
from nurture.segments import (
    DEFAULT_FIELDS,
    WhereError,
    columns,
    count_query,
    fields_source,
    parse_where,
    rows_query,
)
from nurture.store.definitions import active, active_segments

PREVIEW: Final = 20
"""Rows shown on the page."""
BATCH: Final = 1000
"""Rows fetched at a time while streaming the CSV."""
MAX_EXPRESSION: Final = 4000


class Unusable(Exception):
    """Raised when the expression or segment cannot be run: the words, or its diagnostics."""

    def __init__(self, words: str, diagnostics: tuple[str, ...] = ()) -> None:
        super().__init__(words)
        self.words, self.diagnostics = words, diagnostics


@dataclass(frozen=True, slots=True)
class Counted:
    count: int
    columns: list[str]
    rows: list[tuple[Any, ...]]
    warnings: tuple[str, ...]


def deployed_names(session: Session) -> list[str]:
    return sorted(active_segments(session))


def condition(session: Session, where: str, segment: str) -> tuple[Json, tuple[str, ...]]:
    """The condition of `where` (an expression) or of the deployed `segment`, and warnings."""
    if where.strip():
        if len(where) > MAX_EXPRESSION:
            raise Unusable(f"keep the expression under {MAX_EXPRESSION} characters")
        fields = active(session, "fields")
        custom = {str(k): str(v) for k, v in dict(fields.body).items()} if fields else {}
        sources = {"<deployed fields>": fields_source(custom)} if custom else {}
        try:
            cond, warnings = parse_where(where, sources)
        except WhereError as e:
            raise Unusable("the expression has errors", _rendered(e.diagnostics)) from e
        return cond, _rendered(warnings)
    deployed = active_segments(session)
    if segment in deployed:
        return deployed[segment], ()
    if segment:
        listed = ", ".join(f'"{n}"' for n in sorted(deployed)) or "none"
        raise Unusable(f'no segment "{segment}" is deployed; deployed segments: {listed}')
    raise Unusable('write a condition, e.g. tagged "customer" and lead.fit >= 40')


def counted(session: Session, cond: Json, warnings: tuple[str, ...], now: datetime) -> Counted:
    """The segment's size and its first rows (two queries)."""
    total = int(session.scalar(count_query(cond, now)) or 0)
    dialect = session.get_bind().dialect.name
    query = rows_query(cond, now, DEFAULT_FIELDS, "csv", dialect=dialect).limit(PREVIEW)
    rows = [tuple(r) for r in session.execute(query)]
    return Counted(total, columns(DEFAULT_FIELDS), rows, warnings)


def csv_lines(sessions: Callable[[], Session], cond: Json, now: datetime) -> Iterator[str]:
    """The export's CSV, a batch of lines at a time, from its own session."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns(DEFAULT_FIELDS))
    with sessions() as session:
        dialect = session.get_bind().dialect.name
        query = rows_query(cond, now, DEFAULT_FIELDS, "csv", dialect=dialect)
        result = session.execute(query, execution_options={"yield_per": BATCH})
        for batch in result.partitions(BATCH):
            writer.writerows(batch)
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _rendered(diagnostics: Any) -> tuple[str, ...]:
    return tuple(d.render() for d in diagnostics)
