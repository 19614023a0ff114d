"""Invitations: an admin invites someone by email; the link lets them choose their password.

An invitation makes the user (a routing team member is ``sales`` unless a
role is given) with no usable password, stores a fresh nonce on their row and
emails them ``{base_url}/console/welcome/<token>``: a `TokenSigner` invite
token (the service's keys, its own salt) naming the user and the nonce. The
link works once (choosing the password clears the nonce), until it expires
(``NURTURE_CONSOLE_INVITE_SECONDS``, 7 days), and only while it is the
newest invitation (inviting again replaces the nonce). A user who has a
password is not invited again: they have an account.

The email goes out through the configured email channel (SMTP, or the
``outbox/`` folder in the embedded default), after the invitation is
committed, so a link never names a nonce the database does not hold; a
failed send leaves the invitation pending, to be sent again.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels import OutboundMessage, Receipt
from nurture.console.users import NO_PASSWORD, UserError, is_email, set_password
from nurture.engine.state import utc
from nurture.handoff.route import members
from nurture.models import ROLES, User
from nurture.tokens import INVITE_MAX_AGE, BadToken, ExpiredToken, TokenSigner

WELCOME: Final = "/console/welcome/"
Send = Callable[[Sequence[OutboundMessage]], Sequence[Receipt | None]]
"""Sends emails through the configured email channel: a receipt each (None: not sent)."""

_MAIL: Final = Environment(
    loader=PackageLoader("nurture.console", "templates"),
    autoescape=select_autoescape(["html"], default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Mailer:
    """Where invitations' links point and how their emails go out."""

    base_url: str
    """The service's public address (``NURTURE_BASE_URL``): the links' prefix."""
    domain: str
    """The sender's domain: the right-hand side of each invitation's Message-ID."""
    send: Send
    """The configured email channel."""
    max_age: timedelta = INVITE_MAX_AGE
    """How long a link works."""


@dataclass(slots=True)
class Invited:
    """One address of an invitation and what became of it."""

    email: str
    role: str
    outcome: str
    """``invited``, ``invited again`` (a new link; the old one no longer works),
    ``invite pending`` (not sent again) or ``has an account`` (nothing sent)."""
    user_id: int
    nonce: str | None = None
    """The new link's nonce, when one is to be sent."""
    name: str | None = None
    """The routing's name for the member, to greet them."""
    sent: str = ""
    """After sending: ``sent``, or why the email did not go out."""


class InviteRefused(Exception):
    """Raised when an invitation's link cannot be used: forged, expired, used or replaced."""

    def __init__(self, status: int, words: str) -> None:
        super().__init__(words)
        self.status = status


def invite(
    session: Session,
    emails: Iterable[str],
    role: str | None,
    routing: Mapping[str, Any] | None,
    now: datetime,
    *,
    again: bool = True,
) -> list[Invited]:
    """Invite each address; `UserError` (nothing changed) for a bad address or role.

    A routing member without `role` becomes ``sales``; anyone else needs one.
    A user without a password yet gets a new link when `again`, else is left
    ``invite pending``; a user with a password is left alone.
    """
    team = members(routing)
    wanted = list(dict.fromkeys(e.strip().lower() for e in emails))
    for email in wanted:
        _check(email, role, email in team)
    known = {u.email: u for u in session.scalars(select(User).where(User.email.in_(wanted)))}
    done: list[Invited] = []
    for email in wanted:
        member = team.get(email)
        name = (member and member.name) or None
        user = known.get(email)
        if user is not None and user.password_hash != NO_PASSWORD:
            done.append(Invited(email, user.role, "has an account", user.id))
            continue
        if user is not None and not again:
            done.append(Invited(email, user.role, "invite pending", user.id))
            continue
        outcome = "invited again" if user is not None else "invited"
        if user is None:
            user = User(email=email, role=role or "sales", password_hash=NO_PASSWORD)
            session.add(user)
        user.invite_nonce, user.invited_at = secrets.token_urlsafe(16), utc(now)
        session.flush()
        done.append(Invited(email, user.role, outcome, user.id, user.invite_nonce, name))
    return done


