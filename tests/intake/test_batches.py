"""Imports in batches give what the row-by-row path gives, and memory stays flat in the rows.

The reference is the tracking API's row-by-row path (`store_leads`, `record_events`) on a
database of its own; the batched import runs with batches of three rows, so every dedup,
merge, account and MQL case falls inside a batch and across two.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nurture import intake_batches
from nurture.db import make_engine, upgrade
from nurture.intake import read_rows
from nurture.models import (
    Account,
    AccountDomain,
    Assignment,
    Event,
    Lead,
    LeadMerge,
    MqlRecord,
    Tag,
)
from nurture.runtime.database import sessions_for
from nurture.runtime.deploying import deploy_sources
from nurture.store.cleaning import DEFAULT_RULES, PLAIN_EMAIL, checked_email, normalize_email
from nurture.tracking.records import Effects, record_events, store_leads
from nurture.tracking.schema import parse_events, parse_leads
from tests.intake.test_cli import nurture, write

SCORING = """\
scoring "B2B"
  fit:
    +20 when lead.industry in ["saas", "finance"]
    +15 when lead.title matches "(?i)\\b(ceo|vp)\\b"
    +10 when lead.last_activity_at
  interest:
    +1 per open
    +5 per click
    +20 per event "webinar_attended"
  grade fit: A >= 30, B >= 20, C >= 10, else D
  mql when fit grade in [A, B] and interest >= 50
"""

LEADS = """\
email,phone,first_name,company,title,industry,tags,owner
ada@fabrikam.com,+86 150 6182 7305,Ada,Fabrikam,CEO,saas,a;b,
bo@contoso.cn,,Bo,Contoso Ltd.,Engineer,retail,,
cy@northwind.io,+86 139 1122 4455,Cy,Northwind,VP Sales,finance,c,amy@tidewater.io
ADA@fabrikam.com,,Ada L.,,,,d,
dee@tailspin.io,+86 150 6182 7305,Dee,Tailspin,,,,
test@example.com,,Test,,,,,
eve@contoso.cn,,Eve,,Analyst,,e,
fay@acme.com,,Fay,Acme,,,,
cy@northwind.io,,,,,,f,
gus@fresh.io,+86 139 1122 4455,Gus,,,,,
old@fabrikam.com,,Old,,,saas,,
fay@acme.com,+86 150 6182 7305,,,,,g,
"""
"""The same email in one batch (lines 2 and 5), the same phone in the next (6, 11), a skipped
test lead, an account hand-over (contoso is a customer), an imported owner, an update of a
lead stored before the import (old@), and a row whose email and phone name two leads made
in earlier batches: they are merged (13)."""

EVENTS = """\
email,type,name,link
ada@fabrikam.com,opened,,
cy@northwind.io,custom,webinar_attended,
cy@northwind.io,custom,webinar_attended,
ada@fabrikam.com,clicked,,pricing
cy@northwind.io,custom,webinar_attended,
cy@northwind.io,opened,,
eve@contoso.cn,unsubscribed,,
eve@contoso.cn,opened,,
"""
"""cy@ becomes an MQL at its third webinar (line 6), inside a batch, then opens; eve@'s fit
gains its activity points at its second event in a batch, not its first (fit is reused
between a lead's events only while the columns it reads stay the same)."""


def _prepared(url: str) -> Engine:
    engine = make_engine(url)
    sessions = sessions_for(engine)
    deploy_sources(sessions, {"scoring.nurture": SCORING}, datetime.now(UTC))
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        account = Account(key="contoso", name="Contoso", owner="tom@tidewater.io")
        account.status, account.imported_at = "customer", now
        session.add(account)
        session.flush()
        session.add(AccountDomain(domain="contoso.cn", account_id=account.id))
        session.add(Lead(email="old@fabrikam.com", created_at=now, updated_at=now))
    return engine


def _reference(tmp_path: Path, leads: Path, events: Path | None) -> Engine:
    """The row-by-row path on a SQLite database of its own."""
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    upgrade(url)
    engine = _prepared(url)
    now = datetime.now(UTC)
    with sessions_for(engine)() as session, session.begin():
        clean = [
            c for row in read_rows(leads, "leads") for c in parse_leads(row.item, DEFAULT_RULES)
        ]
        store_leads(session, clean, now, Effects())
    if events is not None:
        with sessions_for(engine)() as session, session.begin():
            items = [
                e
                for r in read_rows(events, "events")
                for e in parse_events(r.item, now, DEFAULT_RULES)
            ]
            record_events(session, items, now, Effects())
    return engine


def _state(engine: Engine) -> dict[str, Any]:
    """Everything an import decides, keyed by email (ids differ between the databases)."""
    with Session(engine) as session:
        email = {lead.id: lead.email for lead in session.scalars(select(Lead))}
        leads = {
            lead.email: (
                lead.phone,
                lead.first_name,
                lead.company,
                lead.title,
                lead.owner,
                lead.stage,
                lead.fit,
                round(lead.interest, 6),
                lead.grade,
                lead.account_id is not None,
                {k: v for k, v in lead.attributes.items() if k != "merged_leads"},
                len(lead.attributes.get("merged_leads") or []),
                lead.last_activity_at is not None,
                lead.unsubscribed_at is not None,
            )
            for lead in session.scalars(select(Lead))
        }
        tags = sorted((email[t.lead_id], t.tag) for t in session.scalars(select(Tag)))
        owners = sorted(
            (email[a.lead_id], a.owner, a.how, a.cause) for a in session.scalars(select(Assignment))
        )
        events = sorted((email[e.lead_id], e.type, e.name) for e in session.scalars(select(Event)))
        mqls = sorted(
            (email[m.lead_id], m.fit, m.interest, m.cause_event_id is not None)
            for m in session.scalars(select(MqlRecord))
        )
        merges = len(session.scalars(select(LeadMerge)).all())
    return {
        "leads": leads,
        "tags": tags,
        "owners": owners,
        "events": events,
        "mqls": mqls,
        "merges": merges,
    }


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake_batches, "BATCH", 3)


