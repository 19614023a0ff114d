"""Checking the JSON bodies of ``/api/events`` and ``/api/leads`` by hand.

A body is one item (an object) or a list of 1 to `MAX_ITEMS` items. Every
problem is a `Problem` with a JSON path: ``$.type`` for a single item,
``$[2].lead.email`` for the third item of a list. All problems are collected
before anything is stored; one bad item fails the whole request.

An event::

    {"lead": {"email": "ada@acme.cn"},        # or phone, messaging_id, id; several must agree
     "type": "custom",                        # one of nurture.models.EVENT_TYPES
     "name": "webinar_attended",              # custom events only, and required for them
     "at": "2026-03-02T09:00:00+08:00",       # optional, default now; needs an offset
     "link": "https://...",                   # optional
     "delivery_id": 42,                       # optional: the message it belongs to
     "data": {...}}                           # optional object

A lead: see `nurture.store.cleaning.prepare_lead`.

Strings anywhere in an item must be storable text: no NUL character and no
lone surrogate (PostgreSQL refuses both); numbers must be finite (JSON has
no infinity, though ``1e999`` parses as one). `load_json` reads a body or a
JSON line: arrays and objects nest at most `MAX_DEPTH` deep and an integer
has at most as many digits as Python converts (4,300), so neither a
recursion nor a conversion error escapes as a traceback.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from nurture.engine.state import utc
from nurture.models import EVENT_TYPES
from nurture.models import SUPPRESSION_CHANNELS as CLOSABLE
from nurture.store.cleaning import (
    MAX_MESSAGING_ID,
    CleanLead,
    InvalidLead,
    LeadRules,
    kind_of,
    normalize_email,
    normalize_phone,
    prepare_lead,
)
from nurture.store.scoring import CHANNEL_CLOSING

MAX_DEPTH: Final = 64
"""How deeply arrays and objects may nest in a body or a JSON line."""
MAX_ITEMS: Final = 1000
"""The most items one request may carry."""
MAX_ID: Final = 2**31 - 1
"""Ids are 32-bit integers in the database."""
ID_DIGITS: Final = len(str(MAX_ID))
MAX_NAME: Final = 200
MAX_LINK: Final = 2048
FUTURE_SLACK: Final = timedelta(minutes=5)
"""How far in the future an event's ``at`` may be, for clocks that run fast."""

