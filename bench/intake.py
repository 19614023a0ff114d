"""Imports at scale: ``nurture leads import`` and ``nurture events ingest`` against a bare
executemany of the same rows, on PostgreSQL and SQLite, in one run.

    python bench/intake.py [--pg-rows 1000000] [--sqlite-rows 100000] [--url URL]

For each database it writes a CSV of N leads (email, phone, names, company,
title, source, two tags, two custom fields) and a CSV of N events (opened,
clicked, page_viewed, each naming a random one of the leads by email),
migrates a fresh database (PostgreSQL: a schema of its own in the ``test``
database, dropped at the end; SQLite: a temporary file), deploys the example
campaigns (so the example scoring model scores every lead and event), then
runs each command in a fresh process, as a user would, and reads its wall
time and peak RSS. The baseline is SQLAlchemy Core's ``executemany`` of the
same rows (the columns the command writes for each lead or event, from the
same file) into a bare table with the same columns, in batches of 2,000 rows
in one transaction: the ratio is the command's rows per second over the
baseline's. The goal of issue 11 is a ratio of at least 0.25 at 1,000,000
rows on PostgreSQL, with peak RSS flat in the number of rows. ``--pg-rows 0``
or ``--sqlite-rows 0`` leaves a database out.

Measured on a shared 2-CPU machine (load 5 to 14), 1,000,000 on PostgreSQL and 100,000 on
SQLite: leads 1,046 rows/s on PostgreSQL (0.08 of the executemany's 12,795) and 2,929 on
SQLite (0.24); events 952 rows/s (0.04 of 25,164) and 2,025 (0.06); the row-by-row path it
replaces did about 200. What limits it is Python work a row, not the database: the API's
checks and cleaning, the fit rules evaluated for every new lead, and every event rescored
with the MQL rule applied, as `record_event` does (about 0.2 ms a row in all; the SQL is
about a sixth of the time in a profile). Peak RSS: 135 MB at 1,000,000 leads on PostgreSQL
(133 MB at 10,000); on SQLite 101 MB at 10,000 leads and at 40,000. A second run of
100,000 on SQLite alone (load 3 to 5): leads 4,686 rows/s (0.22 of 21,107), events 4,007
(0.06 of 64,734), peak RSS 102 and 130 MB.

Then leads on PostgreSQL stopped sending each batch as one multi-row ``INSERT ...
RETURNING`` (psycopg re-parsed that huge statement in Python, a third of the time in a
profile) for ids from the sequence and a pipelined executemany, the batches' ``IN`` lists
became ``= ANY(array)``, and scoring uses the model compiled once (`CompiledScoring`).
Both versions at 100,000, one after the other (load 1.4 to 2.7): PostgreSQL leads 2,704 ->
3,906 rows/s (0.08 -> 0.20), events 3,312 -> 3,048 (0.06 -> 0.08); SQLite leads 6,175 ->
4,778 (0.21 -> 0.19, the baseline 13% slower in the second run), events 4,489 -> 3,754
(0.05 -> 0.05). A cProfile of 20,000 on PostgreSQL: leads 65.6 -> 16.9 s, events 35.2 ->
22.5 s. What limits leads now is the checking pass (the API's checks and cleaning, about a
third) and the executemany itself; events, spread-out Python per event (the lead's view,
rescore, next decay, MQL rule) plus the row-by-row path for each event that makes an MQL
(transition, routing, notice: about 30 ms each, some 0.5% of the example's events).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    pool,
    select,
    text,
)

from nurture import db
from nurture.models import Lead
from nurture.store.cleaning import phone_verdict

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parents[1]
COMMAND = (
    "import atexit, os, re\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    kb = re.search(r'VmHWM:\\s*(\\d+)', status)[1]\n"
    "    open(os.environ['BENCH_PEAK_FILE'], 'w').write(kb)\n"
    "atexit.register(peak)\n"
    "from nurture.cli import main; main()"
)
"""The command line, noting its own peak RSS (VmHWM, of this program only: ``ru_maxrss`` of a
child counts the parent's size at the fork) in a file as it exits."""
BATCH = 2000
FIRST = ("Ada", "波", "Chen", "Dee", "Eve", "Fay", "Gus", "李娜")
LAST = ("Li", "Wang", "Smith", "Zhang", "Garcia")
TITLES = ("CEO", "VP Marketing", "Engineer", "CTO", "Analyst", "市场经理")
INDUSTRIES = ("saas", "finance", "retail", "manufacturing")
TYPES = ("opened", "clicked", "page_viewed")


@dataclass(frozen=True, slots=True)
class Result:
    database: str
    kind: str
    rows: int
    seconds: float
    peak_rss_mb: float
    baseline_seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def baseline_rate(self) -> float:
        return self.rows / self.baseline_seconds


# ---------------------------------------------------------------- the files


def _email(i: int) -> str:
    return f"lead{i}@company{i % 5000}.com"


def write_leads(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        out = csv.writer(file)
        out.writerow(
            [
                *("email", "phone", "first_name", "last_name", "company", "title", "source"),
                *("tags", "industry", "employees"),
            ]
        )
        for i in range(count):
            phone = f"+86 1{3 + i % 6}{(i * 7919 + 12345678) % 1000000000:09d}"
            if phone_verdict(phone.replace(" ", "")) is not None:
                phone = ""  # no junk number: every lead is stored, so events find it
            out.writerow(
                [
                    _email(i),
                    phone,
                    FIRST[i % len(FIRST)],
                    LAST[i % len(LAST)],
                    f"Company {i % 5000}",
                    TITLES[i % len(TITLES)],
                    "webinar" if i % 3 else "ads",
                    f"industry:{INDUSTRIES[i % 4]};import",
                    INDUSTRIES[i % 4],
                    (i * 37) % 5000,
                ]
            )


def write_events(path: Path, count: int, leads: int) -> None:
    rnd = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as file:
        out = csv.writer(file)
        out.writerow(["email", "type", "link"])
        for i in range(count):
            kind = TYPES[i % 3]
            out.writerow(
                [_email(rnd.randrange(leads)), kind, "pricing" if kind == "clicked" else ""]
            )


# ---------------------------------------------------------------- the command


def run_command(args: list[str], url: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``nurture`` command in a fresh process."""
    peak = Path(tempfile.mkdtemp()) / "peak"
    env = {**os.environ, "NURTURE_DATABASE_URL": url, "NURTURE_SECRET_KEY": "bench"}
    env["BENCH_PEAK_FILE"] = str(peak)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", COMMAND, *args], env=env, stdout=subprocess.PIPE, cwd=ROOT
    )
    assert process.stdout is not None
    output = process.stdout.read()
    status = process.wait()
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"nurture {' '.join(args)} failed:\n{output.decode()}")
    return seconds, int(peak.read_text()) / 1024


# ---------------------------------------------------------------- the baseline


def bare_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Tables with the columns the import writes, the identity columns unique as in ``leads``."""
    leads = Table(
        "bare_leads",
        metadata,
        Column("id", Integer, primary_key=True),
        *[
            Column(c.name, c.type, unique=c.name in ("email", "phone", "messaging_id"))
            for c in Lead.__table__.columns
            if c.name != "id"
        ],
    )
    events = Table(
        "bare_events",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("lead_id", Integer),
        Column("type", String(16)),
        Column("name", String(200)),
        Column("delivery_id", Integer),
        Column("link", Text),
        Column("occurred_at", DateTime(timezone=True)),
        Column("data", JSON),
        Column("triggers_checked_at", DateTime(timezone=True)),
    )
    return leads, events


def _lead_rows(path: Path) -> Iterator[dict[str, Any]]:
    now = datetime.now(UTC)
    columns = [c.name for c in Lead.__table__.columns if c.name != "id"]
    with path.open(encoding="utf-8", newline="") as file:
        for cells in csv.DictReader(file):
            row: dict[str, Any] = dict.fromkeys(columns)
            row.update(
                email=cells["email"],
                phone="+86" + cells["phone"][4:] if cells["phone"] else None,
                first_name=cells["first_name"],
                last_name=cells["last_name"],
                company=cells["company"],
                title=cells["title"],
                source=cells["source"],
                attributes={"industry": cells["industry"], "employees": int(cells["employees"])},
                time_zone="UTC",
                stage="lead",
                fit=0,
                interest=0.0,
                created_at=now,
                updated_at=now,
            )
            yield row


def _event_rows(path: Path, ids: dict[str, int]) -> Iterator[dict[str, Any]]:
    now = datetime.now(UTC)
    with path.open(encoding="utf-8", newline="") as file:
        for cells in csv.DictReader(file):
            yield {
                "lead_id": ids[cells["email"]],
                "type": cells["type"],
                "name": None,
                "delivery_id": None,
                "link": cells["link"] or None,
                "occurred_at": now,
                "data": {},
                "triggers_checked_at": None,
            }


def executemany(engine: Engine, table: Table, rows: Iterator[dict[str, Any]]) -> float:
    """Seconds to insert the rows with Core executemany, 2,000 a statement, one transaction."""
    started = time.perf_counter()
    with engine.begin() as connection:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                connection.execute(insert(table), batch)
                batch = []
        if batch:
            connection.execute(insert(table), batch)
    return time.perf_counter() - started


# ---------------------------------------------------------------- one database


def bench(database: str, url: str, rows: int, folder: Path) -> list[Result]:
    leads_csv, events_csv = folder / f"leads-{rows}.csv", folder / f"events-{rows}.csv"
    if not leads_csv.exists():
        write_leads(leads_csv, rows)
        write_events(events_csv, rows, rows)
    db.upgrade(url)
    run_command(["deploy", str(ROOT / "campaigns")], url)
    lead_seconds, lead_rss = run_command(["leads", "import", str(leads_csv)], url)
    event_seconds, event_rss = run_command(["events", "ingest", str(events_csv)], url)
    engine = db.make_engine(url)
    try:
        leads, events = bare_tables(MetaData())
        leads.metadata.create_all(engine)
        bare_leads = executemany(engine, leads, _lead_rows(leads_csv))
        with engine.connect() as connection:
            ids = {e: i for i, e in connection.execute(select(Lead.id, Lead.email))}
        bare_events = executemany(engine, events, _event_rows(events_csv, ids))
    finally:
        engine.dispose()
    return [
        Result(database, "leads", rows, lead_seconds, lead_rss, bare_leads),
        Result(database, "events", rows, event_seconds, event_rss, bare_events),
    ]


def postgres(url: str, rows: int, folder: Path) -> list[Result]:
    admin = create_engine(
        db.normalize_url(url), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT"
    )
    schema = f"bench_intake_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
        return bench("PostgreSQL", scoped.render_as_string(hide_password=False), rows, folder)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg-rows", type=int, default=1_000_000, help="leads and events on PostgreSQL"
    )
    parser.add_argument(
        "--sqlite-rows", type=int, default=100_000, help="leads and events on SQLite"
    )
    parser.add_argument("--url", default=os.environ.get("NURTURE_TEST_PG_URL", DEFAULT_URL))
    args = parser.parse_args()
    results: list[Result] = []
    with TemporaryDirectory(prefix="bench-intake-") as tmp:
        folder = Path(tmp)
        if args.pg_rows:
            results += postgres(args.url, args.pg_rows, folder)
        if args.sqlite_rows:
            url = f"sqlite:///{folder / 'bench.db'}"
            results += bench("SQLite", url, args.sqlite_rows, folder)
    table = RichTable(title="nurture leads import / events ingest vs a bare executemany")
    for name in ("database", "kind", "rows", "seconds", "rows/s", "executemany rows/s", "ratio"):
        table.add_column(name, justify="left" if name in ("database", "kind") else "right")
    table.add_column("peak RSS MB", justify="right")
    for r in results:
        table.add_row(
            r.database,
            r.kind,
            f"{r.rows:,}",
            f"{r.seconds:.1f}",
            f"{r.rate:,.0f}",
            f"{r.baseline_rate:,.0f}",
            f"{r.rate / r.baseline_rate:.2f}",
            f"{r.peak_rss_mb:.0f}",
        )
    console = Console()
    console.print(table)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"{os.cpu_count()} CPUs, load average {load}; goal: ratio >= 0.25, RSS flat")


if __name__ == "__main__":
    main()
