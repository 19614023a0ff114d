"""Consent per channel from an import file and the lead API: stored with source and time; a
value that is not a consent is a located row problem (import) or a 422 (API), nothing stored."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nurture import db
from nurture.engine.clock import VirtualClock
from nurture.models import Consent, Lead
from nurture.store.consents import parse_consent
from nurture.tokens import TokenSigner
from nurture.tracking import create_app
from tests.intake.test_cli import count, nurture, write
from tests.intake.test_cli import url as url  # the fixture: a migrated database
from tests.tracking.conftest import API_KEY, AUTH, SECRET, T

CONSENTING = """\
email,first_name,consent_email,consent_sms,consent_source
ada@analytical-engines.io,Ada,yes,no,
bo@analytical-engines.io,Bo,是,,pricing form
cy@analytical-engines.io,Cy,,,
"""


def consents(engine: Engine) -> dict[tuple[str, str], tuple[bool, str]]:
    with Session(engine) as session:
        rows = session.execute(
            select(Lead.email, Consent.channel, Consent.granted, Consent.source).join(
                Lead, Lead.id == Consent.lead_id
            )
        )
        return {(e or "", c): (g, s) for e, c, g, s in rows}


def test_an_import_stores_each_rows_consent_with_its_source(
    url: str, migrated_engine: Engine, tmp_path: Path
) -> None:
    file = write(tmp_path, "leads.csv", CONSENTING)

    code, _out, err = nurture("leads", "import", str(file), "--url", url)

    assert code == 0, err
    assert consents(migrated_engine) == {
        ("ada@analytical-engines.io", "email"): (True, "import"),
        ("ada@analytical-engines.io", "sms"): (False, "import"),
        ("bo@analytical-engines.io", "email"): (True, "pricing form"),
    }
    with Session(migrated_engine) as session:
        ada = session.scalars(select(Lead).where(Lead.email.like("ada%"))).one()
        assert "consent_email" not in ada.attributes  # consent is not a profile field

    # And a later answer replaces the earlier one
    write(tmp_path, "again.csv", "email,consent_sms\nada@analytical-engines.io,granted\n")
    code, _out, err = nurture("leads", "import", str(tmp_path / "again.csv"), "--url", url)
    assert code == 0, err
    assert consents(migrated_engine)[("ada@analytical-engines.io", "sms")] == (True, "import")


def test_a_consent_that_is_not_one_is_a_located_problem_and_nothing_is_stored(
    url: str, migrated_engine: Engine, tmp_path: Path
) -> None:
    file = write(tmp_path, "bad.csv", CONSENTING + "dee@analytical-engines.io,Dee,maybe,,\n")

    code, out, err = nurture("leads", "import", str(file), "--url", url)

    assert code == 1 and out == ""
    assert (
        f"{file}:5: consent_email: 'maybe' is not a consent: yes or no "
        "(true/false, 1/0, granted/withdrawn)"
    ) in err
    assert count(migrated_engine, Lead) == 0 and count(migrated_engine, Consent) == 0


@pytest.mark.asyncio
async def test_the_api_stores_consent_and_refuses_a_bad_value(
    migrated_engine: Engine, url: str
) -> None:
    clock = VirtualClock(T)
    signer = TokenSigner(SECRET, clock=clock.now)
    app = create_app(db.session_factory(migrated_engine), signer, api_key=API_KEY, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as client:
        bad = await client.post(
            "/api/leads",
            json=[{"email": "ada@acme.cn"}, {"email": "bo@acme.cn", "consent_wechat": 2}],
            headers=AUTH,
        )
        assert bad.status_code == 422
        assert bad.json()["errors"] == [
            {
                "path": "$[1].consent_wechat",
                "message": "2 is not a consent: yes or no (true/false, 1/0, granted/withdrawn)",
            }
        ]
        assert count(migrated_engine, Lead) == 0

        good = await client.post(
            "/api/leads", json={"email": "ada@acme.cn", "consent_wechat": True}, headers=AUTH
        )
        assert good.status_code == 200, good.text
    with Session(migrated_engine) as session:
        [row] = session.scalars(select(Consent))
        assert (row.channel, row.granted, row.source, row.at) == ("wechat", True, "api", T)


def test_consent_values() -> None:
    for value in (True, "yes", " Y ", "1", 1, "granted", "是", "opt-in"):
        assert parse_consent(value) is True, value
    for value in (False, "no", "0", 0, "withdrawn", "否"):
        assert parse_consent(value) is False, value
    for value in (None, "", "  "):
        assert parse_consent(value) is None
    for value in ("maybe", 2, 1.0, ["yes"]):
        with pytest.raises(ValueError, match="is not a consent"):
            parse_consent(value)
