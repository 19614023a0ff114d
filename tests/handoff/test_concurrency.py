"""Several workers assigning at once on PostgreSQL: one owner per lead, round robin fair."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from sqlalchemy import Engine, func, select

from nurture import db
from nurture.models import Assignment, Lead, MqlRecord
from nurture.store import record_event
from tests.handoff.test_handoff_store import RULES, T, east_lead

WORKERS = 8
LEADS_EACH = 5


def _run_at_once(jobs: list[Callable[[], None]]) -> None:
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def _webinars(engine: Engine, lead_id: int, times: int) -> None:
    for _ in range(times):
        with db.session_factory(engine)() as session:
            record_event(session, lead_id, "custom", "webinar_attended", T, rules=RULES)
            session.commit()


def test_workers_assigning_at_once_keep_one_owner_a_lead_and_fair_turns(pg_url: str) -> None:
    db.upgrade(pg_url)
    engine = db.make_engine(pg_url)
    with db.session_factory(engine)() as session:
        ids = [east_lead(session, f"l{n}@corp.com").id for n in range(WORKERS * LEADS_EACH)]
        shared = east_lead(session, "shared@corp.com").id
        session.commit()
    for lead_id in [*ids, shared]:  # interest 40: the next webinar makes each an MQL
        _webinars(engine, lead_id, 2)

    def worker(mine: list[int]) -> Callable[[], None]:
        return lambda: [_webinars(engine, lead_id, 1) for lead_id in mine] and None

    jobs = [worker(ids[w::WORKERS]) for w in range(WORKERS)]
    jobs += [lambda: _webinars(engine, shared, 2) for _ in range(2)]  # two workers, one lead
    _run_at_once(jobs)

    with db.session_factory(engine)() as session:
        given = session.execute(select(Assignment.lead_id, Assignment.owner)).all()
        mqls = session.scalar(select(func.count()).select_from(MqlRecord))
        owners = {i: o for i, o in session.execute(select(Lead.id, Lead.owner))}
    engine.dispose()
    assert mqls == len(ids) + 1
    assert sorted(lead for lead, _ in given) == sorted([*ids, shared])  # one assignment each
    assert all(owners[lead] == owner for lead, owner in given)
    counts = Counter(owner for _, owner in given)
    total = len(given)
    assert abs(counts["wang.fang@t.io"] - total * 2 / 3) <= 1, counts
    assert abs(counts["li.na@t.io"] - total / 3) <= 1, counts
