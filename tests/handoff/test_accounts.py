"""Accounts from the CRM: imported all or nothing, and leads matched to them by domain or by
company name, a customer's lead going straight to the account's owner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from nurture.cli import app
from nurture.handoff.accounts import company_key
from nurture.models import Account, Assignment, Lead
from nurture.store import Rules, record_event
from tests.handoff.test_route import routing
from tests.store.test_scoring_store import MODEL

runner = CliRunner()
ACCOUNTS = """\
name,domains,owner,status
"Acme, Inc.",acme.com;acme.cn,zoe@t.io,customer
华夏制造有限公司,huaxia.cn,li.na@t.io,opportunity
Globex GmbH,globex.de,tom@t.io,prospect
"""


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Acme, Inc.", "acme"),
        ("ＡＣＭＥ　Ｉｎｃ", "acme"),
        ("acme ltd.", "acme"),
        ("Globex GmbH", "globex"),
        ("华夏制造股份有限公司", "华夏制造"),
        ("华夏制造有限公司", "华夏制造"),
        ("Tidewater Co., Ltd.", "tidewater"),
        ("  ", ""),
    ],
)
def test_company_names_compare_without_case_width_punctuation_or_legal_suffix(
    name: str, key: str
) -> None:
    assert company_key(name) == key


@pytest.fixture
def url(migrated_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NURTURE_DATABASE_URL", migrated_url)
    return migrated_url


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def nurture(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def leads(engine: Engine) -> dict[str, Lead]:
    with Session(engine) as session:
        return {lead.email or "": lead for lead in session.scalars(select(Lead))}


def test_existing_and_new_leads_are_matched_and_customers_go_to_their_owner(
    url: str, migrated_engine: Engine, tmp_path: Path
) -> None:
    before = "email,company\nada@acme.com,\nbo@gmail.com,ACME INC\nli@qq.com,华夏制造股份有限公司\n"
    assert nurture("leads", "import", write(tmp_path, "a.csv", before))[0] == 0

    file = write(tmp_path, "accounts.csv", ACCOUNTS)
    code, out, _ = nurture("accounts", "import", file, "--json")
    after = "email,company\ncy@acme.cn,\ndi@globex.de,\neve@gmail.com,\n"
    assert nurture("leads", "import", write(tmp_path, "b.csv", after))[0] == 0

    assert code == 0
    assert json.loads(out) == {
        "created": 3,
        "updated": 0,
        "leads_matched": 3,
        "leads_updated": 0,
        "dry_run": False,
    }
    found = leads(migrated_engine)
    assert {e: (lead.owner, lead.attributes.get("is_customer")) for e, lead in found.items()} == {
        "ada@acme.com": ("zoe@t.io", True),  # by domain
        "bo@gmail.com": ("zoe@t.io", True),  # by company name: gmail names no company
        "li@qq.com": ("li.na@t.io", False),  # an open deal
        "cy@acme.cn": ("zoe@t.io", True),  # matched as it arrives
        "di@globex.de": (None, False),  # a prospect: its owner waits for the MQL rules
        "eve@gmail.com": (None, None),
    }
    assert found["di@globex.de"].attributes["account_owner"] == "tom@t.io"
    with Session(migrated_engine) as session:
        causes = set(session.scalars(select(Assignment.cause)))
    assert causes == {
        "existing customer: account Acme, Inc.",
        "existing opportunity: account 华夏制造有限公司",
    }


def test_a_prospects_mql_goes_to_the_account_owner_by_the_owner_rule(
    url: str, migrated_engine: Engine, tmp_path: Path
) -> None:
    nurture("accounts", "import", write(tmp_path, "accounts.csv", ACCOUNTS))
    prospect = "email,title,industry,employees\ndi@globex.de,VP Sales,saas,800\n"
    nurture("leads", "import", write(tmp_path, "p.csv", prospect))
    rules = Rules(MODEL, routing(rules=[{"number": 1, "assign": "owner", "when": None}]))

    with Session(migrated_engine) as session:
        lead = session.scalars(select(Lead)).one()
        for _ in range(3):
            mql = record_event(
                session, lead.id, "custom", "webinar_attended", lead.created_at, rules=rules
            ).mql
        session.commit()

        assert mql is not None and mql.owner == "tom@t.io"


def test_a_bad_accounts_file_is_refused_whole_with_each_problem_by_line(
    url: str, migrated_engine: Engine, tmp_path: Path
) -> None:
    bad = (
        "name,domains,owner,status\n"
        "Acme,acme.com,zoe@t.io,customer\n"
        ",x.com,,\n"
        "Mail,gmail.com;not a domain,someone,prospect\n"
        "ACME Inc.,acme.org,,customer\n"
        "Initech,initech.com,,client\n"
    )
    code, _out, err = nurture("accounts", "import", write(tmp_path, "bad.csv", bad))

    said = " ".join(err.split())
    assert code == 1
    for words in (
        "bad.csv:6: status: 'client': one of customer, opportunity, prospect",
        "bad.csv:3: name: required",
        "bad.csv:4: domains: gmail.com is a freemail domain",
        "bad.csv:4: domains: 'not' is not a domain",
        "bad.csv:4: owner: 'someone' is not an email address",
        "bad.csv:5: name: the same company as line 2",
        "nothing stored",
    ):
        assert words in said
    with Session(migrated_engine) as session:
        assert session.scalars(select(Account)).all() == []


def test_an_imported_owner_is_kept_only_by_a_lead_without_one(
    url: str, migrated_engine: Engine, tmp_path: Path
) -> None:
    first = "email,owner\nada@corp.com,Zoe@T.io\n"
    second = "email,owner\nada@corp.com,max@t.io\n"

    assert nurture("leads", "import", write(tmp_path, "1.csv", first))[0] == 0
    assert nurture("leads", "import", write(tmp_path, "2.csv", second))[0] == 0

    assert leads(migrated_engine)["ada@corp.com"].owner == "zoe@t.io"


def test_a_reimported_account_updates_its_leads_and_a_new_one_matches_leads_without_one(
    url: str, migrated_engine: Engine, tmp_path: Path
) -> None:
    # Given the accounts and their leads, and a lead of a company not imported yet
    nurture("accounts", "import", write(tmp_path, "a1.csv", ACCOUNTS))
    people = "email\nada@acme.com\ndi@globex.de\nx@initech.com\n"
    assert nurture("leads", "import", write(tmp_path, "l.csv", people))[0] == 0
    before = leads(migrated_engine)
    assert before["ada@acme.com"].owner == "zoe@t.io" and before["di@globex.de"].owner is None

    # When a newer CRM export says Acme is now an open deal of max, Globex a customer, and
    # adds Initech; the third account is unchanged
    newer = """\
