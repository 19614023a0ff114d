"""Leads in: cleaning, identity, dedup and merges, for the API, CSV imports and forms.

A record goes through three stages:

1. `prepare_lead` (pure): trims and normalises the fields, refuses values that
   cannot be stored (`InvalidLead`, every problem named by field), and gives
   the cleaning verdict: a test lead, a junk phone number, a disposable or a
   competitor's email domain is `skip`ped with a reason (`LeadRules` holds the
   lists; the defaults are below).
2. `store_lead`: finds the leads with the same email (lower-cased), phone
   (normalised) or messaging id. None: a new lead. One: it is updated. Several
   (the email names lead A, the phone lead B): they are merged into one.
3. The profile is applied and the lead rescored with the active scoring model.

Update policy. A given, non-empty profile value replaces the stored one (the
newest form fill is the best knowledge); an empty or missing one changes
nothing. Identity values are never replaced: a lead found by its phone that
arrives with another email keeps its email, and the new one is kept in
``attributes["other_emails"]`` (likewise ``other_phones``,
``other_messaging_ids``). Attributes are merged key by key. Tags are added,
never removed. Stage, owner, scores and suppression are the engine's and
cannot be set here.

Merges keep both histories. The survivor is the lead furthest along the
funnel (then the one with an owner, then the oldest); every event, tag,
enrollment, delivery, lifecycle transition and MQL record of the others moves
to it, an enrollment in a campaign the survivor is already in is exited (no
double sends), the earliest suppression of either wins (an unsubscribe is
never lost), empty profile fields are filled, and a `LeadMerge` row plus an
entry in ``attributes["merged_leads"]`` record what was merged, when and why.
The merged leads are then deleted; `resolve_lead_id` maps their old ids
(carried by unsubscribe links already sent) to the survivor.

Phones: NFKC first (full-width digits from Chinese input methods become
ASCII), then separators are dropped, ``00`` becomes ``+``, and the result is
``+`` and digits when the number had a country code, else its digits. With
`LeadRules.default_calling_code` (such as ``"86"``) a national number gets
that code (a leading trunk ``0`` dropped), so ``138 1234 5678`` and
``+86 138-1234-5678`` are one lead; without it they stay two.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from dsl.vocabulary import STAGE_RANK
from nurture.engine.state import utc
from nurture.models import (
    CampaignVersion,
    Delivery,
    Enrollment,
    Event,
    Lead,
    LeadMerge,
    LifecycleTransition,
    MqlRecord,
    Tag,
)
from nurture.store.definitions import active_scoring
from nurture.store.scoring import rescore

IDENTITY: Final = ("email", "phone", "messaging_id")
"""The fields that identify a lead: the same value is the same lead."""

COLUMNS: Final = {
    "first_name": 200,
    "last_name": 200,
    "company": 200,
    "title": 200,
    "source": 200,
    "time_zone": 64,
}
"""Profile fields stored in lead columns, with their length limits; the rest go to attributes."""

MANAGED: Final = frozenset(
    {
        "id",
        "stage",
        "owner",
        "fit",
        "interest",
        "grade",
        "unsubscribed_at",
        "hard_bounced_at",
        "complained_at",
        "suppressed_reason",
        "created_at",
        "updated_at",
        "last_activity_at",
        "email_domain",
    }
)
"""Fields the engine owns; a lead record may not set them."""

ALIASES: Final = {
    "email": "other_emails",
    "phone": "other_phones",
    "messaging_id": "other_messaging_ids",
}
"""Where another value of an identity field is kept, in ``attributes``."""

MAX_EMAIL: Final = 320
MAX_MESSAGING_ID: Final = 128
MAX_TAG: Final = 100
PHONE_DIGITS: Final = (5, 15)
"""The fewest and most digits of a phone number (E.164 allows 15)."""

DEFAULT_TEST_DOMAINS: Final = frozenset(
    {"example.com", "example.org", "example.net", "test.com", "localhost"}
)
DEFAULT_TEST_SUFFIXES: Final = frozenset({".test", ".example", ".invalid", ".localhost"})
DEFAULT_TEST_LOCAL_PARTS: Final = frozenset(
    {"test", "tester", "testing", "asdf", "qwerty", "fake", "dummy", "sample", "nobody"}
)
DEFAULT_TEST_NAMES: Final = frozenset(
    {"test", "tester", "testing", "test user", "asdf", "qwerty", "xxx", "fake", "dummy", "测试"}
)
DEFAULT_DISPOSABLE_DOMAINS: Final = frozenset(
    {
        "mailinator.com",
        "10minutemail.com",
        "guerrillamail.com",
        "guerrillamail.net",
        "sharklasers.com",
        "yopmail.com",
        "trashmail.com",
        "temp-mail.org",
        "tempmail.com",
        "throwawaymail.com",
        "getnada.com",
        "dispostable.com",
        "maildrop.cc",
        "fakeinbox.com",
        "mailnesia.com",
    }
)
DEFAULT_JUNK_PHONES: Final = frozenset({"13800000000", "12345678901", "00000000000"})


@dataclass(frozen=True, slots=True)
class LeadRules:
    """The cleaning lists and phone settings; the defaults suit most B2B lists."""

    test_domains: frozenset[str] = DEFAULT_TEST_DOMAINS
    """Email domains of test leads (subdomains too)."""
    test_suffixes: frozenset[str] = DEFAULT_TEST_SUFFIXES
    """Reserved top-level domains that no real lead has (RFC 2606)."""
    test_local_parts: frozenset[str] = DEFAULT_TEST_LOCAL_PARTS
    """Email local parts of test leads (``test@``, also ``test1@``, ``test+x@``)."""
    test_names: frozenset[str] = DEFAULT_TEST_NAMES
    """First, last or full names of test leads, compared case-insensitively."""
    disposable_domains: frozenset[str] = DEFAULT_DISPOSABLE_DOMAINS
    """Throwaway mailbox providers (subdomains too)."""
    competitor_domains: frozenset[str] = frozenset()
    """Competitors' email domains (subdomains too); empty by default."""
    junk_phones: frozenset[str] = DEFAULT_JUNK_PHONES
    """Placeholder numbers typed into forms; a phone ending in one of them is junk."""
    repeated_digits: int = 7
    """A run of this many identical digits makes a phone junk (``0000000``)."""
    sequential_digits: int = 7
    """A run of this many consecutive digits, up or down, makes a phone junk (``1234567``)."""
    default_calling_code: str | None = None
    """The country code given to national numbers (``"86"``); None keeps them as typed."""


