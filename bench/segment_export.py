"""Segment export at scale: wall time, rows per second and peak memory, as the segment grows.

    python bench/segment_export.py [--rows 100000 300000 1000000] [--repeat 1] [--url URL]

Generates max(--rows) leads in PostgreSQL with SQL alone (``INSERT ... SELECT``
over ``generate_series``: profile columns, custom fields in ``attributes``,
about three tags and one event a lead; secondary indexes rebuilt after the
load, as a bulk load does), in a schema of its own in the ``test`` database,
dropped at the end. Lead ``i`` carries the tag ``cohort:N`` for every N in
--rows with i <= N, so the segment

    tagged "cohort:N" and score >= 0 and not tagged "blocked"

holds exactly N leads. For each N it runs ``nurture segment export --where
... --fields ... -o FILE --progress`` (the command line's own code path: the
count, then ``COPY`` of the rendered rows) in a fresh process, and reports
wall time, the command's own CPU time and peak RSS; memory should stay flat
as N grows. ``nurture --version`` gives the start-up cost every command pays
and ``segment count`` the count alone; the largest N is exported as JSONL
too, and as CSV with ``--no-escape-formulas`` (what formula escaping costs).
The machine's CPU count and load average are printed under the table: the
database's time is in the wall time, not in the command's CPU time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory, TemporaryFile

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, create_engine, pool, text

from nurture import db

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FIELDS = "first_name,last_name,company,title,industry,region,email_domain"
COMMAND = "from nurture.cli import main; main()"

LEADS = """
INSERT INTO leads (id, email, first_name, last_name, company, title, attributes, stage,
                   fit, interest, grade, created_at, updated_at, triggers_checked_at)
SELECT i,
       'lead' || i || '@' || (ARRAY['acme.com','gmail.com','example.cn','qq.com'])[1 + i % 4],
       (ARRAY['Ada','波','Chen','Dee','Eve','Fay','Gus'])[1 + i % 7],
       (ARRAY['Li','Wang','Smith','Zhang','Garcia'])[1 + i % 5],
       'Company ' || (i % 5000),
       (ARRAY['CEO','VP Marketing','Engineer','CTO','Analyst','市场经理'])[1 + i % 6],
       jsonb_build_object(
           'industry', (ARRAY['saas','finance','retail','manufacturing','制造业'])[1 + i % 5],
           'employees', (i * 37) % 5000,
           'region', (ARRAY['Shanghai','Jiangsu','Beijing','Guangdong'])[1 + i % 4],
           'is_customer', i % 17 = 0),
       (ARRAY['lead','lead','lead','mql','sql','customer'])[1 + i % 6],
       (i * 7) % 60,
       ((i * 13) % 900) / 10.0,
       (ARRAY['A','B','C','D'])[1 + i % 4],
       now() - make_interval(days => i % 700),
       now(),
       now()
FROM generate_series(1, :n) AS i
"""
TAGS = """
INSERT INTO tags (lead_id, tag, tagged_at, triggers_checked_at)
SELECT i, 'industry:' || (ARRAY['saas','finance','retail','manufacturing','制造业'])[1 + i % 5],
       now(), now()
FROM generate_series(1, :n) AS i
UNION ALL
SELECT i, '区域:华东', now(), now() FROM generate_series(1, :n) AS i WHERE i % 3 = 0
"""
COHORT = """
INSERT INTO tags (lead_id, tag, tagged_at, triggers_checked_at)
SELECT i, :tag, now(), now() FROM generate_series(1, :n) AS i
"""
EVENTS = """
INSERT INTO events (lead_id, type, name, occurred_at, data, triggers_checked_at)
SELECT i,
       CASE WHEN i % 4 = 0 THEN 'custom' ELSE 'opened' END,
       CASE WHEN i % 4 = 0 THEN 'webinar_attended' END,
       now() - make_interval(hours => i % 2000),
       '{}'::jsonb,
       now()
FROM generate_series(1, :n) AS i
"""


@dataclass(frozen=True, slots=True)
class Run:
    """One command's measurements (the best wall time of --repeat runs)."""

    label: str
    rows: int | None
    seconds: float
    cpu: float
    """User + system seconds of the command's own process (not the database's)."""
    rss_mib: float
    size_mib: float | None


def generate(connection: Connection, sizes: list[int]) -> float:
    """Load max(sizes) leads with their tags and events; the seconds it took.

    Secondary indexes and unique constraints are dropped for the load and
    built again after it, and foreign keys are not checked row by row (the
    data is consistent by construction): that is how a bulk load is done.
    """
    started = time.perf_counter()
    n = max(sizes)
    connection.execute(text("SET synchronous_commit = off"))
    connection.execute(text("SET maintenance_work_mem = '512MB'"))
    connection.execute(text("SET session_replication_role = replica"))
    rebuild = _drop_indexes(connection)
    connection.execute(text(LEADS), {"n": n})
    connection.execute(text(TAGS), {"n": n})
    for size in sizes:
        connection.execute(text(COHORT), {"tag": f"cohort:{size}", "n": size})
    connection.execute(text(EVENTS), {"n": n})
    for statement in rebuild:
        connection.execute(text(statement))
    connection.execute(text("SET session_replication_role = DEFAULT"))
    connection.commit()
    autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
    for table in TABLES:  # the visibility map, for index-only scans, as autovacuum would
        autocommit.execute(text(f"VACUUM ANALYZE {table}"))
    return time.perf_counter() - started


