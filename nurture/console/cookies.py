"""The console's session: a signed cookie, its CSRF token, and where sign-in may send you.

The cookie holds ``{"user": id, "csrf": token}`` signed with the service's
secret keys (itsdangerous, its own salt, so no tracking token can pass for a
session and no session for a token), newest key last. It is ``HttpOnly``,
``SameSite=Lax``, scoped to ``/console``, ``Secure`` when the request came
over https, and expires `MAX_AGE` after sign-in. Every form carries the
session's CSRF token (a synchronizer token); a POST whose token does not
match is refused (403) before anything else is read. The user is looked up
at every request, so a removed user is signed out at once.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE: Final = "nurture_console"
PATH: Final = "/console"
MAX_AGE: Final = 12 * 3600
"""Seconds a sign-in lasts: a working day."""
SALT: Final = "nurture.console.session"


class Cookies:
    """Reads and writes the session cookie with the service's keys (newest last)."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        self._serializer = URLSafeTimedSerializer(list(secret_keys), salt=SALT)

    def read(self, request: Request) -> dict[str, Any]:
        """The session (empty when there is none, or it is forged or expired)."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return {}
        try:
            data = self._serializer.loads(raw, max_age=MAX_AGE)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, request: Request, response: Response, data: dict[str, Any]) -> None:
        """Set the session cookie to `data`."""
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(data),
            max_age=MAX_AGE,
            path=PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )

    def clear(self, request: Request, response: Response) -> None:
        """End the session: the cookie is deleted."""
        response.delete_cookie(
            COOKIE,
            path=PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )


def new_token() -> str:
    """A fresh CSRF token."""
    return secrets.token_urlsafe(32)


def token_matches(session: dict[str, Any], given: str) -> bool:
    """True when the form's CSRF token is the session's."""
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def safe_next(target: str | None, default: str) -> str:
    """`target` when it is one of the console's own paths; `default` otherwise.

    Only a path under ``/console/`` with no scheme, host or backslash: ``//evil``,
    ``/\\evil``, ``https://evil``, ``/console/../x`` and the like all give `default`.
    """
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PATH + "/"):
        return default
    if "//" in parts.path or any(seg in (".", "..") for seg in parts.path.split("/")):
        return default
    return target