DEFAULT_RULES: Final = LeadRules()


class InvalidLead(ValueError):
    """Raised when a lead record has values that cannot be stored; `problems` name the fields."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class SkippedLead(Exception):
    """Raised by `upsert_lead` when cleaning rejects a record; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CleanLead:
    """A lead record, normalised and checked; `skip` is the cleaning verdict."""

    email: str | None = None
    phone: str | None = None
    messaging_id: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    """Profile columns with non-empty values."""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    skip: str | None = None
    """Why cleaning rejects the record, or None to store it."""

    def identity(self) -> dict[str, str]:
        """The identity fields that were given."""
        values = {"email": self.email, "phone": self.phone, "messaging_id": self.messaging_id}
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Stored:
    """What `store_lead` did: the lead, whether it is new, and the ids merged into it."""

    lead: Lead
    created: bool
    merged: tuple[int, ...] = ()


# ---------------------------------------------------------------- normalising


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]")


def normalize_email(text: str) -> str:
    """Trimmed and lower-cased; raises `ValueError` for text that is not an email address."""
    email = text.strip().lower()
    if len(email) > MAX_EMAIL:
        raise ValueError(f"is longer than {MAX_EMAIL} characters")
    if not _EMAIL.fullmatch(email):
        raise ValueError(f"{text!r} is not an email address")
    return email


def normalize_phone(text: str, default_calling_code: str | None = None) -> str:
    """``+`` and digits, or just digits; raises `ValueError` for text that is not a phone."""
    compact = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    international = compact.startswith("+")
    digits = compact[1:] if international else compact
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"{text!r} is not a phone number (digits, spaces, -, (), + only)")
    if not international and default_calling_code:
        digits, international = default_calling_code + digits.removeprefix("0"), True
    low, high = PHONE_DIGITS
    if not low <= len(digits) <= high:
        raise ValueError(f"{text!r} has {len(digits)} digits; a phone has {low} to {high}")
    return "+" + digits if international else digits


# ---------------------------------------------------------------- cleaning


def _under(domain: str, domains: Iterable[str]) -> str | None:
    """The listed domain that `domain` is or is a subdomain of."""
    for listed in domains:
        if domain == listed or domain.endswith("." + listed):
            return listed
    return None


def email_verdict(email: str, rules: LeadRules = DEFAULT_RULES) -> str | None:
    """Why cleaning rejects this (normalised) email, or None."""
    local, _, domain = email.rpartition("@")
    base = local.split("+", 1)[0]
    if base in rules.test_local_parts or re.fullmatch(r"test[\d._-]*", base):
        return f"test lead: email {email}"
    if _under(domain, rules.test_domains) or any(domain.endswith(s) for s in rules.test_suffixes):
        return f"test lead: email domain {domain}"
    if listed := _under(domain, rules.disposable_domains):
        return f"disposable email domain {listed}"
    if listed := _under(domain, rules.competitor_domains):
        return f"competitor's email domain {listed}"
    return None


def phone_verdict(phone: str, rules: LeadRules = DEFAULT_RULES) -> str | None:
    """Why cleaning rejects this (normalised) phone, or None."""
    digits = phone.lstrip("+")
    if any(digits.endswith(junk) for junk in rules.junk_phones):
        return f"junk phone {phone}: a placeholder number"
    if re.search(rf"(\d)\1{{{rules.repeated_digits - 1},}}", digits):
        return f"junk phone {phone}: {rules.repeated_digits} or more identical digits in a row"
    if run := _sequential_run(digits, rules.sequential_digits):
        return f"junk phone {phone}: consecutive digits {run}"
    return None


def _sequential_run(digits: str, length: int) -> str | None:
    """The first run of `length` digits that go up or down by one, or None."""
    for step in (1, -1):
        start = 0
        for i in range(1, len(digits) + 1):
            if i < len(digits) and int(digits[i]) - int(digits[i - 1]) == step:
                continue
            if i - start >= length:
                return digits[start:i]
            start = i
    return None


def name_verdict(names: Iterable[str], rules: LeadRules = DEFAULT_RULES) -> str | None:
    """Why cleaning rejects a lead with these names, or None."""
    test_names = {n.casefold() for n in rules.test_names}
    for name in names:
        if " ".join(name.split()).casefold() in test_names:
            return f"test lead: name {name!r}"
    return None


def clean_verdict(lead: CleanLead, rules: LeadRules = DEFAULT_RULES) -> str | None:
    """Why cleaning rejects the record (the first rule that does), or None."""
    first, last = lead.columns.get("first_name"), lead.columns.get("last_name")
    names = [n for n in (first, last, f"{first or ''} {last or ''}".strip()) if n]
    verdicts = (
        email_verdict(lead.email, rules) if lead.email else None,
        phone_verdict(lead.phone, rules) if lead.phone else None,
        name_verdict(names, rules),
    )
    return next((v for v in verdicts if v), None)


# ---------------------------------------------------------------- preparing


