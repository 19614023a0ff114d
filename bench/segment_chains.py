"""Long chains of one operator in a segment: PostgreSQL's planning and execution time.

    python bench/segment_chains.py [--leads 100000] [--terms 100 200] [--url URL]

Loads --leads leads in a schema of its own in the ``test`` database (as
`segment_export` does: about two tags a lead, plus ``t:K`` on every 50th
lead for K < 200), then runs ``EXPLAIN (ANALYZE, FORMAT JSON)`` on the
``segment count`` query of each chain and prints PostgreSQL's own planning
and execution times. The schema is dropped at the end. No statement timeout
is set: the point is to see how long the old SQL took.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from segment_export import LEADS, TAGS  # type: ignore[import-not-found]
from sqlalchemy import Connection, create_engine, pool, text

from dsl.graph import Json
from nurture import db
from nurture.segments.export import count_query

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TERMS = """
INSERT INTO tags (lead_id, tag, tagged_at, triggers_checked_at)
SELECT i, 't:' || (i / 50) % 200, now(), now() FROM generate_series(1, :n) AS i WHERE i % 50 = 0
"""


def chains(n: int) -> dict[str, Json]:
    """The chains of `n` terms that the table shows."""
    tagged = [{"op": "tagged", "tag": f"t:{k}"} for k in range(n)]
    industries = [
        {"op": "compare", "subject": "field", "field": "title", "cmp": "==", "value": f"T{k}"}
        for k in range(n - 1)
    ] + [{"op": "compare", "subject": "field", "field": "title", "cmp": "==", "value": "CEO"}]
    mixed = [t if k % 2 else {"op": "not", "arg": t} for k, t in enumerate(tagged)]
    return {
        f"tagged or x{n}": {"op": "or", "args": tagged},
        f"tagged and x{n}": {"op": "and", "args": tagged},
        f"not tagged and x{n}": {"op": "and", "args": [{"op": "not", "arg": t} for t in tagged]},
        f"tagged / not tagged or x{n}": {"op": "or", "args": mixed},
        f"lead.title == or x{n}": {"op": "or", "args": industries},
    }


def explain(connection: Connection, cond: Json) -> tuple[float, float, int]:
    """Planning ms, execution ms and the count, as PostgreSQL measured them."""
    query = count_query(cond, datetime.now(UTC))
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    params: dict[str, Any] = dict(compiled.params)
    sql = f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled.string}"
    plan = connection.exec_driver_sql(sql, params).scalar_one()[0]
    total = connection.execute(query).scalar_one()
    connection.rollback()
    return float(plan["Planning Time"]), float(plan["Execution Time"]), int(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--terms", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--url", default=os.environ.get("NURTURE_TEST_PG_URL") or DEFAULT_URL)
    options = parser.parse_args()
    console = Console(width=120)
    server = create_engine(db.normalize_url(options.url), poolclass=pool.NullPool)
    schema = f"bench_chains_{uuid.uuid4().hex[:8]}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        connection.commit()
    url = server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    table = Table("chain", "planning ms", "execution ms", "leads", title="segment count")
    try:
        db.upgrade(url.render_as_string(hide_password=False))
        engine = db.make_engine(url, poolclass=pool.NullPool, statement_timeout=0)
        with engine.connect() as connection:
            for statement in (LEADS, TAGS, TERMS):
                connection.execute(text(statement), {"n": options.leads})
            connection.commit()
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE")
            )
            for n in options.terms:
                for label, cond in chains(n).items():
                    started = time.perf_counter()
                    planning, execution, total = explain(connection, cond)
                    console.print(f"{label}: {time.perf_counter() - started:.1f} s", style="dim")
                    table.add_row(label, f"{planning:,.1f}", f"{execution:,.1f}", f"{total:,}")
        engine.dispose()
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connection.commit()
        server.dispose()
    console.print(table)
    console.print(f"{options.leads:,} leads; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
