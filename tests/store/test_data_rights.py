"""Forgetting a person whose leads were merged: every address they had stays hashed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.models import Lead, LeadMerge, Suppression
from nurture.store.data_rights import export_person, forget_person
from nurture.store.merging import merge_leads
from nurture.store.suppressions import address_hash

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_the_addresses_of_merged_leads_are_kept_hashed_and_their_copies_erased(
    session: Session,
) -> None:
    # Given Ada at work, with her old personal address merged into her
    ada = Lead(email="ada@corp.com", first_name="Ada", attributes={})
    old = Lead(email="ada.l@mail.cn", phone="+8615061827305", attributes={})
    session.add_all([ada, old])
    session.flush()
    merge_leads(session, ada, old, T, "same person")
    session.flush()
    assert "ada.l@mail.cn" in str(export_person(session, ada)["lead_merges"])

    # When she is forgotten
    forget_person(session, ada, T)

    # Then every address she had is hashed on all channels, and the merge copy is gone
    hashes = {s.address_hash for s in session.scalars(select(Suppression))}
    assert hashes == {
        address_hash("all", a) for a in ("ada@corp.com", "ada.l@mail.cn", "+8615061827305")
    }
    assert session.scalars(select(LeadMerge)).all() == []
    assert "ada" not in str(export_person(session, ada)).lower()
