"""Who may do what in the console: the one place every view asks.

    admin      everything: manages users, releases unknown deliveries
    marketer   every lead, MQL and delivery, read-only
    analyst    every lead, MQL and delivery, read-only
    sales      the leads they own, and answers for them

Campaigns are seen by everyone but sales; their dry run ("simulate") is run
by marketers and admins.

Notes on a lead are written by its owner, marketers and admins (analysts read).
Answering (accept, return, report a stage) is for the lead's owner alone,
whatever their role, as `nurture.handoff.answers` insists too. A lead a user
may not see is answered as if it did not exist (404), so lead ids cannot be
probed; a page a role may not open is the forbidden page (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from nurture.models import Lead, User

SEE_ALL: Final = ("admin", "marketer", "analyst")
"""Roles that see every lead."""
NOTE_ANY: Final = ("admin", "marketer")
"""Roles that may write a note on any lead (sales: on their own)."""
SIMULATE: Final = ("admin", "marketer")
"""Roles that may run a campaign's dry run from the console."""


@dataclass(frozen=True, slots=True)
class Who:
    """The signed-in user as the views and pages see them (read at each request)."""

    id: int
    email: str
    role: str

    @classmethod
    def of(cls, user: User) -> Who:
        return cls(user.id, user.email, user.role)


class Forbidden(Exception):
    """Raised when the signed-in user may not open a page: rendered as the 403 page."""


def sees_all(user: Who) -> bool:
    """True when the user sees every lead, not only their own."""
    return user.role in SEE_ALL


def may_see(user: Who, lead: Lead) -> bool:
    """True when the user may open the lead's page."""
    return sees_all(user) or _owns(user, lead)


def may_answer(user: Who, lead: Lead) -> bool:
    """True when the user may accept, return or move the lead: they own it."""
    return _owns(user, lead)


def may_note(user: Who, lead: Lead) -> bool:
    """True when the user may write a note on the lead: its owner, a marketer or an admin."""
    return user.role in NOTE_ANY or _owns(user, lead)


def may_see_deliveries(user: Who) -> bool:
    """Unknown and failed touches: for everyone but sales."""
    return sees_all(user)


def may_release(user: Who) -> bool:
    """Releasing an unknown touch for resending (or confirming it delivered): admins."""
    return user.role == "admin"


def may_simulate(user: Who) -> bool:
    """Running a dry run of a campaign from its page (it costs the server CPU): marketers
    and admins."""
    return user.role in SIMULATE


def may_manage_users(user: Who) -> bool:
    return user.role == "admin"


def require(allowed: bool, what: str) -> None:
    """`Forbidden` naming `what` when not `allowed`."""
    if not allowed:
        raise Forbidden(what)


def _owns(user: Who, lead: Lead) -> bool:
    return lead.owner is not None and lead.owner.strip().lower() == user.email
