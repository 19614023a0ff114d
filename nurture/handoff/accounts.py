"""Accounts: companies from the CRM, and the leads that belong to them.

`nurture accounts import` stores each account (name, email domains, owner,
status: customer, opportunity or prospect), keyed by its normalised name, so
importing a newer export updates it. A lead belongs to an account when its
email domain is one of the account's (never a freemail domain) or, failing
that, when its company name normalises to the account's: case, full- and
half-width forms, punctuation and legal suffixes (Inc., Ltd., GmbH, 有限公司,
股份有限公司, ...) do not count.

A lead matched to a customer or an open deal goes straight to the account's
owner, recorded as an assignment and notified as the routing says, so sales
never meets an existing customer as a new lead. The lead carries
``account_name``, ``account_status``, ``account_owner`` and ``is_customer``
(the language reads them as ``lead.account.name`` and so on,
`dsl.vocabulary.stored_field`). This module imports nothing of
`nurture.store`, which calls it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from dsl.vocabulary import NAMED_LISTS
from nurture.handoff import notices
from nurture.models import ACCOUNT_STATUSES, Account, AccountDomain, Assignment, Lead

FREEMAIL: Final = frozenset(NAMED_LISTS["freemail"])
SUFFIXES: Final = (
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "集团",
    "公司",
)
"""Chinese legal suffixes, longest first (they follow the name without a space)."""
WORD_SUFFIXES: Final = frozenset(
    [
        "inc",
        "incorporated",
        "ltd",
        "limited",
        "llc",
        "llp",
        "plc",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "sarl",
        "bv",
        "nv",
        "co",
        "corp",
        "corporation",
        "company",
        "pty",
        "kk",
        "oy",
        "ab",
        "as",
        "srl",
        "spa",
    ]
)
"""Latin legal suffixes, as words after the name (their dots and commas already gone)."""
HANDED: Final = ("customer", "opportunity")
"""Account statuses whose leads go straight to the account's owner."""
FIELDS: Final = ("name", "domains", "owner", "status")
DOMAIN: Final = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def company_key(name: str) -> str:
    """The name as leads are matched on it: ``"Acme, Inc."`` and ``"ＡＣＭＥ"`` are ``"acme"``."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = "".join(" " if unicodedata.category(c)[0] in "PSZ" else c for c in text)
    words = text.split()
    while len(words) > 1 and words[-1] in WORD_SUFFIXES:
        words.pop()
    text = " ".join(words)
    for suffix in SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)].rstrip()
            break
    return text


@dataclass(frozen=True, slots=True)
class AccountRow:
    name: str
    key: str
    domains: tuple[str, ...]
    owner: str | None
    status: str


def check_account(item: Any) -> tuple[AccountRow | None, list[tuple[str, str]]]:
    """One row as an account, or its problems as (field, message) pairs."""
    if not isinstance(item, Mapping):
        return None, [("row", "must be an object with name, domains, owner, status")]
    problems = [
        (k, f"unknown column; columns: {', '.join(FIELDS)}") for k in item if k not in FIELDS
    ]
    name = str(item.get("name") or "").strip()
    key = company_key(name)
    if not key:
        problems.append(("name", "required: the company's name"))
    elif len(name) > 200:
        problems.append(("name", "longer than 200 characters"))
    raw = item.get("domains") or []
    given = raw if isinstance(raw, list) else re.split(r"[;,\s]+", str(raw))
    domains = tuple(
        dict.fromkeys(str(d).strip().lower().removeprefix("@") for d in given if str(d).strip())
    )
    for domain in domains:
        if not DOMAIN.match(domain):
            problems.append(("domains", f"{domain!r} is not a domain such as acme.com"))
        elif domain in FREEMAIL:
            problems.append(("domains", f"{domain} is a freemail domain: it names no company"))
    owner = str(item.get("owner") or "").strip().lower() or None
    if owner is not None and (len(owner) > 320 or not re.fullmatch(r"[^@\s]+@[^@\s]+", owner)):
        problems.append(("owner", f"{owner!r} is not an email address"))
    status = str(item.get("status") or "prospect").strip().lower()
    if status not in ACCOUNT_STATUSES:
        problems.append(("status", f"{status!r}: one of {', '.join(ACCOUNT_STATUSES)}"))
    if problems:
        return None, problems
    return AccountRow(name, key, domains, owner, status), []


class Imported(NamedTuple):
    """What an accounts import did."""

    created: int
    updated: int
    matched: int
    """Leads that had no account and now have one."""
    refreshed: int
    """Leads of updated accounts whose account fields (or owner) changed."""


def store_accounts(
    session: Session, rows: Sequence[AccountRow], routing: Mapping[str, Any] | None, now: datetime
) -> Imported:
    """Create or update the accounts (by key, domains replaced), bring the leads of updated
    accounts up to date (`attach`), then match the leads that have no account yet."""
    created = updated = 0
    changed: list[Account] = []
    for row in rows:
        account = session.scalar(select(Account).where(Account.key == row.key))
        if account is None:
            account = Account(key=row.key, imported_at=now)
            session.add(account)
            created += 1
        else:
            updated += 1
            if (account.name, account.owner, account.status) != (row.name, row.owner, row.status):
                changed.append(account)
        account.name, account.owner, account.status = row.name, row.owner, row.status
        account.imported_at = now
        session.flush()
        session.execute(delete(AccountDomain).where(AccountDomain.account_id == account.id))
        session.execute(delete(AccountDomain).where(AccountDomain.domain.in_(row.domains)))
        session.add_all(AccountDomain(domain=d, account_id=account.id) for d in row.domains)
    session.flush()
    refreshed = 0
    for account in changed:
        theirs = session.scalars(
            select(Lead).where(Lead.account_id == account.id).order_by(Lead.id)
        )
        refreshed += sum(attach(session, lead, account, routing, now) for lead in theirs)
    domains = {d for row in rows for d in row.domains}
    at = [Lead.email.like(f"%@{d}") for d in sorted(domains)]
    maybe = or_(Lead.company.is_not(None), *at)  # a lead with neither can match no account
    unmatched = session.scalars(
        select(Lead).where(Lead.account_id.is_(None), maybe).order_by(Lead.id)
    )
    matched = sum(match_lead(session, lead, routing, now) is not None for lead in unmatched)
    return Imported(created, updated, matched, refreshed)


def match_lead(
    session: Session, lead: Lead, routing: Mapping[str, Any] | None, now: datetime
) -> Account | None:
    """The lead's account by email domain, else by company name; None when there is none.

    A lead of a customer or an open deal without an owner gets the account's owner.
    """
    account = _find(session, lead)
    if account is None:
        return None
    attach(session, lead, account, routing, now)
    return account


def attach(
    session: Session,
    lead: Lead,
    account: Account,
    routing: Mapping[str, Any] | None,
    now: datetime,
) -> bool:
    """Give the lead `account`'s fields as they are now; whether anything changed.

    A lead of a customer or an open deal that has no owner yet gets the
    account's owner, recorded and notified. An owner the lead already has is
    kept, whatever the account says now (a salesperson holds it), and a lead
    whose account stops being a customer keeps its owner too: only
    `is_customer` and the account fields follow the account.
    """
    before = dict(lead.attributes or {})
    lead.account_id = account.id
    lead.attributes = {
        **before,
        "account_name": account.name,
        "account_status": account.status,
        "account_owner": account.owner,
        "is_customer": account.status == "customer",
    }
    changed = lead.attributes != before
    if account.status in HANDED and account.owner and lead.owner is None:
        lead.owner = account.owner
        given = Assignment(
            lead_id=lead.id,
            owner=account.owner,
            how="owner",
            cause=f"existing {account.status}: account {account.name}",
            reason=f"the account's owner {account.owner}",
            at=now,
        )
        session.add(given)
        session.flush()
        notices.queue(session, given, routing or {}, "assigned", now)
        changed = True
    return changed


def _find(session: Session, lead: Lead) -> Account | None:
    email = lead.email or ""
    domain = email.rpartition("@")[2].lower() if "@" in email else ""
    if domain and domain not in FREEMAIL:
        found = session.scalar(
            select(Account).join(AccountDomain).where(AccountDomain.domain == domain)
        )
        if found is not None:
            return found
    key = company_key(lead.company or "")
    return session.scalar(select(Account).where(Account.key == key)) if key else None


def find_accounts(
    session: Session, leads: Sequence[tuple[str | None, str | None]]
) -> list[Account | None]:
    """The account of each (email, company) pair as `match_lead` finds it (domain first, then
    company name), in two queries for all of them: an import's batch of leads."""
    from nurture.runtime.database import among_texts  # here: the runtime imports this module

    domains = [_domain(email) for email, _ in leads]
    keys = [company_key(company or "") for _, company in leads]
    wanted = sorted({d for d in domains if d})
    by_domain: dict[str, Account] = {}
    if wanted:
        rows = session.execute(
            select(AccountDomain.domain, Account)
            .join(Account, Account.id == AccountDomain.account_id)
            .where(among_texts(session, AccountDomain.domain, wanted))
        )
        by_domain = {domain: account for domain, account in rows}
    named = sorted({k for k in keys if k})
    by_key: dict[str, Account] = {}
    if named:
        by_key = {
            a.key: a
            for a in session.scalars(
                select(Account).where(among_texts(session, Account.key, named))
            )
        }
    return [
        by_domain.get(domain) or (by_key.get(key) if key else None)
        for domain, key in zip(domains, keys, strict=True)
    ]


def _domain(email: str | None) -> str:
    """The email's domain when it can name a company (not freemail), else ``""``."""
    domain = (email or "").rpartition("@")[2].lower() if "@" in (email or "") else ""
    return "" if domain in FREEMAIL else domain
