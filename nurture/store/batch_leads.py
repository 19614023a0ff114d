"""Leads in batches, for imports at scale: new leads in a few statements, the rest one by one.

`nurture.store.leads.store_lead` takes about a dozen statements a lead (find,
insert, tags, account, rescore, MQL rule), which caps a file import near 200
leads a second. `LeadBatcher.store` takes a batch of prepared leads (a few
thousand) and splits it, in file order:

- **new**: none of the lead's email, phone or messaging id is stored yet or
  was seen earlier in the import's batch, and its account (if any) hands it to
  nobody. These are inserted with one statement (SQLite: a multi-row
  ``INSERT ... RETURNING``; PostgreSQL: ids taken from the sequence first, then
  an executemany that psycopg pipelines, since it would re-parse a huge
  multi-row statement in Python every batch), their tags and owner
  assignments likewise;
  their scores are computed in memory (a new lead has no events yet), as
  `store_lead` would compute them, and the rare one the MQL rule takes at once
  goes through `recheck_mql` (transition, routing, notice).
- **the others** (an update, a merge, an identity seen earlier in the batch,
  an account that assigns an owner): the new leads before them are written
  first, then `store_lead` does what it always did.

So the outcome is the one the row-by-row path gives, in the same order; the
tests in ``tests/intake`` compare both. Dedup lookups are one query a batch
(emails, phones and messaging ids ``IN`` lists), account matching two
(`nurture.handoff.accounts.find_accounts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, insert, or_, select
from sqlalchemy.orm import Session

from nurture.engine.scoring import CompiledScoring, next_decay
from nurture.engine.state import Scores, utc
from nurture.handoff.accounts import HANDED, find_accounts
from nurture.models import Account, Assignment, Lead, Tag
from nurture.runtime.database import allocate_ids, among_texts, is_postgres
from nurture.store.cleaning import IDENTITY, CleanLead
from nurture.store.consents import record_imported
from nurture.store.leads import store_lead
from nurture.store.scoring import Rules, recheck_mql
from nurture.store.views import view_of

LEADS: Final = cast(Table, Lead.__table__)
TAGS: Final = cast(Table, Tag.__table__)
ASSIGNMENTS: Final = cast(Table, Assignment.__table__)
LEAD_COLUMNS: Final = tuple(c.name for c in LEADS.columns if c.name != "id")
"""Every column an inserted lead names (an executemany needs the same keys in every row)."""


@dataclass(slots=True)
class LeadTally:
    """What an import did, in counts (flat in the number of rows) and, when asked, in ids."""

    created: int = 0
    updated: int = 0
    merged: list[dict[str, int]] = field(default_factory=list)
    skipped: list[dict[str, object]] = field(default_factory=list)
    """``{"line": N, "reason": ...}`` for each lead that cleaning skipped."""
    ids: list[int | None] | None = None
    """The lead of each row (None: skipped), only when the caller asked (``--json``)."""
    kinds: dict[int, bool] | None = None
    """Lead id: created (True) or updated (False), in first-seen order, with `ids`."""
    first_created: int | None = None
    """The smallest id this import created: a larger one is new, a smaller one was stored."""
    _updated: set[int] = field(default_factory=set)

    def to_json(self) -> dict[str, object]:
        kinds = self.kinds or {}
        return {
            "created": [i for i, new in kinds.items() if new],
            "updated": [i for i, new in kinds.items() if not new],
            "skipped": self.skipped,
            "merged": self.merged,
            "ids": _followed(self.merged, self.ids or []),
        }

    def _new(self, lead_id: int) -> None:
        self.created += 1
        if self.first_created is None or lead_id < self.first_created:
            self.first_created = lead_id
        if self.kinds is not None:
            self.kinds.setdefault(lead_id, True)

    def _made_here(self, lead_id: int) -> bool:
        return self.first_created is not None and lead_id >= self.first_created

    def _stored(self, lead_id: int, created: bool, merged: Sequence[int]) -> None:
        if created:
            self._new(lead_id)
        elif not self._made_here(lead_id) and lead_id not in self._updated:
            self._updated.add(lead_id)
            self.updated += 1
            if self.kinds is not None:
                self.kinds.setdefault(lead_id, False)
        for gone in merged:
            self.merged.append({"from": gone, "into": lead_id})
            if self._made_here(gone):
                self.created -= 1
            elif gone in self._updated:
                self._updated.discard(gone)
                self.updated -= 1
            if self.kinds is not None:
                self.kinds.pop(gone, None)


def _followed(merged: list[dict[str, int]], ids: list[int | None]) -> list[int | None]:
    """Each id, or the lead it was merged into later in the import (maybe in turn merged)."""
    into = {m["from"]: m["into"] for m in merged}
    followed: list[int | None] = []
    for lead_id in ids:
        while lead_id is not None and lead_id in into:
            lead_id = into[lead_id]
        followed.append(lead_id)
    return followed


class LeadBatcher:
    """Stores an import's leads batch by batch in the caller's transaction (see the module)."""

    def __init__(self, session: Session, now: datetime, *, keep_ids: bool = False) -> None:
        self.session = session
        self.now = utc(now)
        self.rules = Rules.active(session)
        self.model = dict(self.rules.scoring) if self.rules.scoring else None
        self.compiled = CompiledScoring(self.model) if self.model else None
        """The model's conditions compiled once (`compute_scores` reads the JSON per lead)."""
        self.tally = LeadTally(ids=[] if keep_ids else None, kinds={} if keep_ids else None)

    def store(self, batch: Sequence[tuple[int, CleanLead]]) -> None:
        """Store one batch of (line, prepared lead) in file order; the caller commits."""
        kept = [(line, clean) for line, clean in batch if not self._skipped(line, clean)]
        taken = _stored_identities(self.session, (clean for _, clean in kept))
        accounts = find_accounts(
            self.session, [(c.email, c.columns.get("company")) for _, c in kept]
        )
        seen: set[tuple[str, str]] = set()
        pending: list[tuple[CleanLead, Account | None]] = []
        for (_line, clean), account in zip(kept, accounts, strict=True):
            values = set(clean.identity().items())
            hands = account is not None and _hands_over(account, clean)
            if values & taken or values & seen or hands:
                self._insert(pending)
                pending = []
                stored = store_lead(self.session, clean, self.now)
                self.tally._stored(stored.lead.id, stored.created, stored.merged)
                self._id(stored.lead.id)
            else:
                pending.append((clean, account))
            seen |= values
        self._insert(pending)
        self.session.flush()
        record_imported(self.session, (clean for _, clean in kept if clean.consent), self.now)
        self.session.expunge_all()  # nothing of this batch stays in memory (or goes stale)

    def _skipped(self, line: int, clean: CleanLead) -> bool:
        if clean.skip is None:
            return False
        self.tally.skipped.append({"line": line, "reason": clean.skip})
        if self.tally.ids is not None:
            self.tally.ids.append(None)
        return True

    def _id(self, lead_id: int) -> None:
        if self.tally.ids is not None:
            self.tally.ids.append(lead_id)

    def _insert(self, pending: list[tuple[CleanLead, Account | None]]) -> None:
        """Insert new leads with one statement each for leads, tags and assignments."""
        if not pending:
            return
        self.session.flush()
        drafts = [self._row(clean, account) for clean, account in pending]
        rows = [row for row, _ in drafts]
        connection = self.session.connection()
        if is_postgres(self.session):
            # ids from the sequence first, then a plain executemany: psycopg sends it in
            # pipeline mode with one short statement, where ``INSERT ... RETURNING`` of a
            # batch is one huge statement that psycopg re-parses in Python every time.
            ids = allocate_ids(self.session, LEADS, len(rows))
            for row, lead_id in zip(rows, ids, strict=True):
                row["id"] = lead_id
            connection.execute(insert(LEADS), rows)
        else:
            returning = insert(LEADS).returning(LEADS.c.id, sort_by_parameter_order=True)
            ids = list(connection.execute(returning, rows).scalars())
        tags = [
            {"lead_id": i, "tag": t, "tagged_at": self.now, "triggers_checked_at": None}
            for i, (clean, _) in zip(ids, pending, strict=True)
            for t in dict.fromkeys(clean.tags)
        ]
        if tags:
            connection.execute(insert(TAGS), tags)
        owned = [
            _assignment(i, row["owner"], self.now)
            for i, row in zip(ids, rows, strict=True)
            if row["owner"] is not None
        ]
        if owned:
            connection.execute(insert(ASSIGNMENTS), owned)
        for lead_id, (_, due) in zip(ids, drafts, strict=True):
            self.tally._new(lead_id)
            self._id(lead_id)
            if due:
                recheck_mql(self.session, lead_id, "the lead's creation (lead import)", self.now)

    def _row(self, clean: CleanLead, account: Account | None) -> tuple[dict[str, Any], bool]:
        """The lead row `store_lead` would write for a new lead, scores included, and whether
        the MQL rule holds for it at once."""
        row: dict[str, Any] = dict.fromkeys(LEAD_COLUMNS)
        row.update(
            created_at=self.now,
            updated_at=self.now,
            time_zone="UTC",
            stage="lead",
            attributes=dict(clean.attributes),
        )
        row.update(clean.identity())
        row.update({k: v for k, v in clean.columns.items() if k != "owner"})
        owner = (clean.columns.get("owner") or "").strip().lower()
        row["owner"] = owner or None
        if account is not None:
            row["account_id"] = account.id
            row["attributes"] = {**row["attributes"], **_account_fields(account)}
        view = view_of(_Draft({"id": None, **row}), clean.tags)
        compiled = self.compiled
        scores = Scores() if compiled is None else compiled.scores(view, [], self.now)
        row.update(fit=round(scores.fit), interest=scores.interest, grade=scores.grade)
        row["rescore_at"] = next_decay(self.model, [], self.now)
        due = compiled is not None and compiled.mql_due(
            replace(view, scores=scores), scores, [], self.now
        )
        return row, due


class _Draft:
    """A lead row not stored yet, read as `view_of` reads a lead (attribute access)."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.__dict__.update(row)


def _stored_identities(session: Session, leads: Iterable[CleanLead]) -> set[tuple[str, str]]:
    """The (field, value) identity pairs of these leads that some stored lead has already."""
    wanted: dict[str, set[str]] = {key: set() for key in IDENTITY}
    for clean in leads:
        for key, value in clean.identity().items():
            wanted[key].add(value)
    columns = {"email": Lead.email, "phone": Lead.phone, "messaging_id": Lead.messaging_id}
    clauses = [among_texts(session, columns[k], sorted(v)) for k, v in wanted.items() if v]
    if not clauses:
        return set()
    rows = session.execute(select(Lead.email, Lead.phone, Lead.messaging_id).where(or_(*clauses)))
    return {
        (key, value)
        for row in rows
        for key, value in zip(IDENTITY, row, strict=True)
        if value is not None and value in wanted[key]
    }


def _hands_over(account: Account, clean: CleanLead) -> bool:
    """True when `match_lead` would give the new lead to the account's owner (and notify)."""
    owner = (clean.columns.get("owner") or "").strip()
    return account.status in HANDED and bool(account.owner) and not owner


def _account_fields(account: Account) -> dict[str, Any]:
    return {
        "account_name": account.name,
        "account_status": account.status,
        "account_owner": account.owner,
        "is_customer": account.status == "customer",
    }


def _assignment(lead_id: int, owner: str, now: datetime) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "mql_id": None,
        "owner": owner,
        "team": None,
        "rule": None,
        "how": "owner",
        "previous": None,
        "cause": "lead import",
        "reason": f"imported with its owner {owner}",
        "at": now,
    }
