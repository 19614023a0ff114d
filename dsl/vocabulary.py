"""The words the language knows: channels, units, days, stages, fields, lists.

The grammar accepts any word in these places so that the checker, not the
parser, can say "unknown unit `wekes`; did you mean `weeks`?".
"""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Iterable
from datetime import timedelta

CHANNELS = ("email", "sms", "wechat", "webhook")
"""Channels a `send` may name; each maps to a template suffix `.{channel}.j2`."""

UNITS: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "minutes": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "hours": timedelta(hours=1),
    "day": timedelta(days=1),
    "days": timedelta(days=1),
    "week": timedelta(weeks=1),
    "weeks": timedelta(weeks=1),
}

WEEKDAYS: dict[str, int] = {
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}
"""Day names for `wait until` and `window` (Monday is 0, as in `datetime.weekday()`)."""

DAY_GROUPS: dict[str, tuple[int, ...]] = {
    "weekdays": (0, 1, 2, 3, 4),
    "weekends": (5, 6),
    "daily": (0, 1, 2, 3, 4, 5, 6),
    "everyday": (0, 1, 2, 3, 4, 5, 6),
}

CAP_PERIODS: dict[str, timedelta] = {
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
}

STAGES = ("lead", "mql", "sql", "opportunity", "customer", "returned")
"""Lifecycle stages in funnel order; `returned` sorts with `lead` for comparisons."""

STAGE_RANK: dict[str, int] = {
    "lead": 0,
    "returned": 0,
    "mql": 1,
    "sql": 2,
    "opportunity": 3,
    "customer": 4,
}

GRADES = ("A", "B", "C", "D", "E", "F")

KINDS = ("welcome", "drip", "reactivation", "education", "onboarding", "event", "nurture")
"""Well-known campaign kinds; any other label is allowed too (it is a free label)."""

INTEREST_ACTIVITIES: dict[str, str] = {
    "open": "opened",
    "click": "clicked",
    "reply": "replied",
    "form": "form_submitted",
    "visit": "page_viewed",
}
"""`+5 per click`: the activity word and the event type it counts."""

SLA_ACTIONS = ("reassign", "escalate", "notify")

NOTIFY_CHANNELS = ("email", "webhook", "wecom")
"""Channels a routing's `notify by` may name; templates end in `.{channel}.j2` as for sends."""

FIELD_TYPES = ("text", "number", "bool", "date", "list")

LEAD_FIELDS: dict[str, str] = {
    "email": "text",
    "email_domain": "text",
    "phone": "text",
    "messaging_id": "text",
    "first_name": "text",
    "last_name": "text",
    "name": "text",
    "company": "text",
    "title": "text",
    "persona": "text",
    "industry": "text",
    "employees": "number",
    "revenue": "number",
    "region": "text",
    "country": "text",
    "city": "text",
    "language": "text",
    "time_zone": "text",
    "source": "text",
    "website": "text",
    "owner": "text",
    "stage": "text",
    "is_customer": "bool",
    "account.name": "text",
    "account.status": "text",
    "account.owner": "text",
    "created_at": "date",
    "last_activity_at": "date",
}
"""The standard B2B profile; a `fields` block declares a project's own.

`account.name`, `account.status` and `account.owner` are the lead's account
(`nurture accounts import`); they are stored with the lead as `account_name`,
`account_status` and `account_owner` (`stored_field`), which is what
compiled conditions name.
"""

ACCOUNT_FIELDS = ("name", "status", "owner")
"""What `lead.account.X` may read."""


def stored_field(name: str) -> str:
    """The name a field is stored and compiled under: `account.name` -> `account_name`."""
    if name.startswith("account.") and name[8:] in ACCOUNT_FIELDS:
        return "account_" + name[8:]
    return name


def written_field(name: str) -> str:
    """The language's spelling of a stored field name: `account_name` -> `account.name`."""
    if name.startswith("account_") and name[8:] in ACCOUNT_FIELDS:
        return "account." + name[8:]
    return name


NAMED_LISTS: dict[str, tuple[str, ...]] = {
    "freemail": (
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "icloud.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "mail.com",
        "yandex.com",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "sohu.com",
        "foxmail.com",
        "aliyun.com",
    ),
}
"""Lists a condition may name without quotes: `lead.email_domain in freemail`."""

TEMPLATE_GLOBALS = frozenset({"lead", "campaign", "loop", "unsubscribe_url", "track", "message"})
"""Names every template may use; anything else is an unknown variable."""

HANDOFF_TEMPLATE_GLOBALS = frozenset({"lead", "owner", "mql", "timeline", "notes", "links"})
"""Names a routing's `notify by` template may use: the lead, its owner, the MQL and its story."""


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest known word, for a "did you mean" hint."""
    found = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def is_zone(name: str) -> bool:
    """True for a time zone a lead's `time_zone` may name: an IANA name, or UTC."""
    if name.upper() == "UTC":
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