EVENT_FIELDS: Final = ("lead", "type", "name", "at", "link", "delivery_id", "data")
LEAD_REF_FIELDS: Final = ("email", "phone", "messaging_id", "id")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request, at a JSON path (``$[2].lead.email``)."""

    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class Invalid(Exception):
    """Raised when a request does not validate; `problems` name every bad field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))
        self.problems = problems

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class NotJson(ValueError):
    """Raised when text is not JSON that `load_json` accepts; the message says why, and
    `line` and `column` where, when the parser knows."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.line, self.column))


@dataclass(frozen=True, slots=True)
class LeadRef:
    """How an event names its lead; the given fields must all name the same lead."""

    email: str | None = None
    phone: str | None = None
    messaging_id: str | None = None
    id: int | None = None

    def given(self) -> dict[str, str | int]:
        values = {
            "email": self.email,
            "phone": self.phone,
            "messaging_id": self.messaging_id,
            "id": self.id,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class EventInput:
    """One checked event of a request."""

    path: str
    """Where it was in the body (``$[2]``), for errors found later (an unknown lead)."""
    lead: LeadRef
    type: str
    name: str | None
    at: datetime | None
    link: str | None = None
    delivery_id: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def load_json(text: str, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """`text` as JSON, with nesting and integer sizes bounded; `NotJson` otherwise.

    `parse_constant` sees ``NaN`` and ``Infinity`` (default: they read as floats).
    """
    try:
        value = json.loads(text, parse_int=_int, parse_constant=parse_constant)
    except NotJson:
        raise
    except json.JSONDecodeError as e:
        raise NotJson(e.msg, e.lineno, e.colno) from None
    except RecursionError:
        raise NotJson(_too_deep()) from None
    if _deeper_than(value, MAX_DEPTH):
        raise NotJson(_too_deep())
    return value


def _int(digits: str) -> int:
    most = sys.get_int_max_str_digits()
    count = len(digits.lstrip("-"))
    if most and count > most:
        raise NotJson(f"a number has {count:,} digits; at most {most:,}")
    return int(digits)


def _too_deep() -> str:
    return f"arrays and objects nest more than {MAX_DEPTH} levels deep"


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` deep (without recursing)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return False


def items(body: Any) -> list[tuple[str, Any]]:
    """The items of a body with their paths; raises `Invalid` for a body of the wrong shape."""
    if isinstance(body, dict):
        return [("$", body)]
    if not isinstance(body, list):
        raise Invalid(
            [Problem("$", f"expected an object or a list of objects, not {kind_of(body)}")]
        )
    if not body:
        raise Invalid([Problem("$", "the list is empty")])
    if len(body) > MAX_ITEMS:
        raise Invalid([Problem("$", f"{len(body)} items; send at most {MAX_ITEMS} per request")])
    return [(f"$[{i}]", item) for i, item in enumerate(body)]


def parse_events(body: Any, now: datetime, rules: LeadRules) -> list[EventInput]:
    """The checked events of a body; raises `Invalid` with every problem found."""
    problems: list[Problem] = []
    events: list[EventInput] = []
    for path, item in items(body):
        found = _item_problems(path, item, EVENT_FIELDS)
        if not found:
            event, found = _event(path, item, now, rules)
            if event is not None and not found:
                events.append(event)
        problems.extend(found)
    if problems:
        raise Invalid(problems)
    return events


def parse_leads(body: Any, rules: LeadRules) -> list[CleanLead]:
    """The prepared leads of a body (cleaning verdicts included); raises `Invalid`."""
    problems: list[Problem] = []
    leads: list[CleanLead] = []
    for path, item in items(body):
        found = _item_problems(path, item, None)
        if not found:
            try:
                leads.append(prepare_lead(item, rules))
            except InvalidLead as e:
                found = [Problem(_below(path, where), message) for where, message in e.problems]
        problems.extend(found)
    if problems:
        raise Invalid(problems)
    return leads


def text_problems(value: Any, path: str) -> Iterator[Problem]:
    """Values in `value` (keys too) that cannot be stored: a NUL, a lone surrogate, infinity."""
    if isinstance(value, str):
        if "\x00" in value:
            yield Problem(path, "contains a NUL character")
        elif not _encodable(value):
            yield Problem(path, "contains a lone surrogate, which is not text")
    elif isinstance(value, float) and not math.isfinite(value):  # 1e999, or NaN in a file
        yield Problem(path, f"{value} is not a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from text_problems(key, path)
            yield from text_problems(item, _join(path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from text_problems(item, f"{path}[{i}]")


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _item_problems(path: str, item: Any, known: tuple[str, ...] | None) -> list[Problem]:
    if not isinstance(item, dict):
        return [Problem(path, f"expected an object, not {kind_of(item)}")]
    found = list(text_problems(item, path))
    if known is not None:
        expected = ", ".join(known)
        found += [
            Problem(_join(path, key), f"unknown field; expected {expected}")
            for key in item
            if key not in known
        ]
    return found


def _event(
    path: str, item: dict[str, Any], now: datetime, rules: LeadRules
) -> tuple[EventInput | None, list[Problem]]:
    problems: list[Problem] = []

    def check(name: str, parse: Any) -> Any:
        try:
            return parse(item.get(name))
        except ValueError as e:
            problems.append(Problem(_join(path, name), str(e)))
            return None

    lead = _lead_ref(_join(path, "lead"), item.get("lead"), rules, problems)
    event_type = check("type", _event_type)
    name = check("name", _name)
    if event_type == "custom" and item.get("name") is None:
        problems.append(Problem(_join(path, "name"), "a custom event needs a name"))
    elif event_type not in (None, "custom") and name is not None:
        message = "is only for custom events; put other details in data"
        problems.append(Problem(_join(path, "name"), message))
    at = check("at", lambda v: _at(v, now))
    link = check("link", _link)
    delivery_id = check("delivery_id", lambda v: None if v is None else _id(v))
    data = check("data", _data)
    channel = (data or {}).get("channel")
    if event_type in CHANNEL_CLOSING and channel is not None and channel not in CLOSABLE:
        message = f"{_show(channel)} is not a channel to close; one of {', '.join(CLOSABLE)}"
        problems.append(Problem(_join(_join(path, "data"), "channel"), message))
    if problems or lead is None or event_type is None:
        return None, problems
    return EventInput(path, lead, event_type, name, at, link, delivery_id, data or {}), []


def _lead_ref(path: str, value: Any, rules: LeadRules, problems: list[Problem]) -> LeadRef | None:
    if value is None:
        problems.append(Problem(path, "required: an object with email, phone, messaging_id or id"))
        return None
    if not isinstance(value, dict):
        problems.append(Problem(path, f"expected an object, not {kind_of(value)}"))
        return None
    ref: dict[str, Any] = {}
    for key, raw in value.items():
        where = _join(path, key)
        if key not in LEAD_REF_FIELDS:
            problems.append(Problem(where, f"unknown field; expected {', '.join(LEAD_REF_FIELDS)}"))
            continue
        try:
            ref[key] = _lead_key(key, raw, rules)
        except ValueError as e:
            problems.append(Problem(where, str(e)))
    if not ref and not any(p.path.startswith(path) for p in problems):
        problems.append(Problem(path, "give the lead's email, phone, messaging_id or id"))
    return LeadRef(**ref) if ref else None


def _lead_key(key: str, raw: Any, rules: LeadRules) -> str | int:
    if key == "id":
        return _id(raw)
    if key == "phone" and isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"should be a non-empty string, not {kind_of(raw)}")
    if key == "email":
        return normalize_email(raw)
    if key == "phone":
        return normalize_phone(raw, rules.default_calling_code)
    if len(raw.strip()) > MAX_MESSAGING_ID:
        raise ValueError(f"is longer than {MAX_MESSAGING_ID} characters")
    return raw.strip()


def _event_type(value: Any) -> str:
    if value is None:
        raise ValueError(f"required: one of {', '.join(EVENT_TYPES)}")
    if value not in EVENT_TYPES:
        raise ValueError(f"{_show(value)} is not an event type; types: {', '.join(EVENT_TYPES)}")
    return str(value)


def _name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"should be a non-empty string, not {kind_of(value)}")
    if len(value.strip()) > MAX_NAME:
        raise ValueError(f"is longer than {MAX_NAME} characters")
    return value.strip()


def _at(value: Any, now: datetime) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"should be an ISO-8601 string, not {kind_of(value)}")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO-8601 time such as 2026-03-02T09:00:00Z"
        ) from None
    if at.utcoffset() is None:
        raise ValueError(f"{value!r} has no time zone; add Z or an offset such as +08:00")
    try:
        at = utc(at)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC moment Python has
        raise ValueError(f"{value!r} is out of range (years 1 to 9999 in UTC)") from None
    if at > now + FUTURE_SLACK:
        raise ValueError(f"{value!r} is in the future (now is {now.isoformat()})")
    return at


def _link(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"should be a string, not {kind_of(value)}")
    if len(value) > MAX_LINK:
        raise ValueError(f"is longer than {MAX_LINK} characters")
    return value.strip() or None


def _id(value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) > ID_DIGITS:
        raise ValueError(f"{_show(value)} is not an id (1 to {MAX_ID})")  # a long CSV cell
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"should be an integer id, not {kind_of(value)}")
    if not 1 <= value <= MAX_ID:
        raise ValueError(f"{_show(value)} is not an id (1 to {MAX_ID})")
    return value


def _data(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"should be an object, not {kind_of(value)}")
    return value


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{_show(key)}]"


def _below(path: str, relative: str) -> str:
    """`path` followed by a relative path such as ``email``, ``tags[0]`` or ``""``."""
    if not relative or relative.startswith("["):
        return path + relative
    return f"{path}.{relative}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