name,domains,owner,status
"Acme, Inc.",acme.com;acme.cn,max@t.io,opportunity
华夏制造有限公司,huaxia.cn,li.na@t.io,opportunity
Globex GmbH,globex.de,tom@t.io,customer
Initech LLC,initech.com,amy@t.io,prospect
"""
    code, out, _ = nurture("accounts", "import", write(tmp_path, "a2.csv", newer), "--json")

    # Then the leads of the changed accounts follow them, a lead keeps the owner it has,
    # a lead with none gets its new customer account's owner, and Initech's lead is matched
    assert code == 0
    assert json.loads(out) == {
        "created": 1,
        "updated": 3,
        "leads_matched": 1,
        "leads_updated": 2,
        "dry_run": False,
    }
    found = leads(migrated_engine)
    ada, di, x = found["ada@acme.com"], found["di@globex.de"], found["x@initech.com"]
    assert ada.owner == "zoe@t.io"
    assert (ada.attributes["account_status"], ada.attributes["account_owner"]) == (
        "opportunity",
        "max@t.io",
    )
    assert ada.attributes["is_customer"] is False
    assert di.owner == "tom@t.io" and di.attributes["is_customer"] is True
    assert x.attributes["account_name"] == "Initech LLC" and x.owner is None
    with Session(migrated_engine) as session:
        causes = list(session.scalars(select(Assignment.cause).order_by(Assignment.id)))
    assert causes[-1] == "existing customer: account Globex GmbH"

    # And importing the same file again changes nothing
    code, out, _ = nurture("accounts", "import", write(tmp_path, "a3.csv", newer), "--json")
    assert json.loads(out)["leads_updated"] == 0 and json.loads(out)["leads_matched"] == 0
    with Session(migrated_engine) as session:
        assert len(list(session.scalars(select(Assignment.cause)))) == len(causes)


def test_a_segment_export_selects_and_shows_the_account_as_lead_account(
    url: str, tmp_path: Path
) -> None:
    nurture("accounts", "import", write(tmp_path, "accounts.csv", ACCOUNTS))
    people = "email\nada@acme.com\ndi@globex.de\nx@initech.com\n"
    assert nurture("leads", "import", write(tmp_path, "l.csv", people))[0] == 0

    code, out, err = nurture(
        "segment",
        "export",
        "--where",
        'lead.account.status in ["customer", "prospect"]',
        "--fields",
        "account.name,account.owner,is_customer",
        "--format",
        "jsonl",
    )

    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [
        (r["email"], r["account.name"], r["account.owner"], r["is_customer"]) for r in rows
    ] == [
        ("ada@acme.com", "Acme, Inc.", "zoe@t.io", True),
        ("di@globex.de", "Globex GmbH", "tom@t.io", False),
    ]