@pytest.mark.usefixtures("small_batches")
def test_leads_in_batches_are_stored_as_row_by_row(migrated_url: str, tmp_path: Path) -> None:
    # Given the same database on both paths, and a file with every kind of dedup in it
    engine = _prepared(migrated_url)
    leads = write(tmp_path, "leads.csv", LEADS)

    # When it is imported in batches of three, and row by row elsewhere
    code, out, err = nurture("leads", "import", str(leads), "--url", migrated_url, "--json")
    reference = _reference(tmp_path, leads, None)

    # Then the leads, tags, owners and merges are the same, and the counts say what happened
    assert code == 0, err
    assert _state(engine) == _state(reference)
    data = json.loads(out)
    assert (len(data["created"]), len(data["updated"]), len(data["merged"])) == (4, 1, 1)
    assert data["skipped"] == [{"line": 7, "reason": "test lead: email test@example.com"}]
    engine.dispose()
    reference.dispose()


@pytest.mark.usefixtures("small_batches")
def test_events_in_batches_score_and_qualify_as_row_by_row(
    migrated_url: str, tmp_path: Path
) -> None:
    # Given the same leads on both paths
    engine = _prepared(migrated_url)
    leads = write(tmp_path, "leads.csv", LEADS)
    events = write(tmp_path, "events.csv", EVENTS)
    assert nurture("leads", "import", str(leads), "--url", migrated_url)[0] == 0

    # When the events are ingested in batches of three, and row by row elsewhere
    code, out, err = nurture("events", "ingest", str(events), "--url", migrated_url, "--json")
    reference = _reference(tmp_path, leads, events)

    # Then scores, the MQL (made by the third webinar), activity and suppression are the same
    assert code == 0, err
    assert json.loads(out)["recorded"] == 8
    state = _state(engine)
    assert state == _state(reference)
    assert [m[0] for m in state["mqls"]] == ["cy@northwind.io"]
    with Session(engine) as session:
        mql = session.scalars(select(MqlRecord)).one()
        cause = session.get(Event, mql.cause_event_id)
        assert cause is not None and cause.name == "webinar_attended"
        assert session.scalars(select(Event.id).where(Event.id > cause.id)).all() != []
    engine.dispose()
    reference.dispose()


