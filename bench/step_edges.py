"""What counting the ways out of branches adds to recording a batch, on PostgreSQL.

    python bench/step_edges.py [--batch 250] [--rounds 40] [--url URL]

The recorder already stores each batch's new enrollment states in one
executemany ``UPDATE`` (`nurture.runtime.recording`); counting the ways adds
one upsert of the batch's distinct (version, from, to) rows, in the same
transaction (`nurture.runtime.edges.add_ways`). In a schema of its own
(dropped at the end), each round commits `--batch` enrollments' states the
way the recorder does, once alone and once with their ways added (two per
enrollment over four distinct edges, as a campaign with a branch and a
split gives). The table shows the median and p90 milliseconds per batch
transaction, and the ratio of the two, measured alternately in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from sqlalchemy import bindparam, create_engine, pool, text, update

from nurture import db
from nurture.models import Campaign, CampaignVersion, Enrollment, Lead
from nurture.runtime.database import sessions_for, table_of
from nurture.runtime.edges import add_ways

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AT = datetime(2026, 3, 1, tzinfo=UTC)
WAYS = [[("n2", "n3"), ("n5", "n6")], [("n2", "n4"), ("n5", "n7")]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--url", default=os.environ.get("NURTURE_TEST_PG_URL") or DEFAULT_URL)
    options = parser.parse_args()
    console = Console(width=110)
    server = create_engine(db.normalize_url(options.url), poolclass=pool.NullPool)
    schema = f"bench_edges_{uuid.uuid4().hex[:8]}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        connection.commit()
    url = server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        db.upgrade(url.render_as_string(hide_password=False))
        engine = db.make_engine(url, statement_timeout=0)
        states, ways = _rounds(sessions_for(engine), options.batch, options.rounds)
        engine.dispose()
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connection.commit()
        server.dispose()
    table = Table(
        "transaction", "median ms", "p90 ms", title=f"{options.batch} enrollments a batch"
    )
    rows = (("the states (UPDATE)", states), ("the states and the ways (+ upsert)", ways))
    for label, times in rows:
        table.add_row(label, f"{statistics.median(times):.2f}", f"{_p90(times):.2f}")
    ratio = statistics.median(ways) / statistics.median(states)
    console.print(table)
    console.print(
        f"with the ways: {ratio:.2f}× the states alone (medians of {options.rounds} rounds, "
        f"alternating); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )


def _rounds(sessions: object, batch: int, rounds: int) -> tuple[list[float], list[float]]:
    from sqlalchemy.orm import Session, sessionmaker

    assert isinstance(sessions, sessionmaker)
    with sessions() as session, session.begin():
        assert isinstance(session, Session)
        campaign = Campaign(name="Bench")
        session.add(campaign)
        session.flush()
        version = CampaignVersion(
            campaign_id=campaign.id, version=1, content_hash="0" * 64, graph={}, source=""
        )
        session.add(version)
        session.flush()
        ids = []
        for n in range(batch):
            lead = Lead(email=f"b{n}@bench.io", created_at=AT, updated_at=AT)
            session.add(lead)
            session.flush()
            row = Enrollment(
                lead_id=lead.id, campaign_version_id=version.id, cursor="n1", state="active"
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
        version_id = version.id
    table = table_of(Enrollment)
    store = update(table).where(table.c.id == bindparam("b_id"))
    store = store.values(cursor=bindparam("b_cursor"), state=bindparam("b_state"))
    states: list[float] = []
    ways: list[float] = []
    taken = [(version_id, WAYS[n % 2]) for n in range(batch)]
    for r in range(rounds):
        for counted, times in ((False, states), (True, ways)):
            rows = [{"b_id": i, "b_cursor": f"n{r % 7}", "b_state": "waiting"} for i in ids]
            started = time.perf_counter()
            with sessions() as session, session.begin():
                session.execute(store, rows)
                if counted:
                    add_ways(session, taken)
            times.append((time.perf_counter() - started) * 1000)
    return states, ways


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


if __name__ == "__main__":
    main()