TABLES = ("leads", "tags", "events")


def _drop_indexes(connection: Connection) -> list[str]:
    """Drop the loaded tables' secondary indexes and unique constraints; the SQL to rebuild."""
    tables = {"tables": list(TABLES)}
    constraints = connection.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'u' AND conrelid::regclass::text = ANY(:tables) "
            "AND connamespace = current_schema()::regnamespace"
        ),
        tables,
    ).all()
    indexes = connection.execute(
        text(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE c.relname = ANY(:tables) AND c.relnamespace = current_schema()::regnamespace "
            "AND NOT i.indisprimary AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        ),
        tables,
    ).all()
    for table, name, _definition in constraints:
        connection.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, _definition in indexes:
        connection.execute(text(f"DROP INDEX {name}"))
    return [d for _name, d in indexes] + [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        for table, name, definition in constraints
    ]


def measure(label: str, args: list[str], out: Path | None, repeat: int) -> Run:
    """The best of `repeat` runs of `nurture ARGS`, each in a fresh process."""
    return min((_once(label, args, out) for _ in range(repeat)), key=lambda r: r.seconds)


def _once(label: str, args: list[str], out: Path | None) -> Run:
    """Run `nurture ARGS` in a fresh process: wall time, CPU time and its own peak RSS."""
    with TemporaryFile() as stdout, TemporaryFile() as stderr:
        started = time.perf_counter()
        command = [sys.executable, "-c", COMMAND, *args]
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"nurture {' '.join(args)} failed:\n{stderr.read().decode()}")
        stdout.seek(0)
        printed = stdout.read().decode().strip()
    rows: int | None = int(printed) if printed.isdigit() else None
    size = None
    if out is not None:
        with out.open("rb") as f:
            rows = sum(1 for _ in f) - (1 if out.suffix == ".csv" else 0)
        size = out.stat().st_size / 2**20
        out.unlink()
    cpu = usage.ru_utime + usage.ru_stime
    return Run(label, rows, seconds, cpu, usage.ru_maxrss / 1024, size)  # Linux: KiB


def where(size: int) -> str:
    return f'tagged "cohort:{size}" and score >= 0 and not tagged "blocked"'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each command; the best.")
    parser.add_argument("--url", default=os.environ.get("NURTURE_TEST_PG_URL") or DEFAULT_URL)
    options = parser.parse_args()
    sizes = sorted(set(options.rows))
    console = Console(width=120)
    server = create_engine(db.normalize_url(options.url), poolclass=pool.NullPool)
    schema = f"bench_segments_{uuid.uuid4().hex[:8]}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        connection.commit()
    url = server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        db.upgrade(url_text)
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.connect() as connection:
            loaded = generate(connection, sizes)
        engine.dispose()
        console.print(f"generated {max(sizes):,} leads with tags and events in {loaded:.1f} s")
        load = os.getloadavg()[0]
        runs = benchmark(url_text, sizes, options.repeat)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connection.commit()
        server.dispose()
    report(runs, console, f"{os.cpu_count()} CPUs, load average {load:.1f} at the start")


def benchmark(url: str, sizes: list[int], repeat: int) -> list[Run]:
    """The command's start-up, a count, CSV exports of each size, a JSONL export of the largest
    and an unescaped CSV export of it."""
    largest = max(sizes)
    runs = [
        measure("nurture --version (start-up)", ["--version"], None, repeat),
        measure(
            "segment count",
            ["segment", "count", "--where", where(largest), "--url", url],
            None,
            repeat,
        ),
    ]
    with TemporaryDirectory() as folder:
        for size, format in [*((s, "csv") for s in sizes), (largest, "jsonl")]:
            out = Path(folder) / f"export-{size}.{format}"
            args = ["segment", "export", "--where", where(size), "--fields", FIELDS]
            args += ["--format", format, "-o", str(out), "--url", url, "--progress"]
            runs.append(measure(f"segment export ({format})", args, out, repeat))
        out = Path(folder) / f"export-{largest}.csv"
        args = ["segment", "export", "--where", where(largest), "--fields", FIELDS]
        args += ["-o", str(out), "--url", url, "--progress", "--no-escape-formulas"]
        runs.append(measure("  --no-escape-formulas", args, out, repeat))
    return runs


def report(runs: list[Run], console: Console, caption: str) -> None:
    table = Table(title="nurture segment export, PostgreSQL", caption=caption)
    names = ("command", "rows", "wall s", "minus start-up", "rows/s", "CPU s", "peak RSS MiB")
    for name in (*names, "file MiB"):
        table.add_column(name, justify="left" if name == "command" else "right")
    start_up = runs[0].seconds
    for run in runs:
        exported = run.size_mib is not None and run.rows
        table.add_row(
            run.label,
            f"{run.rows:,}" if run.rows is not None else "",
            f"{run.seconds:.2f}",
            f"{run.seconds - start_up:.2f}" if run is not runs[0] else "",
            f"{run.rows / run.seconds:,.0f}" if exported and run.rows else "",
            f"{run.cpu:.2f}",
            f"{run.rss_mib:.0f}",
            f"{run.size_mib:.1f}" if run.size_mib is not None else "",
        )
    console.print(table)


if __name__ == "__main__":
    main()
