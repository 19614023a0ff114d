"""Lead records before they are stored: fields, normalising, cleaning verdicts, `prepare_lead`.

Pure: nothing here reads or writes the database (`nurture.store.leads` stores).

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
from email.utils import parseaddr
from typing import Any, Final

from nurture.store.consents import FIELDS as CONSENT_FIELDS
from nurture.store.consents import SOURCE_FIELD as CONSENT_SOURCE
from nurture.store.consents import parse_consent, parse_source

IDENTITY: Final = ("email", "phone", "messaging_id")
"""The fields that identify a lead: the same value is the same lead."""

COLUMNS: Final = {
    "first_name": 200,
    "last_name": 200,
    "company": 200,
    "title": 200,
    "source": 200,
    "time_zone": 64,
    "owner": 320,
}
"""Profile fields stored in lead columns, with their length limits; the rest go to attributes.
``owner`` (a salesperson's address, from a CRM export) is kept only by a lead that has none:
one owner at a time (`nurture.store.leads`)."""

MANAGED: Final = frozenset(
    {
        "id",
        "stage",
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
    consent: Mapping[str, bool] = field(default_factory=dict)
    """Consent given (True) or withdrawn (False) per channel (`nurture.store.consents`)."""
    consent_source: str | None = None

    def identity(self) -> dict[str, str]:
        """The identity fields that were given."""
        values = {"email": self.email, "phone": self.phone, "messaging_id": self.messaging_id}
        return {k: v for k, v in values.items() if v is not None}


# ---------------------------------------------------------------- normalising


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
"""A local part that needs no quotes (RFC 5322 dot-atom, UTF-8 as RFC 6532 allows)."""
_QUOTED_PAIR = re.compile(r"\\(.)")
PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"
)
"""An address of letters, digits, ``_+-`` and single dots only: nothing in it that the
sender would rewrite, so `normalize_email` only lower-cases it (a property test holds them
to the full checks)."""
_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]")


def normalize_email(text: str) -> str:
    """The address as the sender puts it in ``RCPT TO``, trimmed and lower-cased, so one
    mailbox is one lead; raises `ValueError` for text that is not an email address.

    ``<a@x.com>`` is ``a@x.com``: the sender takes the address out of the
    brackets (`channels.mime.recipient`). ``"a"@x.com`` is ``a@x.com`` too: a
    quoted local part that needs no quotes names the same mailbox (RFC 5321
    section 4.1.2), and receiving servers deliver both to it. A local part that
    needs its quotes (``"a b"@x.com``), any other ``<``, ``>`` or ``"``, and
    text the sender would read as another address (``a(comment)@x.com`` is sent
    to ``a@x.com``, ``a,b@x.com`` to ``a``) are refused.
    """
    email = text.strip()
    if PLAIN_EMAIL.fullmatch(email) and len(email) <= MAX_EMAIL:
        return email.lower()  # the common case, which `checked_email` lets through as it is
    return checked_email(text)


def checked_email(text: str) -> str:
    """`normalize_email` without its shortcut for plain addresses: every check, every time."""
    email = text.strip()
    if email.startswith("<") and email.endswith(">"):
        email = email[1:-1].strip()
    email = email.lower()
    if len(email) > MAX_EMAIL:
        raise ValueError(f"is longer than {MAX_EMAIL} characters")
    local, _, domain = email.rpartition("@")
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        unquoted = _QUOTED_PAIR.sub(r"\1", local[1:-1])
        if not _DOT_ATOM.fullmatch(unquoted):
            raise ValueError(
                f"{text!r} has a quoted local part that needs its quotes; "
                "use an address without quotes"
            )
        email = f"{unquoted}@{domain}"
    if any(c in email for c in '<>"') or not _EMAIL.fullmatch(email):
        raise ValueError(f"{text!r} is not an email address")
    sent = parseaddr(email)[1]  # what aiosmtplib puts in RCPT TO
    if sent != email:
        raise ValueError(f"{text!r} is not one address as written; the sender would use {sent!r}")
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
    consent: dict[str, bool] = {}
    consent_source: str | None = None
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
            elif key in CONSENT_FIELDS:
                granted = parse_consent(value)
                if granted is not None:
                    consent[CONSENT_FIELDS[key]] = granted
            elif key == CONSENT_SOURCE:
                consent_source = parse_source(value)
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
        consent=consent,
        consent_source=consent_source,
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
        raise ValueError(f"should be a string, not {kind_of(value)}")
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
        raise ValueError(f"should be an object, not {kind_of(value)}")
    for key in value:
        if key in IDENTITY or key in COLUMNS or key in MANAGED or key in ("attributes", "tags"):
            raise _Problem(f"attributes.{key}", "is a lead field; give it at the top level")
    return dict(value)


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"should be a list of strings, not {kind_of(value)}")
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


def kind_of(value: Any) -> str:
    """A JSON value's kind in words, for messages: ``a number``, ``a list``, ``null``."""
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
