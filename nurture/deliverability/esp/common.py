"""What every ESP parser shares: the `Report` it produces and the `EspError` it raises.

A parser turns one verified webhook body into reports: provider-neutral
statements about one message ("bounced hard", "clicked this URL"), each
with the provider's idempotency key and whatever the provider echoed back
to find our delivery (our delivery id in a custom argument, or our
Message-ID). The tracking service resolves the delivery and records them
(`nurture.tracking.esp_webhooks`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

DELIVERY_ARG: Final = "nurture_delivery"
"""The custom argument / metadata / tag / user variable carrying our delivery id."""
KINDS: Final = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")
"""The kinds of `nurture.deliverability.feedback.Feedback`."""

_DIGITS = re.compile(r"[0-9]{1,18}")


class EspError(Exception):
    """A webhook refused: `status` (4xx) with a message naming what and where."""

    def __init__(self, status: int, where: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status = status
        self.where = where
        self.message = message
        self.headers = headers


@dataclass(frozen=True, slots=True)
class Report:
    """One thing an ESP said about one message, before we know which delivery it is."""

    kind: str
    """One of `KINDS`."""
    at: datetime
    key: str
    """The provider's id of this event, unique within the provider."""
    delivery_id: int | None = None
    """Our delivery id, when the provider echoed `DELIVERY_ARG`."""
    message_id: str | None = None
    """Our Message-ID (``<...@...>``), when the provider echoed it."""
    hard: bool | None = None
    """For bounces: permanent (True) or transient (False)."""
    detail: str = ""
    url: str | None = None
    """For clicks: the URL clicked."""


def load_json(body: bytes, where: str = "$") -> Any:
    """The body as JSON, or a 400 naming why it is not; the API's bounds on nesting and
    digits hold here too (a signed body is still not a trusted one)."""
    # imported here: the tracking package imports its ESP routes, which import this module
    from nurture.tracking import schema

    try:
        value = schema.load_json(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise EspError(400, where, f"the body is not UTF-8 text (byte {e.start})") from e
    except schema.NotJson as e:
        at = f" at line {e.line} column {e.column}" if e.line else ""
        raise EspError(400, where, f"the body is not JSON: {e}{at}") from e
    problem = next(schema.text_problems(value, where), None)  # "\u0000": PostgreSQL refuses it
    if problem is not None:
        raise EspError(400, problem.path, problem.message)
    return value


def obj(value: Any, where: str) -> dict[str, Any]:
    """`value` when it is a JSON object, else a 400 naming `where`."""
    if not isinstance(value, dict):
        raise EspError(400, where, f"expected a JSON object, got {_kind(value)}")
    return value


def text(data: Mapping[str, Any], name: str, where: str) -> str:
    """The non-empty string ``data[name]``, else a 400 naming ``where.name``."""
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise EspError(400, f"{where}.{name}", f"expected a non-empty string, got {_kind(value)}")
    return value


def optional_text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and value.strip() else None


def iso_time(data: Mapping[str, Any], name: str, where: str) -> datetime:
    """An ISO 8601 time (``2016-01-27T14:59:38.237Z``, or with 7 fraction digits)."""
    raw = text(data, name, where)
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", raw.strip())
    try:
        at = datetime.fromisoformat(cleaned)
    except ValueError:
        raise EspError(400, f"{where}.{name}", f"{raw!r} is not an ISO 8601 time") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def unix_time(data: Mapping[str, Any], name: str, where: str) -> datetime:
    """A Unix time in seconds (an integer or a float, or either as a string)."""
    return _seconds(data.get(name), f"{where}.{name}")


def _seconds(raw: Any, where: str) -> datetime:
    try:
        seconds = float(raw) if isinstance(raw, int | float | str) else float("nan")
        at = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        raise EspError(400, where, f"{raw!r} is not a Unix time") from None
    return at


MAX_AGE: Final = timedelta(minutes=15)
"""How far a signed timestamp may be from now, either way (SendGrid's and Mailgun's): a
captured request is refused after it."""


def fresh(value: Any, where: str, now: datetime, status: int) -> None:
    """Raises `EspError` (`status`; 400 for no time at all) unless the signed Unix time
    `value` is within `MAX_AGE` of `now`."""
    if abs(now - _seconds(value, where)) > MAX_AGE:
        raise EspError(status, where, f"the timestamp {value} is more than {MAX_AGE} away")


def delivery_id(value: Any) -> int | None:
    """Our delivery id from an echoed custom argument (a number or its digits), else None."""
    if isinstance(value, list) and len(value) == 1:  # SES tags are lists of values
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**62:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()) and int(value) > 0:
        return int(value)
    return None


def message_id(value: Any) -> str | None:
    """A Message-ID in its ``<local@domain>`` form (some providers drop the brackets)."""
    if not isinstance(value, str) or "@" not in value:
        return None
    bare = value.strip().removeprefix("<").removesuffix(">").strip()
    return f"<{bare}>" if bare and len(bare) < 250 else None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )
