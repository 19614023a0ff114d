"""The console's users: adding, listing and removing them, and signing in with a lock-out.

Passwords are hashed with argon2id (argon2-cffi's `PasswordHasher`, its
recommended parameters); a hash made with older parameters is upgraded at
the next good sign-in. A sign-in with an unknown address still spends the
time of one verification, so response times do not tell which addresses
exist. After `Lockout.attempts` wrong passwords in a row the user is locked
for `Lockout.seconds`: even the right password is refused until then.

A ``sales`` user is linked to the routing by address: the leads they see are
those whose owner is their address, which is how routing names its team
members. Adding a member's address without a role makes a sales user.
An invited user has no password (`NO_PASSWORD`) until they choose one
through their invitation's link (`nurture.console.invites`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.engine.state import utc
from nurture.handoff.route import members
from nurture.models import ROLES, User

MIN_PASSWORD: Final = 10
"""Characters a password needs at least."""
MAX_PASSWORD: Final = 1000
"""Characters a password may have at most (argon2 takes any length; a form should not)."""
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HASHER: Final = PasswordHasher()
_DUMMY: Final = _HASHER.hash("not anybody's password")
"""Verified against when the address is unknown, so that costs as long as a wrong password."""
NO_PASSWORD: Final = "!"
"""The hash of an invited user who has not chosen a password: no password verifies."""


class UserError(ValueError):
    """Raised when a user cannot be added or removed, in words for whoever asked."""


class SignInRefused(Exception):
    """Raised when a sign-in fails: a wrong address or password, or a locked user."""


@dataclass(frozen=True, slots=True)
class Lockout:
    """When repeated wrong passwords lock a user, and for how long."""

    attempts: int = 5
    """Wrong passwords in a row that lock the user."""
    seconds: float = 900.0
    """How long the lock lasts."""


def add_user(
    session: Session,
    email: str,
    role: str | None,
    password: str,
    routing: Mapping[str, Any] | None,
) -> User:
    """A new user; `role` None makes a routing member a sales user and is refused otherwise."""
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise UserError(f"{email!r} is not an email address")
    if role is None:
        if email not in members(routing):
            raise UserError(f"give --role ({', '.join(ROLES)}): {email} is no routing member")
        role = "sales"
    if role not in ROLES:
        raise UserError(f"no role {role!r}; roles: {', '.join(ROLES)}")
    check_password(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError(f"{email} is a user already (remove them first to start over)")
    user = User(email=email, role=role, password_hash=_HASHER.hash(password))
    session.add(user)
    session.flush()
    return user


def is_email(text: str) -> bool:
    """True when `text` looks like an email address (one ``@``, a dot in the domain)."""
    return _EMAIL.fullmatch(text) is not None


def check_password(password: str) -> None:
    """`UserError` for a password too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"a password may have at most {MAX_PASSWORD} characters")


def set_password(user: User, password: str) -> None:
    """Give `user` this password (`UserError` when it breaks the rules); unlocks them."""
    check_password(password)
    user.password_hash = _HASHER.hash(password)
    user.failed_attempts, user.locked_until = 0, None


def remove_user(session: Session, email: str) -> User:
    """Remove the user; their signed-in sessions end at their next request."""
    user = find_user(session, email)
    if user is None:
        raise UserError(f"no user {email.strip().lower()!r}")
    session.delete(user)
    session.flush()
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def all_users(session: Session) -> list[User]:
    """Every user, by role then address."""
    return list(session.scalars(select(User).order_by(User.role, User.email)))


def sign_in(session: Session, email: str, password: str, now: datetime, lockout: Lockout) -> User:
    """The user whose address and password these are; `SignInRefused` with why otherwise.

    A wrong password counts towards the lock-out; the caller commits either way.
    """
    now = utc(now)
    user = find_user(session, email) if len(password) <= MAX_PASSWORD else None
    if user is None or user.password_hash == NO_PASSWORD:
        _verify(_DUMMY, password)
        raise SignInRefused("Wrong email address or password.")
    if user.locked_until is not None and user.locked_until > now:
        raise SignInRefused(_locked(user.locked_until))
    if not _verify(user.password_hash, password):
        user.failed_attempts = (user.failed_attempts or 0) + 1
        if user.failed_attempts >= lockout.attempts:
            user.locked_until, user.failed_attempts = now + timedelta(seconds=lockout.seconds), 0
            raise SignInRefused(_locked(user.locked_until))
        raise SignInRefused("Wrong email address or password.")
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    user.failed_attempts, user.locked_until, user.signed_in_at = 0, None, now
    return user


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _locked(until: datetime) -> str:
    return (
        "Too many wrong passwords: this account is locked until "
        f"{until.strftime('%Y-%m-%d %H:%M')} UTC."
    )
