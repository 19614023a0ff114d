"""Leads in, on their own: normalising and cleaning, storing, merging, and waking waits."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels import DeliveryStatus, OutboundMessage, SmtpChannel
from nurture.models import Enrollment, LeadMerge, MqlRecord
from nurture.store.cleaning import (
    InvalidLead,
    LeadRules,
    SkippedLead,
    normalize_email,
    normalize_phone,
    phone_verdict,
    prepare_lead,
)
from nurture.store.leads import resolve_lead_id, upsert_lead
from nurture.store.views import SCORE_DELTA
from nurture.store.wake import wake_waiting
from tests.channels.servers import SmtpServer
from tests.tracking.conftest import DAY, Seed, T


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+86 138-1234-5678", "+8613812345678"),
        ("0086 (138) 1234.5678", "+8613812345678"),
        ("＋８６ １３８ １２３４ ５６７８", "+8613812345678"),  # full-width input
        ("138 1234 5678", "13812345678"),
        ("(415) 555-0100", "4155550100"),
    ],
)
def test_phones_are_normalised(text: str, expected: str) -> None:
    assert normalize_phone(text) == expected


def test_a_default_calling_code_makes_national_numbers_international() -> None:
    assert normalize_phone("138 1234 5678", "86") == "+8613812345678"
    assert normalize_phone("010 8888 6666", "86") == "+861088886666"
    assert normalize_phone("+1 415 555 0100", "86") == "+14155550100"


@pytest.mark.parametrize("text", ["12", "1" * 16, "138-CALL-ME", "+", "١٢٣٤٥٦٧"])
def test_what_is_not_a_phone_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_phone(text)


def test_emails_are_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Ada.Lovelace@ACME.cn ") == "ada.lovelace@acme.cn"
    rewritten = ("a(c)@acme.cn", "a,b@acme.cn", "a@acme.cn,b@acme.cn", "a:b@acme.cn", "a;b@acme.cn")
    for bad in ("ada", "ada@", "@acme.cn", "ada@acme", "a b@acme.cn", "a@b@acme.cn", *rewritten):
        with pytest.raises(ValueError):
            normalize_email(bad)


FORMS = {
    "a@fabrikam.com": "a@fabrikam.com",
    "<a@fabrikam.com>": "a@fabrikam.com",
    '"a"@fabrikam.com': "a@fabrikam.com",
    '<"A.b"@Fabrikam.com>': "a.b@fabrikam.com",
    '"\\a"@fabrikam.com': "a@fabrikam.com",
    "李@例子.中国": "李@例子.中国",
}


@pytest.mark.asyncio
async def test_an_email_is_stored_as_the_sender_puts_it_in_rcpt_to() -> None:
    # Given an SMTP server, and each form of an address normalised as intake does
    server = SmtpServer()
    server.start()
    try:
        async with SmtpChannel.from_url(server.url()) as channel:
            # When the sender sends to each raw form and to its stored form
            for raw, stored in FORMS.items():
                assert normalize_email(raw) == stored
                for to in (raw, stored):
                    message = OutboundMessage(
                        "email", to, f"<{len(server.messages)}@t>", "S", "", "Hi"
                    )
                    assert (await channel.send(message)).status is DeliveryStatus.SENT
    finally:
        server.stop()

    # Then the server (aiosmtpd reads RCPT TO as a mailbox: quotes that are not needed go)
    # sees each raw form as the stored form (but for case, which intake folds), and the
    # stored form arrives unchanged
    rcpts = [m.rcpt_tos for m in server.messages]
    for raw, sent_raw, sent_stored in zip(FORMS, rcpts[::2], rcpts[1::2], strict=True):
        assert [r.lower() for r in sent_raw] == sent_stored == [FORMS[raw]], raw


@pytest.mark.parametrize(
    ("phone", "junk"),
    [
        ("13800000000", True),
        ("+8612345678901", True),
        ("13911111112", True),  # seven 1s
        ("13898765432", True),  # 9876543
        ("15061827305", False),
        ("13928714406", False),
        ("13912345", False),  # 12345: a run of five is allowed
    ],
)
def test_junk_phones(phone: str, junk: bool) -> None:
    assert (phone_verdict(phone) is not None) == junk


def test_cleaning_lists_are_configurable() -> None:
    rules = LeadRules(test_names=frozenset(), repeated_digits=4)

    assert prepare_lead({"email": "a@acme.cn", "first_name": "Test"}, rules).skip is None
    assert prepare_lead({"phone": "15011117305"}, rules).skip is not None


def test_invalid_lead_names_every_field() -> None:
    with pytest.raises(InvalidLead) as caught:
        prepare_lead({"email": "x", "phone": "y", "stage": "sql"})

    assert [path for path, _ in caught.value.problems] == ["email", "phone", "stage"]


def test_upsert_refuses_skipped_leads_and_stores_nothing(session: Session) -> None:
    with pytest.raises(SkippedLead, match=r"disposable email domain yopmail\.com"):
        upsert_lead(session, {"email": "x@yopmail.com"}, T)

    lead, created = upsert_lead(session, {"email": "x@acme.cn", "first_name": "伟"}, T)
    again, created_again = upsert_lead(session, {"email": "X@ACME.CN", "title": "CTO"}, T)

    assert (created, created_again, again.id) == (True, False, lead.id)
    assert (again.first_name, again.title) == ("伟", "CTO")


def test_a_merge_keeps_the_further_lead_and_the_earliest_unsubscribe(
    session: Session, seed: Seed
) -> None:
    # Given an MQL found by email and an unsubscribed lead found by phone
    mql = seed.touch(seed.lead(email="ada@acme.cn", stage="mql"))
    quiet = seed.touch(seed.lead(email=None, phone="+8615061827305", unsubscribed_at=T - DAY))
    session.add(MqlRecord(lead_id=mql.lead_id, rule="r", fit=50, interest=60.0, at=T - DAY))
    session.commit()

    # When one record names both
    lead, created = upsert_lead(session, {"phone": "+8615061827305", "email": "ada@acme.cn"}, T)
    session.commit()

    # Then the MQL survives, stays MQL, and is suppressed by the other's unsubscribe
    assert (lead.id, created, lead.stage) == (mql.lead_id, False, "mql")
    assert lead.unsubscribed_at == T - DAY and lead.suppressed
    assert resolve_lead_id(session, quiet.lead_id) == mql.lead_id
    assert session.scalars(select(LeadMerge.cause)).one() == f"same phone as lead {mql.lead_id}"
    assert session.get(Enrollment, quiet.enrollment_id).state == "exited"  # type: ignore[union-attr]


def test_a_merge_adds_up_both_leads_campaign_score_steps(session: Session, seed: Seed) -> None:
    # Given two leads that each got `score +N` steps from a campaign
    a = seed.lead(email="a@acme.cn", attributes={SCORE_DELTA: 10, "plan": "pro"})
    b = seed.lead(email=None, phone="+8615061827305", attributes={SCORE_DELTA: 2.5})

    # When one record names both
    lead, _created = upsert_lead(session, {"email": "a@acme.cn", "phone": "+8615061827305"}, T)
    session.commit()

    # Then the survivor has both totals, and its own profile kept
    assert (lead.id, lead.attributes[SCORE_DELTA], lead.attributes["plan"]) == (a, 12.5, "pro")
    assert resolve_lead_id(session, b) == a


def test_merges_chain(session: Session, seed: Seed) -> None:
    a = seed.lead(email="a@acme.cn")
    b = seed.lead(email=None, phone="+8615061827305")
    c = seed.lead(email=None, messaging_id="wx_c")

    upsert_lead(session, {"email": "a@acme.cn", "phone": "+8615061827305"}, T)
    session.commit()
    # a, the oldest, survives again; the row that said b became a still holds
    upsert_lead(session, {"messaging_id": "wx_c", "email": "a@acme.cn"}, T)
    session.commit()

    assert [resolve_lead_id(session, i) for i in (a, b, c, 999)] == [a, a, a, None]


def test_wake_waiting_moves_only_event_waits_and_only_earlier(
    sessions: sessionmaker[Session], seed: Seed
) -> None:
    lead_id = seed.lead()
    parked = seed.enrollment(lead_id)
    plain = seed.enrollment(lead_id, waiting=False, campaign="Drip")
    due = seed.enrollment(lead_id, due=T - DAY, campaign="Late")
    done = seed.enrollment(lead_id, state="done", campaign="Done")
    other = seed.enrollment(seed.lead())

    with sessions() as session, session.begin():
        woken = wake_waiting(session, lead_id, T)

    assert woken == [parked, due]
    runs = {i: seed.get_enrollment(i).next_run_at for i in (parked, plain, due, done, other)}
    assert runs == {
        parked: T,
        plain: T + 3 * DAY,
        due: T - DAY,
        done: T + 3 * DAY,
        other: T + 3 * DAY,
    }
