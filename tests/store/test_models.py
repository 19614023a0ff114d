"""The models on a migrated database, the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from nurture.models import Campaign, CampaignVersion, Delivery, Enrollment, Event, Lead, Tag

SHANGHAI = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _lead(session: Session, **fields: object) -> Lead:
    lead = Lead(**fields)
    session.add(lead)
    session.flush()
    return lead


def _version(session: Session) -> CampaignVersion:
    campaign = Campaign(name="welcome")
    session.add(campaign)
    session.flush()
    version = CampaignVersion(
        campaign_id=campaign.id, version=1, content_hash="0" * 64, graph={"steps": []}, source=""
    )
    session.add(version)
    session.flush()
    return version


def _enroll(session: Session, lead: Lead, version: CampaignVersion) -> Enrollment:
    enrollment = Enrollment(lead_id=lead.id, campaign_version_id=version.id, cursor="start")
    session.add(enrollment)
    session.flush()
    return enrollment


def _delivery(enrollment: Enrollment, message_id: str) -> Delivery:
    return Delivery(
        enrollment_id=enrollment.id,
        step_id="welcome_email",
        iteration=0,
        lead_id=enrollment.lead_id,
        channel="email",
        template="welcome.html",
        message_id=message_id,
    )


def test_a_second_delivery_for_the_same_step_and_iteration_is_rejected(session: Session) -> None:
    # Given a delivery already written for (enrollment, step, iteration)
    enrollment = _enroll(session, _lead(session, email="ada@example.com"), _version(session))
    session.add(_delivery(enrollment, "<1@nurture>"))
    session.commit()

    # When a redelivered job writes the same key again
    session.add(_delivery(enrollment, "<2@nurture>"))

    # Then the database refuses it
    with pytest.raises(IntegrityError):
        session.commit()


def test_chinese_names_tags_and_attributes_round_trip(session: Session) -> None:
    # Given a lead with a Chinese name, company, custom fields and tags
    lead = _lead(
        session,
        first_name="明",
        last_name="李",
        company="北京数据科技有限公司",
        attributes={"行业": "制造业", "员工数": 500},
    )
    session.add_all([Tag(lead_id=lead.id, tag="白皮书下载"), Tag(lead_id=lead.id, tag="webinar")])
    session.commit()
    session.expunge_all()

    # When they are read back, and the tag is used in a query
    loaded = session.get(Lead, lead.id)
    tagged = session.scalars(select(Tag.lead_id).where(Tag.tag == "白皮书下载")).all()

    # Then nothing was mangled
    assert loaded is not None
    assert (loaded.last_name, loaded.first_name) == ("李", "明")
    assert loaded.company == "北京数据科技有限公司"
    assert loaded.attributes == {"行业": "制造业", "员工数": 500}
    assert tagged == [lead.id]


def test_aware_datetimes_come_back_aware_utc_and_equal(session: Session) -> None:
    # Given an event stamped in Shanghai time
    lead = _lead(session, email="wang@example.cn")
    occurred = datetime(2026, 3, 1, 17, 30, 15, 123456, tzinfo=SHANGHAI)
    event = Event(lead_id=lead.id, type="opened", occurred_at=occurred)
    session.add(event)
    session.commit()
    session.expunge_all()

    # When it is read back
    loaded = session.get(Event, event.id)

    # Then it is the same instant, in UTC
    assert loaded is not None
    assert loaded.occurred_at == occurred == NOW
    assert loaded.occurred_at.tzinfo is UTC


def test_datetimes_compare_as_instants_in_queries(session: Session) -> None:
    # Given two enrollments due one second either side of now
    lead, version = _lead(session), _version(session)
    due, later = _enroll(session, lead, version), _enroll(session, lead, version)
    due.next_run_at = NOW - timedelta(seconds=1)
    later.next_run_at = (NOW + timedelta(seconds=1)).astimezone(SHANGHAI)
    session.commit()

    # When the scheduler asks for what is due, with `now` in another zone
    now = NOW.astimezone(timezone(timedelta(hours=-5)))
    found = session.scalars(select(Enrollment.id).where(Enrollment.next_run_at <= now)).all()

    # Then only the due one is found
    assert found == [due.id]


def test_changing_a_json_key_in_place_is_saved(session: Session) -> None:
    # Given an enrollment with a loop counter
    enrollment = _enroll(session, _lead(session), _version(session))
    enrollment.iterations["weekly_tip"] = 1
    session.commit()

    # When the counter is bumped in place
    enrollment.iterations["weekly_tip"] += 1
    session.commit()
    session.expunge_all()

    # Then the database has the new count
    loaded = session.get(Enrollment, enrollment.id)
    assert loaded is not None
    assert loaded.iterations == {"weekly_tip": 2}


def test_a_naive_datetime_is_refused(session: Session) -> None:
    lead = _lead(session)
    session.add(Event(lead_id=lead.id, type="opened", occurred_at=datetime(2026, 3, 1, 9, 30)))

    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()


def test_emails_are_stored_lower_case_and_unique_ignoring_case(session: Session) -> None:
    # Given a lead imported with a mixed-case email
    lead = _lead(session, email="  Ada.Lovelace@Example.COM ")
    assert lead.email == "ada.lovelace@example.com"
    session.commit()

    # When the same address arrives in another case
    session.add(Lead(email="ADA.LOVELACE@example.com"))

    # Then it is the same identity, and the database says so
    with pytest.raises(IntegrityError):
        session.commit()


def test_the_database_refuses_an_upper_case_email_written_past_the_model(
    session: Session,
) -> None:
    # A bulk import with insert() skips the model's validator; the CHECK does not.
    with pytest.raises(IntegrityError):
        session.execute(insert(Lead).values(email="Ada@Example.com", attributes={}))


def test_defaults_describe_a_new_lead(session: Session) -> None:
    lead = _lead(session, email="new@example.com")

    assert (lead.stage, lead.time_zone, lead.fit, lead.interest) == ("lead", "UTC", 0, 0.0)
    assert lead.attributes == {}
    assert lead.created_at.tzinfo is UTC
    assert not lead.suppressed


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (Lead, {"stage": "prospect"}),
        (Event, {"type": "teleported", "occurred_at": NOW}),
    ],
    ids=["unknown stage", "unknown event type"],
)
def test_enum_like_columns_refuse_unknown_values(
    session: Session, model: type[Lead | Event], fields: dict[str, object]
) -> None:
    if model is Event:
        fields = {**fields, "lead_id": _lead(session).id}

    session.add(model(**fields))

    with pytest.raises(IntegrityError):
        session.flush()


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(Tag(lead_id=404, tag="ghost"))

    with pytest.raises(IntegrityError):
        session.flush()


def test_deleting_a_lead_deletes_its_history(session: Session) -> None:
    # Given a lead with a tag, an event and a delivery
    lead = _lead(session, email="erase@example.com")
    enrollment = _enroll(session, lead, _version(session))
    session.add_all(
        [
            Tag(lead_id=lead.id, tag="gdpr"),
            Event(lead_id=lead.id, type="opened", occurred_at=NOW),
            _delivery(enrollment, "<erase@nurture>"),
        ]
    )
    session.commit()

    # When the lead is erased
    session.delete(lead)
    session.commit()

    # Then nothing of theirs remains
    for model in (Tag, Event, Delivery, Enrollment):
        assert session.scalars(select(model)).all() == []
