"""`nurture leads export-data EMAIL` and `nurture leads forget EMAIL`, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture.cli import app
from nurture.models import Lead, Suppression
from tests.intake.test_cli import count, nurture, write
from tests.intake.test_cli import url as url  # the fixture: a migrated database

PEOPLE = """\
email,first_name,phone,consent_sms
ada@analytical-engines.io,Ada,+86 150 6182 7305,yes
bo@analytical-engines.io,Bo,,
"""


def test_export_then_forget_a_person(url: str, migrated_engine: Engine, tmp_path: Path) -> None:
    file = write(tmp_path, "people.csv", PEOPLE)
    assert nurture("leads", "import", str(file), "--url", url)[0] == 0

    # The export is JSON with the person's row, consent and more
    code, out, err = nurture("leads", "export-data", "Ada@analytical-engines.io", "--url", url)
    assert code == 0, err
    data = json.loads(out)
    assert (data["lead"]["first_name"], data["lead"]["phone"]) == ("Ada", "+8615061827305")
    assert [(c["channel"], c["granted"]) for c in data["consents"]] == [("sms", True)]

    # Forgetting asks first; "no" erases nothing
    declined = CliRunner().invoke(
        app, ["leads", "forget", "ada@analytical-engines.io", "--url", url], input="n\n"
    )
    assert declined.exit_code == 1 and "nothing erased" in declined.stderr
    assert count(migrated_engine, Suppression) == 0

    # With --yes the person is erased, and Bo is untouched
    code, out, err = nurture("leads", "forget", "ada@analytical-engines.io", "--yes", "--url", url)
    assert code == 0, err
    assert "forgotten: 2 addresses kept hashed" in out
    with Session(migrated_engine) as session:
        emails = sorted(str(e) for e in session.scalars(select(Lead.email)))
    assert emails == ["None", "bo@analytical-engines.io"]

    # And an unknown person is named, with no traceback
    code, out, err = nurture("leads", "export-data", "ada@analytical-engines.io", "--url", url)
    assert code == 1 and "no lead 'ada@analytical-engines.io'" in err and "Traceback" not in err