def prepare_lead(fields: Mapping[str, Any], rules: LeadRules = DEFAULT_RULES) -> CleanLead:
    """Normalise and check a lead record; raises `InvalidLead` naming every bad field.

    Identity and profile fields are strings (a phone may be a number); None or
    blank means "not given". ``attributes`` is an object; ``tags`` a list of
    strings; any other field is an attribute.
    """
    problems: list[tuple[str, str]] = []
    identity: dict[str, str] = {}
    columns: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    tags: tuple[str, ...] = ()
    for key, value in fields.items():
        try:
            if key in IDENTITY:
                _put(identity, key, _identity(key, value, rules))
            elif key in COLUMNS:
                _put(columns, key, _column(key, value))
            elif key == "attributes":
                attributes.update(_attributes(value))
            elif key == "tags":
                tags = _tags(value)
            elif key in MANAGED:
                raise ValueError("is managed by nurture and cannot be set here")
            else:
                attributes[key] = value
        except _Problem as e:
            problems.append((e.path, str(e)))
        except ValueError as e:
            problems.append((key, str(e)))
    if not identity and not problems:
        problems.append(("", "a lead needs an email, a phone or a messaging_id"))
    if problems:
        raise InvalidLead(problems)
    lead = CleanLead(
        email=identity.get("email"),
        phone=identity.get("phone"),
        messaging_id=identity.get("messaging_id"),
        columns=columns,
        attributes=attributes,
        tags=tags,
    )
    return replace(lead, skip=clean_verdict(lead, rules))


