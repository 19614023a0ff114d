"""The console's invitation pages: admins invite, the invited choose their password.

    POST /console/users/invite      invite an address (``email``, ``role``), or every
                                    routing team member without a user (``routing=yes``)
    GET  /console/welcome/<token>   the invitation's page: choose a password
    POST /console/welcome           set it (``token``, ``password``, ``again``), sign in,
                                    and go to the inbox

A forged, expired, used or replaced link is a page saying so (400 or 410)
and changes nothing. See `nurture.console.invites` for the rules.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Final

from starlette.responses import Response

from nurture.console import invites
from nurture.console import permissions as can
from nurture.console.cookies import PATH, new_token
from nurture.console.users import MIN_PASSWORD, UserError
from nurture.console.views import INBOX, MAX_FIELD, Problem, users_page
from nurture.store.definitions import active_routing

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nurture.console.app import Context

MAX_TOKEN: Final = 400
"""Characters an invitation token may have (a genuine one has about 80)."""
MAX_SAID: Final = 5
"""Addresses an invitation's flash line names one by one; more are counted."""
AGAIN: Final = "invite again once email works"


def invite_users(ctx: Context, session: Session) -> Response:
    """Invite one address, or the routing's members without a user; then email the links."""
    me = ctx.user
    assert me is not None
    can.require(can.may_manage_users(me), "Only admins manage users.")
    mailer = ctx.console.mailer
    if mailer is None:
        words = "This console cannot send email: invite with `nurture users invite EMAIL`."
        raise Problem(503, words, users_page)
    now = ctx.console.clock.now()
    routing = active_routing(session)
    everyone = ctx.form.get("routing") == "yes"
    role = None if everyone else ctx.form.get("role") or None
    try:
        emails = (
            invites.routing_invitees(session, routing)
            if everyone
            else [ctx.form.get("email", "")[:MAX_FIELD]]
        )
        # committed before the email goes out, so no link names a nonce nobody stored
        with ctx.console.sessions() as own, own.begin():
            done = invites.invite(own, emails, role, routing, now, again=not everyone)
    except UserError as e:
        words = str(e).replace("give --role", "choose a role")  # the form's words
        raise Problem(400, _sentence(words), users_page) from e
    invites.send(mailer, ctx.console.signer, done, now)
    return ctx.redirect(f"{PATH}/users", said(done))


def welcome_page(ctx: Context, session: Session) -> Response:
    """The invitation's form, or why its link does not work."""
    token = str(ctx.request.path_params["token"])
    return _welcome_form(ctx, session, token, 200)


def welcome(ctx: Context, session: Session) -> Response:
    """Set the invited user's password, sign them in and show their inbox."""
    token = ctx.form.get("token", "")
    try:
        user = invites.accept(
            session,
            ctx.console.signer,
            token[:MAX_TOKEN],
            ctx.form.get("password", ""),
            ctx.form.get("again", ""),
            ctx.console.clock.now(),
            ctx.console.invite_age,
        )
    except invites.InviteRefused as e:
        return _refused(ctx, e)
    except UserError as e:
        raise Problem(400, _sentence(str(e)), _welcome_again) from e
    ctx.session.clear()  # a new session: a new CSRF token
    ctx.session.update(user=user.id, csrf=new_token())
    return ctx.redirect(INBOX, f"Welcome, {user.email}: your password is set.")


def said(done: list[invites.Invited]) -> str:
    """What an invitation did: a sentence an address, or counts when there are many (the
    line travels in the session cookie, which browsers cap at 4 KB)."""
    unsent = [one for one in done if one.nonce is not None and one.sent != "sent"]
    if len(done) > MAX_SAID:
        counts = Counter(one.outcome for one in done)
        line = "; ".join(f"{n} {outcome}" for outcome, n in counts.items()) + "."
        if unsent:
            shown = ", ".join(one.email for one in unsent[:3])
            more = f" and {len(unsent) - 3} more" if len(unsent) > 3 else ""
            line += f" Emails not sent to {shown}{more} ({unsent[0].sent[:200]}): {AGAIN}."
        return line
    lines: list[str] = []
    for one in done:
        if one.nonce is None:
            lines.append(f"{one.email}: {one.outcome}, nothing sent.")
        elif one.sent == "sent":
            lines.append(f"{one.outcome.capitalize()} {one.email} ({one.role}): email sent.")
        else:
            lines.append(
                f"{one.outcome.capitalize()} {one.email} ({one.role}), but the email was not "
                f"sent ({one.sent[:200]}): {AGAIN}."
            )
    return " ".join(lines) or "Nobody to invite."


def _welcome_again(ctx: Context, session: Session) -> Response:
    return _welcome_form(ctx, session, ctx.form.get("token", ""), 400)


def _welcome_form(ctx: Context, session: Session, token: str, status: int) -> Response:
    try:
        if len(token) > MAX_TOKEN:
            raise invites.InviteRefused(400, "This is not a link nurture made: check the address.")
        user = invites.invited_user(session, ctx.console.signer, token, ctx.console.invite_age)
    except invites.InviteRefused as e:
        return _refused(ctx, e)
    values = {"token": token, "email": user.email, "role": user.role}
    return ctx.render("welcome.html", status, min_password=MIN_PASSWORD, **values)


def _refused(ctx: Context, e: invites.InviteRefused) -> Response:
    return ctx.render("error.html", e.status, title="This link does not work", words=str(e))


def _sentence(words: str) -> str:
    return words[:1].upper() + words[1:] + "."