def routing_invitees(session: Session, routing: Mapping[str, Any] | None) -> list[str]:
    """Every team member of the routing, in its order (`UserError` when none is deployed)."""
    team = members(routing)
    if not team:
        raise UserError("no routing with team members is deployed: name the addresses to invite")
    return list(team)


def send(mailer: Mailer, signer: TokenSigner, invited: Sequence[Invited], now: datetime) -> None:
    """Email each new link of `invited`; each one's `sent` says what happened."""
    outgoing = [i for i in invited if i.nonce is not None]
    messages = [message(mailer, signer, i, now) for i in outgoing]
    receipts = list(mailer.send(messages))
    for one, receipt in zip(outgoing, receipts, strict=True):
        said = "not sent" if receipt is None else "sent" if receipt.ok else receipt.detail
        one.sent = said


def message(mailer: Mailer, signer: TokenSigner, one: Invited, now: datetime) -> OutboundMessage:
    """The invitation email of `one` (who has a nonce)."""
    assert one.nonce is not None
    link = link_of(mailer.base_url, signer, one.user_id, one.nonce)
    values = {
        "name": one.name,
        "email": one.email,
        "role": one.role,
        "link": link,
        "until": (utc(now) + mailer.max_age).strftime("%Y-%m-%d %H:%M UTC"),
        "console": mailer.base_url.rstrip("/") + "/console/",
    }
    return OutboundMessage(
        "email",
        one.email,
        f"<invite-{one.user_id}-{one.nonce[:12]}@{mailer.domain}>",
        "You are invited to the nurture console",
        _MAIL.get_template("mail/invite.html").render(values),
        _MAIL.get_template("mail/invite.txt").render(values),
        headers={"X-Nurture-Invite": str(one.user_id)},
    )


def link_of(base_url: str, signer: TokenSigner, user_id: int, nonce: str) -> str:
    return base_url.rstrip("/") + WELCOME + signer.invite_token(user_id, nonce)


def invited_user(session: Session, signer: TokenSigner, token: str, max_age: timedelta) -> User:
    """The user whose pending invitation `token` is; `InviteRefused` saying why not."""
    try:
        user_id, nonce = signer.read_invite(token, max_age)
    except ExpiredToken as e:
        raise InviteRefused(
            410, "This invitation has expired: ask an admin to invite you again."
        ) from e
    except BadToken as e:
        raise InviteRefused(400, "This is not a link nurture made: check the address.") from e
    user = session.get(User, user_id)
    if (
        user is None
        or user.invite_nonce is None
        or not hmac.compare_digest(user.invite_nonce.encode(), nonce.encode())
    ):
        raise InviteRefused(
            410,
            "This invitation has been used, or replaced by a newer one: sign in, "
            "or use the link in the newest invitation.",
        )
    return user


def accept(
    session: Session,
    signer: TokenSigner,
    token: str,
    password: str,
    again: str,
    now: datetime,
    max_age: timedelta,
) -> User:
    """Set the invited user's password and close the invitation (`UserError`: bad password)."""
    user = invited_user(session, signer, token, max_age)
    if password != again:
        raise UserError("the two passwords differ")
    set_password(user, password)
    user.invite_nonce, user.signed_in_at = None, utc(now)
    return user


def state(user: User, now: datetime, max_age: timedelta) -> str:
    """``invite pending`` or ``invite expired`` for a user still to choose a password."""
    if user.invite_nonce is None or user.invited_at is None:
        return ""
    expired = utc(user.invited_at) + max_age <= utc(now)
    return "invite expired" if expired else "invite pending"


def days(age: timedelta) -> str:
    """`age` in words: ``7 days``, ``12 hours``."""
    hours = int(age.total_seconds() // 3600)
    if hours >= 24 and hours % 24 == 0:
        return f"{hours // 24} day{'s' if hours != 24 else ''}"
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours else "under an hour"


def _check(email: str, role: str | None, member: bool) -> None:
    if not is_email(email):
        raise UserError(f"{email!r} is not an email address")
    if role is None and not member:
        raise UserError(f"give --role ({', '.join(ROLES)}): {email} is no routing member")
    if role is not None and role not in ROLES:
        raise UserError(f"no role {role!r}; roles: {', '.join(ROLES)}")