@pytest.mark.usefixtures("small_batches")
def test_an_unknown_lead_in_a_later_batch_stores_no_event_of_any_batch(
    migrated_url: str, tmp_path: Path
) -> None:
    engine = _prepared(migrated_url)
    assert (
        nurture("leads", "import", str(write(tmp_path, "l.csv", LEADS)), "--url", migrated_url)[0]
        == 0
    )
    events = EVENTS + "nobody@fabrikam.com,opened,,\n" + "ada@fabrikam.com,opened,,\n" * 4
    events += "ada@fabrikam.com,opened,,\n"

    code, _, err = nurture(
        "events", "ingest", str(write(tmp_path, "e.csv", events)), "--url", migrated_url
    )

    assert code == 1
    assert "e.csv:10: lead.email: no lead with email nobody@fabrikam.com" in err
    assert "1 problem in" in err and "nothing stored" in err
    with Session(engine) as session:
        assert session.scalars(select(Event)).all() == []
    engine.dispose()


def _lead_file(path: Path, count: int) -> Path:
    rows = [f"lead{i}@company{i % 7}.com,Name {i},Company {i % 7},saas,x;y" for i in range(count)]
    return write(
        path.parent, path.name, "email,first_name,company,industry,tags\n" + "\n".join(rows)
    )


def _peak(url: str, leads: Path, events: Path) -> int:
    """Peak bytes allocated by both passes of a leads import and an events ingest."""
    engine = _prepared(url)
    now = datetime.now(UTC)
    gc.collect()
    tracemalloc.start()
    try:
        spool = intake_batches.check_leads(leads, DEFAULT_RULES)
        with sessions_for(engine)() as session, session.begin():
            intake_batches.import_leads(session, spool, now)
        spool.close()
        spool = intake_batches.check_events(events, now, DEFAULT_RULES)
        with sessions_for(engine)() as session, session.begin():
            intake_batches.ingest_events(session, spool, now)
        spool.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        engine.dispose()


def test_memory_is_flat_in_the_number_of_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given batches of 100 rows, and files of 2,000 and of 8,000 leads (and as many events)
    monkeypatch.setattr(intake_batches, "BATCH", 100)
    peaks = []
    for count in (2000, 8000):
        folder = tmp_path / str(count)
        folder.mkdir()
        leads = _lead_file(folder / "leads.csv", count)
        lines = [
            f"lead{(i * 7) % count}@company{(i * 7) % count % 7}.com,opened" for i in range(count)
        ]
        events = write(folder, "events.csv", "email,type\n" + "\n".join(lines))
        url = f"sqlite:///{folder / 'n.db'}"
        upgrade(url)

        # When both are imported
        peaks.append(_peak(url, leads, events))

    # Then four times the rows take about the same memory at the peak (the first batches
    # fill the caches and free lists of the interpreter, SQLAlchemy and the checks)
    small, large = peaks
    assert large < small * 1.25, f"peak {small:,} B for 2,000 rows, {large:,} B for 8,000"


@given(st.from_regex(PLAIN_EMAIL, fullmatch=True))
def test_a_plain_address_takes_the_shortcut_to_what_every_check_gives(email: str) -> None:
    try:
        expected: str | ValueError = checked_email(email)
    except ValueError as e:
        expected = e
    if isinstance(expected, ValueError):
        with pytest.raises(ValueError):
            normalize_email(email)
    else:
        assert normalize_email(email) == expected
