"""`nurture events ingest`: an unsubscribe or hard bounce that names its channel closes only
that channel for that address, as the API does; one without a channel still stops all."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from nurture.models import Event, Lead, Suppression
from nurture.store.suppressions import address_hash, closed_channels
from tests.intake.test_cli import engine, leads, nurture, url, write

__all__ = ["engine", "url"]  # the fixtures of test_cli

LEADS = """\
email,first_name,phone
ada@analytical-engines.io,Ada,+86 150 6182 7305
li@huaxia-manufacturing.cn,李,
bo@contoso.cn,Bo,
"""
EVENTS = """\
email,type,channel
ada@analytical-engines.io,unsubscribed,sms
li@huaxia-manufacturing.cn,bounced_hard,email
li@huaxia-manufacturing.cn,unsubscribed,email
bo@contoso.cn,unsubscribed,
"""


def test_a_channel_named_in_the_file_closes_only_that_channel(
    url: str, engine: Engine, tmp_path: Path
) -> None:
    # Given three imported leads
    nurture("leads", "import", str(write(tmp_path, "l.csv", LEADS)), "--url", url)

    # When a file unsubscribes Ada from SMS, bounces Li's email, and unsubscribes Bo from all
    code, _out, err = nurture(
        "events", "ingest", str(write(tmp_path, "e.csv", EVENTS)), "--url", url
    )

    # Then Ada and Li are closed only on that channel, for their address on it
    assert code == 0, err
    found = leads(engine)
    ada, li, bo = (
        found["ada@analytical-engines.io"],
        found["li@huaxia-manufacturing.cn"],
        found["bo@contoso.cn"],
    )
    for lead in (ada, li):
        assert (lead.unsubscribed_at, lead.hard_bounced_at, lead.suppressed_reason) == (
            None,
            None,
            None,
        )
    with Session(engine) as session:
        closed = closed_channels(session, session.scalars(select(Lead)).all())
        rows = {(s.channel, s.address_hash) for s in session.scalars(select(Suppression))}
        events = session.scalar(select(func.count()).select_from(Event))
    assert set(closed[ada.id]) == {"sms"} and closed[ada.id]["sms"].startswith("unsubscribed at")
    assert set(closed[li.id]) == {"email"} and closed[li.id]["email"].startswith("bounced_hard")
    assert rows == {
        ("sms", address_hash("sms", str(ada.phone))),
        ("email", address_hash("email", "li@huaxia-manufacturing.cn")),
    }
    # And the event without a channel still stops every send to Bo; all four are stored
    assert bo.unsubscribed_at is not None and bo.id not in closed
    assert events == 4


def test_a_channel_that_is_not_one_is_named_and_nothing_is_stored(
    url: str, engine: Engine, tmp_path: Path
) -> None:
    nurture("leads", "import", str(write(tmp_path, "l.csv", LEADS)), "--url", url)
    bad = "email,type,channel\nada@analytical-engines.io,unsubscribed,fax\n"

    code, _out, err = nurture("events", "ingest", str(write(tmp_path, "e.csv", bad)), "--url", url)

    assert code != 0
    assert "'fax' is not a channel to close" in err and "e.csv:2:" in err
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 0
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
