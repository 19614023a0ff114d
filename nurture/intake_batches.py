"""Imports at scale: a file checked in one streaming pass, then written in batches in another.

Pass one reads the file row by row (`nurture.intake.iter_rows`) and checks
each row as the API checks an item; the checked records go, a batch at a
time, to a spool file on disk (pickled), never all into memory, and every
problem is named by its line. A file with any problem stops there: nothing
was written. Pass two reads the spool back batch by batch and writes each
batch with a few statements (`nurture.store.batch_leads`,
`nurture.store.batch_events`) inside one transaction, so the import is still
all or nothing: the caller commits at the end or rolls everything back.
Events whose lead or delivery does not exist are only found in pass two;
their problems are collected to the end of the file, then the transaction is
rolled back.

Memory stays flat in the number of rows: one batch of rows, the spool's
current batch and the counts (plus the ids, when ``--json`` asks for them).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy.orm import Session

from nurture.intake import FileError, Kind, Row, RowProblems, iter_rows
from nurture.store.batch_events import EventBatcher
from nurture.store.batch_leads import LeadBatcher, LeadTally
from nurture.store.cleaning import LeadRules, kind_of
from nurture.tracking.schema import EventInput, Invalid, Problem, parse_events, parse_leads

BATCH: Final = 2000
"""Rows a batch: large enough that a statement's round trip is shared by many rows, small
enough that a batch's ``IN`` lists and its memory stay small."""
TICK: Final = 500
"""Rows read between two moves of the checking bar."""
KEPT_PROBLEMS: Final = 1000
"""Problems kept with their text; the rest are only counted."""


def _nothing(_count: int) -> None:
    """The default progress callback."""


@dataclass(slots=True)
class Spool:
    """A checked file: its records on disk in pickled batches of (line, record)."""

    path: Path
    file: IO[bytes]
    rows: int = 0
    _batch: list[tuple[int, Any]] = field(default_factory=list)

    def add(self, line: int, record: Any) -> None:
        self._batch.append((line, record))
        self.rows += 1
        if len(self._batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            pickle.dump(self._batch, self.file, protocol=pickle.HIGHEST_PROTOCOL)
            self._batch = []

    def batches(self) -> Iterator[list[tuple[int, Any]]]:
        """The records again, a batch at a time, in file order."""
        self._flush()
        self.file.seek(0)
        while True:
            try:
                yield pickle.load(self.file)
            except EOFError:
                return

    def close(self) -> None:
        self.file.close()


class _Problems:
    """A file's problems, the first `KEPT_PROBLEMS` with their text, all of them counted."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.total = 0

    def add(self, text: str) -> None:
        self.total += 1
        if len(self.kept) < KEPT_PROBLEMS:
            self.kept.append(text)

    def raise_any(self) -> None:
        if self.total:
            raise RowProblems(self.kept, self.total)


# ---------------------------------------------------------------- pass one: checking


def check_file(
    path: Path,
    kind: Kind,
    check: Callable[[Row], list[Any]],
    progress: Callable[[int], None] = _nothing,
) -> Spool:
    """Check every row of the file with `check` into a spool; `RowProblems`, `FileError`."""
    spool = Spool(path, tempfile.TemporaryFile())  # noqa: SIM115 (closed by the caller)
    problems = _Problems()
    seen = 0
    try:
        for row in iter_rows(path, kind):
            seen += 1
            if seen % TICK == 0:
                progress(TICK)
            if not isinstance(row.item, dict):
                problems.add(row.located(_not_an_object(row.item)))
                continue
            try:
                records = check(row)
            except Invalid as e:
                for p in e.problems:
                    problems.add(row.located(p))
                continue
            if not problems.total:  # with a problem nothing is written: keep nothing
                for record in records:
                    spool.add(row.line, record)
        progress(seen % TICK)
        if not seen:
            raise FileError(f"{path}: no rows")
        problems.raise_any()
    except BaseException:
        spool.close()
        raise
    return spool


def check_leads(path: Path, rules: LeadRules, progress: Callable[[int], None] = _nothing) -> Spool:
    """Pass one of ``leads import``: every row prepared as ``POST /api/leads`` prepares it."""
    return check_file(path, "leads", lambda row: parse_leads(row.item, rules), progress)


def check_events(
    path: Path, now: datetime, rules: LeadRules, progress: Callable[[int], None] = _nothing
) -> Spool:
    """Pass one of ``events ingest``: every row checked as ``POST /api/events`` checks it."""

    def check(row: Row) -> list[EventInput]:
        return [replace(e, path="$") for e in parse_events(row.item, now, rules)]

    return check_file(path, "events", check, progress)


# ---------------------------------------------------------------- pass two: writing


def import_leads(
    session: Session,
    spool: Spool,
    now: datetime,
    progress: Callable[[int], None] = _nothing,
    *,
    keep_ids: bool = False,
) -> LeadTally:
    """Store the checked leads batch by batch in the session's transaction; the caller commits."""
    batcher = LeadBatcher(session, now, keep_ids=keep_ids)
    for batch in spool.batches():
        batcher.store(batch)
        progress(len(batch))
    return batcher.tally


def ingest_events(
    session: Session, spool: Spool, now: datetime, progress: Callable[[int], None] = _nothing
) -> EventBatcher:
    """Record the checked events batch by batch; `RowProblems` names the rows whose lead or
    delivery does not exist (then the caller rolls back: nothing is recorded)."""
    batcher = EventBatcher(session, now)
    problems = _Problems()
    for batch in spool.batches():
        events = [event for _, event in batch]
        leads, found = batcher.resolve(events)
        for index, problem in found:
            problems.add(Row(spool.path, batch[index][0], None).located(problem))
        if not problems.total:
            batcher.record(events, leads)
        progress(len(batch))
    problems.raise_any()
    return batcher


def _not_an_object(item: Any) -> Problem:
    """One row is one item: a list in a JSON line would be several rows on one line."""
    return Problem("$", f"expected a JSON object, not {kind_of(item)}")