class _Problem(ValueError):
    """A bad value below the top level of a record; `path` names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def _put(into: dict[str, str], key: str, value: str | None) -> None:
    if value is not None:
        into[key] = value


def _text(value: Any, *, numbers: bool = False) -> str | None:
    """The stripped text of a field value; None for None or blank; ValueError for other types."""
    if value is None:
        return None
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"should be a string, not {_kind(value)}")
    return value.strip() or None


def _identity(key: str, value: Any, rules: LeadRules) -> str | None:
    text = _text(value, numbers=key == "phone")
    if text is None:
        return None
    if key == "email":
        return normalize_email(text)
    if key == "phone":
        return normalize_phone(text, rules.default_calling_code)
    if len(text) > MAX_MESSAGING_ID:
        raise ValueError(f"is longer than {MAX_MESSAGING_ID} characters")
    return text


def _column(key: str, value: Any) -> str | None:
    text = _text(value)
    if text is not None and len(text) > COLUMNS[key]:
        raise ValueError(f"is longer than {COLUMNS[key]} characters")
    if text is not None and key == "time_zone" and not _is_zone(text):
        raise ValueError(f"{text!r} is not an IANA time zone such as Asia/Shanghai")
    return text


def _is_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _attributes(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"should be an object, not {_kind(value)}")
    for key in value:
        if key in IDENTITY or key in COLUMNS or key in MANAGED or key in ("attributes", "tags"):
            raise _Problem(f"attributes.{key}", "is a lead field; give it at the top level")
    return dict(value)


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"should be a list of strings, not {_kind(value)}")
    tags: list[str] = []
    for i, tag in enumerate(value):
        text = tag.strip() if isinstance(tag, str) else None
        if not text or len(text) > MAX_TAG:
            raise _Problem(
                f"tags[{i}]", f"should be a non-empty string of at most {MAX_TAG} characters"
            )
        if text not in tags:
            tags.append(text)
    return tuple(tags)


def _kind(value: Any) -> str:
    names = {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------- storing


def upsert_lead(
    session: Session, fields: Mapping[str, Any], now: datetime, *, rules: LeadRules = DEFAULT_RULES
) -> tuple[Lead, bool]:
    """Create or update the lead these fields identify: (lead, created).

    Raises `InvalidLead` for bad fields and `SkippedLead` when cleaning rejects
    the record; nothing is written then. The caller commits.
    """
    clean = prepare_lead(fields, rules)
    if clean.skip is not None:
        raise SkippedLead(clean.skip)
    stored = store_lead(session, clean, now)
    return stored.lead, stored.created


def store_lead(session: Session, clean: CleanLead, now: datetime) -> Stored:
    """Store a prepared record (its `skip` is not looked at): create, update or merge."""
    now = utc(now)
    matches = find_leads(session, **clean.identity())
    merged: list[int] = []
    if not matches:
        lead = Lead(created_at=now, updated_at=now, attributes={})
        session.add(lead)
    else:
        lead, *others = sorted(matches, key=_survivor_order)
        for other in others:
            merged.append(other.id)
            merge_leads(
                session, lead, other, now, f"same {_shared(clean, other)} as lead {lead.id}"
            )
    _apply(lead, clean, now)
    session.flush()
    _add_tags(session, lead.id, clean.tags, now)
    rescore(session, lead.id, active_scoring(session), now)
    return Stored(lead, not matches, tuple(merged))


def find_leads(
    session: Session,
    *,
    email: str | None = None,
    phone: str | None = None,
    messaging_id: str | None = None,
) -> list[Lead]:
    """The leads with any of these (normalised) identity values, oldest first, locked for update."""
    given = [(Lead.email, email), (Lead.phone, phone), (Lead.messaging_id, messaging_id)]
    clauses = [column == value for column, value in given if value is not None]
    if not clauses:
        return []
    query = select(Lead).where(or_(*clauses)).order_by(Lead.id).with_for_update()
    return list(session.scalars(query))


def resolve_lead_id(session: Session, lead_id: int) -> int | None:
    """The lead that `lead_id` is now: itself, the lead it was merged into, or None."""
    if session.get(Lead, lead_id) is not None:
        return lead_id
    return session.scalar(select(LeadMerge.into_id).where(LeadMerge.merged_id == lead_id))


def _survivor_order(lead: Lead) -> tuple[int, bool, int]:
    return (-STAGE_RANK.get(lead.stage or "lead", 0), lead.owner is None, lead.id)


def _shared(clean: CleanLead, other: Lead) -> str:
    same = [k for k, v in clean.identity().items() if getattr(other, k) == v]
    return " and ".join(same) or "identity"


def _apply(lead: Lead, clean: CleanLead, now: datetime) -> None:
    attributes = dict(lead.attributes or {})
    for key, value in clean.identity().items():
        _set_identity(lead, attributes, key, value)
    for key, text in clean.columns.items():
        setattr(lead, key, text)
    attributes.update(clean.attributes)
    lead.attributes = attributes
    lead.updated_at = now


def _set_identity(lead: Lead, attributes: dict[str, Any], key: str, value: str) -> None:
    """Give the lead an identity value, or keep it as another one when it has its own."""
    current = getattr(lead, key)
    if current is None:
        setattr(lead, key, value)
    elif current != value:
        others = list(attributes.get(ALIASES[key]) or [])
        attributes[ALIASES[key]] = others if value in others else [*others, value]


def _add_tags(session: Session, lead_id: int, tags: Sequence[str], now: datetime) -> None:
    if not tags:
        return
    have = set(session.scalars(select(Tag.tag).where(Tag.lead_id == lead_id)))
    session.add_all(Tag(lead_id=lead_id, tag=t, tagged_at=now) for t in tags if t not in have)
    session.flush()


# ---------------------------------------------------------------- merging


LIVE: Final = ("active", "waiting")
"""Enrollment states that may still send."""
MOVED: Final = (Event, Delivery, LifecycleTransition, MqlRecord)
"""Tables whose rows move to the survivor as they are (enrollments and tags need care)."""


def merge_leads(session: Session, into: Lead, other: Lead, now: datetime, cause: str) -> None:
    """Merge `other` into `into`, keeping both histories; `other` is deleted.

    The caller commits. See the module docstring for what moves and what wins.
    """
    if into.id == other.id:
        raise ValueError(f"cannot merge lead {into.id} into itself")
    session.flush()
    snapshot = _snapshot(other)
    for model in MOVED:
        _move_rows(session, model, other.id, into.id)
    _move_enrollments(session, other.id, into.id, now)
    _move_tags(session, other.id, into.id)
    session.execute(
        update(LeadMerge)
        .where(LeadMerge.into_id == other.id)
        .values(into_id=into.id)
        .execution_options(synchronize_session="fetch")
    )
    _merge_profile(session, into, other)
    session.add(
        LeadMerge(merged_id=other.id, into_id=into.id, at=now, cause=cause, merged=snapshot)
    )
    merged = list((into.attributes or {}).get("merged_leads") or [])
    entry = {"id": other.id, "at": now.isoformat(), "cause": cause}
    into.attributes = {**(into.attributes or {}), "merged_leads": [*merged, entry]}
    session.delete(other)
    session.flush()


def _move_rows(session: Session, model: Any, from_id: int, to_id: int) -> None:
    session.execute(
        update(model)
        .where(model.lead_id == from_id)
        .values(lead_id=to_id)
        .execution_options(synchronize_session="fetch")
    )


def _move_enrollments(session: Session, from_id: int, to_id: int, now: datetime) -> None:
    """Move enrollments; one in a campaign the survivor is running already is exited."""
    running = (
        select(CampaignVersion.campaign_id)
        .join(Enrollment, Enrollment.campaign_version_id == CampaignVersion.id)
        .where(Enrollment.lead_id == to_id, Enrollment.state.in_(LIVE))
    )
    survivor_campaigns = set(session.scalars(running))
    rows = session.execute(
        select(Enrollment, CampaignVersion.campaign_id)
        .join(CampaignVersion, Enrollment.campaign_version_id == CampaignVersion.id)
        .where(Enrollment.lead_id == from_id)
    )
    for enrollment, campaign_id in rows:
        enrollment.lead_id = to_id
        if enrollment.state in LIVE and campaign_id in survivor_campaigns:
            enrollment.state = "exited"
            enrollment.exit_reason = f"lead {from_id} merged into lead {to_id}, already enrolled"
            enrollment.ended_at = now
            enrollment.next_run_at = None
            enrollment.waiting_for = None
    session.flush()


def _move_tags(session: Session, from_id: int, to_id: int) -> None:
    have = select(Tag.tag).where(Tag.lead_id == to_id).scalar_subquery()
    session.execute(
        update(Tag)
        .where(Tag.lead_id == from_id, Tag.tag.not_in(have))
        .values(lead_id=to_id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Tag).where(Tag.lead_id == from_id).execution_options(synchronize_session=False)
    )


SNAPSHOT: Final = (
    *IDENTITY,
    *COLUMNS,
    "stage",
    "owner",
    "attributes",
    "unsubscribed_at",
    "hard_bounced_at",
    "complained_at",
    "suppressed_reason",
    "created_at",
    "last_activity_at",
)


def _snapshot(lead: Lead) -> dict[str, Any]:
    values = {name: getattr(lead, name) for name in SNAPSHOT}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _merge_profile(session: Session, into: Lead, other: Lead) -> None:
    """Fill the survivor from the other lead: identities, empty columns, attributes, suppression."""
    identity = {key: getattr(other, key) for key in IDENTITY}
    for key in IDENTITY:
        setattr(other, key, None)
    session.flush()  # free the unique identity values before the survivor takes them
    attributes = {**(other.attributes or {}), **(into.attributes or {})}
    for key, value in identity.items():
        if value is not None:
            _set_identity(into, attributes, key, value)
    for key in COLUMNS:
        if getattr(into, key) in (None, "", "UTC") and getattr(other, key) not in (None, ""):
            setattr(into, key, getattr(other, key))
    for key in ("unsubscribed_at", "hard_bounced_at", "complained_at"):
        setattr(into, key, _earliest(getattr(into, key), getattr(other, key)))
    into.suppressed_reason = into.suppressed_reason or other.suppressed_reason
    into.created_at = _earliest(into.created_at, other.created_at) or into.created_at
    into.last_activity_at = _latest(into.last_activity_at, other.last_activity_at)
    into.source = into.source or other.source
    into.attributes = attributes


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)
