"""The console's views: each builds a plain context for its template, or answers a form.

Each view runs in one transaction (`nurture.console.app.Console.route`) and
asks `nurture.console.permissions` before it shows or changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from nurture.console import charts, invites, segments, users
from nurture.console import permissions as can
from nurture.console.cookies import PATH, new_token, safe_next
from nurture.console.deliveries import deliveries
from nurture.console.inbox import inbox, lead_name
from nurture.console.message import show, touches
from nurture.funnel_months import BY
from nurture.handoff.answers import FEEDBACK, AnswerError, NotFound, accept, give_back, report_stage
from nurture.handoff.notes import MAX_NOTE, NoteError, add_note
from nurture.handoff.route import members
from nurture.handoff.story import story
from nurture.handoff.timeline import Cursor
from nurture.models import ROLES, Account, Lead, User
from nurture.reports import funnel
from nurture.runtime.operations import ReleaseError, release
from nurture.store.definitions import active_routing

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nurture.console.app import Context

INBOX: Final = f"{PATH}/inbox"
MAX_REASON: Final = 500
"""Characters a return or lost reason may have."""
MAX_FIELD: Final = 320
TIMELINE: Final = 100
"""Timeline entries a page of the lead page shows, newest first; "Show older" pages back."""
MAX_ID: Final = 2**31 - 1
"""The largest id or version a row can hold (INTEGER on SQLite and PostgreSQL): a URL's
number past it names nothing, and is answered so before it reaches the database (where it
would not fit)."""


View = Callable[["Context", "Session"], Response]


class Problem(Exception):
    """Raised by a form's view when it cannot be done: the form's page again, with why."""

    def __init__(self, status: int, words: str, again: View) -> None:
        super().__init__(words)
        self.status, self.words, self.again = status, words, again


class Missing(Exception):
    """Raised when a lead or user is not there, or not for this user's eyes: the 404 page."""


def current_user(session: Session, data: dict[str, Any]) -> can.Who | None:
    """The signed-in user of the session, if they still exist."""
    user_id = data.get("user")
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    return None if user is None else can.Who.of(user)


# ---------------------------------------------------------------- signing in


def home(ctx: Context, session: Session) -> Response:
    return RedirectResponse(INBOX, 303)


def sign_in_page(ctx: Context, session: Session) -> Response:
    target = safe_next(ctx.request.query_params.get("next"), INBOX)
    if ctx.user is not None:
        return RedirectResponse(target, 303)
    return ctx.render("sign_in.html", next=target, email="")


def sign_in(ctx: Context, session: Session) -> Response:
    target = safe_next(ctx.form.get("next"), INBOX)
    email = ctx.form.get("email", "")[:MAX_FIELD]
    now = ctx.console.clock.now()
    try:
        user = users.sign_in(session, email, ctx.form.get("password", ""), now, ctx.console.lockout)
    except users.SignInRefused as e:
        ctx.problem = str(e)
        return ctx.render("sign_in.html", 401, next=target, email=email)
    ctx.session.clear()  # a new session: a new CSRF token
    ctx.session.update(user=user.id, csrf=new_token())
    return RedirectResponse(target, 303)


def sign_out(ctx: Context, session: Session) -> Response:
    ctx.session["end"] = True
    return RedirectResponse(f"{PATH}/sign-in", 303)


# ---------------------------------------------------------------- the inbox and a lead


def inbox_page(ctx: Context, session: Session) -> Response:
    user = _user(ctx)
    found = inbox(session, user, can.sees_all(user), ctx.console.clock.now())
    return ctx.render("inbox.html", inbox=found, reasons=_reasons(session), stages=FEEDBACK)


def lead_page(ctx: Context, session: Session) -> Response:
    user = _user(ctx)
    lead = _lead(ctx, session)
    try:
        before = _cursor(ctx.request.query_params.get("before"))
    except ValueError as e:
        words = f"The address's ?before= {e}: the lead's newest entries are without it."
        return ctx.render("error.html", 400, title="Not a place in the timeline", words=words)
    now = ctx.console.clock.now()
    data = story(session, lead, now, limit=TIMELINE, before=before, kept=ctx.console.explanations)
    account = session.get(Account, lead.account_id) if lead.account_id is not None else None
    latest = data["mqls"][-1] if data["mqls"] else None
    waiting = latest is not None and latest["returned_at"] is None
    answers = can.may_answer(user, lead) and waiting
    return ctx.render(
        "lead.html",
        timeline=data["timeline"][::-1],
        older=data["older"],
        paged=before is not None,
        lead=lead,
        name=lead_name(lead),
        story=data,
        account=account,
        mql=latest if waiting else None,
        answers=answers,
        notes=can.may_note(user, lead),
        note=ctx.form.get("text", "") if ctx.problem else "",
        max_note=MAX_NOTE,
        reasons=_reasons(session) if answers else [],  # the return form's, for its owner
        stages=FEEDBACK,
        touches=touches(session, lead),
    )


def _cursor(text: str | None) -> Cursor | None:
    """The ``?before=`` place in the timeline, if any; `ValueError` saying why it is none."""
    return None if text is None else Cursor.parse(text)


def touch_page(ctx: Context, session: Session) -> Response:
    """One touch of the lead: its message rendered again, without tracking."""
    lead = _lead(ctx, session)
    shown = show(session, ctx.console.renderer, lead, ctx.request.path_params["touch"])
    if shown is None:
        raise Missing("This lead has no such touch.")
    return ctx.render("touch.html", lead=lead, name=lead_name(lead), shown=shown)


def answer(ctx: Context, session: Session) -> Response:
    """Accept, return or report a stage for a lead the user owns."""
    user = _user(ctx)
    lead = _lead(ctx, session)
    action = str(ctx.request.path_params["action"])
    back: View = lead_page if ctx.form.get("back") == "lead" else inbox_page
    if action not in ("accept", "return", "stage"):
        raise Missing("There is no such answer.")
    can.require(can.may_answer(user, lead), "Only the lead's owner answers for it.")
    now = ctx.console.clock.now()
    try:
        if action == "accept":
            done = accept(session, lead, user.email, now)
        elif action == "return":
            done = give_back(session, lead, user.email, _reason(ctx, back), now)
            back = inbox_page  # it is no longer theirs to look at
        else:
            stage = ctx.form.get("stage", "")
            amount = ctx.form.get("amount", "").strip() or None
            reason = ctx.form.get("reason", "").strip()[:MAX_REASON] or None
            done = report_stage(session, lead, stage, user.email, now, amount=amount, reason=reason)
            back = inbox_page if stage == "lost" else back
    except NotFound as e:
        raise _problem(404, str(e), back) from e
    except AnswerError as e:
        raise _problem(409, _words(str(e)), back) from e
    target = f"{PATH}/leads/{lead.id}" if back is lead_page else INBOX
    return ctx.redirect(target, done.said[:1].upper() + done.said[1:] + ".")


def note(ctx: Context, session: Session) -> Response:
    """Write the signed-in user's note on a lead they may write on (`add_note`'s limits)."""
    user = _user(ctx)
    lead = _lead(ctx, session)
    can.require(can.may_note(user, lead), "Notes are written by the lead's owner and marketers.")
    text = ctx.form.get("text", "")
    try:
        add_note(session, lead, user.email, text, ctx.console.clock.now(), signed_in=True)
    except NoteError as e:
        raise _problem(400, _words(str(e)), lead_page) from e
    return ctx.redirect(f"{PATH}/leads/{lead.id}", "Note added.")


# ---------------------------------------------------------------- the funnel


def funnel_page(ctx: Context, session: Session) -> Response:
    """``nurture report funnel`` as a page: stage bars (inline SVG) and the handoff tables."""
    can.require(can.sees_all(_user(ctx)), "The funnel is for marketers, analysts and admins.")
    since = _since(ctx)
    by = ctx.request.query_params.get("by", "")
    if by not in ("", *BY):
        raise _problem(400, f"By {by!r}: choose source, campaign or owner.", _no_funnel)
    data = funnel(session, ctx.console.clock.now(), since)
    top = max((s.reached for s in data.stages), default=0) or 1
    bars = [(s, round(100 * s.reached / top, 1)) for s in data.stages]
    query = f"?since={since.date().isoformat()}" if since else ""
    series = [("All leads", data.months.all)] if not by else list(data.months.by[by].items())
    return ctx.render(
        "funnel.html",
        data=data,
        bars=bars,
        since=since,
        query=query,
        by=by,
        choices=BY,
        series=[(name, rows, charts.stage_bars(rows)) for name, rows in series],
        velocity=charts.rate_bars(data.months.all),
        colours=charts.COLOURS,
        height=charts.HEIGHT,
        kinds=sorted({k for _, rows in series for m in rows for k in m.costs}),
    )


def funnel_json(ctx: Context, session: Session) -> Response:
    """The same numbers as ``nurture report funnel --json``."""
    can.require(can.sees_all(_user(ctx)), "The funnel is for marketers, analysts and admins.")
    data = funnel(session, ctx.console.clock.now(), _since(ctx))
    return JSONResponse(data.to_json(), headers={"Cache-Control": "no-store"})


def _since(ctx: Context) -> datetime | None:
    text = ctx.request.query_params.get("since", "").strip()
    if not text:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    except ValueError:
        raise _problem(
            400, f"Since {text!r} is not a date such as 2026-01-31.", _no_funnel
        ) from None


def _no_funnel(ctx: Context, session: Session) -> Response:
    return ctx.render("error.html", title="Not a date", words=ctx.problem or "")


# ---------------------------------------------------------------- segments


def segments_page(ctx: Context, session: Session) -> Response:
    """A ``--where`` expression or a deployed segment: its count and first rows, or errors."""
    can.require(can.sees_all(_user(ctx)), "Segments are for marketers, analysts and admins.")
    where = ctx.request.query_params.get("where", "")
    segment = ctx.request.query_params.get("segment", "")
    values: dict[str, Any] = {"where": where, "segment": segment, "found": None}
    values.update(names=segments.deployed_names(session), diagnostics=(), query="")
    status = 200
    if where.strip() or segment:
        try:
            cond, warnings = segments.condition(session, where, segment)
            values["found"] = segments.counted(session, cond, warnings, ctx.console.clock.now())
            values["query"] = urlencode({"where": where} if where.strip() else {"segment": segment})
        except segments.Unusable as e:
            ctx.problem = e.words[:1].upper() + e.words[1:] + "."
            values["diagnostics"], status = e.diagnostics, 400
    return ctx.render("segments.html", status, **values)


def segments_csv(ctx: Context, session: Session) -> Response:
    """The segment's leads as CSV, streamed (``nurture segment export``)."""
    can.require(can.sees_all(_user(ctx)), "Segments are for marketers, analysts and admins.")
    where = ctx.request.query_params.get("where", "")
    segment = ctx.request.query_params.get("segment", "")
    try:
        cond, _warnings = segments.condition(session, where, segment)
    except segments.Unusable as e:
        raise _problem(400, e.words[:1].upper() + e.words[1:] + ".", segments_page) from e
    lines = segments.csv_lines(ctx.console.sessions, cond, ctx.console.clock.now())
    name = (segment or "segment").encode("ascii", "replace").decode().replace("?", "_")
    headers = {
        "Content-Disposition": f'attachment; filename="{quote(name, safe="")}.csv"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=headers)


# ---------------------------------------------------------------- deliveries


def deliveries_page(ctx: Context, session: Session) -> Response:
    user = _user(ctx)
    can.require(can.may_see_deliveries(user), "Deliveries are for marketers, analysts and admins.")
    found = deliveries(session)
    return ctx.render("deliveries.html", found=found, release=can.may_release(user))


def release_delivery(ctx: Context, session: Session) -> Response:
    user = _user(ctx)
    can.require(can.may_release(user), "Only admins release deliveries.")
    delivery_id = int(ctx.request.path_params["delivery"])
    delivered = ctx.form.get("delivered") == "yes"
    reason = ctx.form.get("reason", "").strip()[:MAX_REASON]
    now = ctx.console.clock.now()
    try:
        release(session, [delivery_id], now, by=user.email, reason=reason, delivered=delivered)
    except ReleaseError as e:
        raise _problem(409, str(e)[:1].upper() + str(e)[1:] + ".", deliveries_page) from e
    what = "marked delivered" if delivered else "released for resending"
    return ctx.redirect(f"{PATH}/deliveries", f"Delivery {delivery_id} {what}.")


# ---------------------------------------------------------------- users (admins)


def users_page(ctx: Context, session: Session) -> Response:
    can.require(can.may_manage_users(_user(ctx)), "Only admins manage users.")
    known = members(active_routing(session))
    found = users.all_users(session)
    now, age = ctx.console.clock.now(), ctx.console.invite_age
    emails = {u.email for u in found}
    return ctx.render(
        "users.html",
        users=found,
        roles=ROLES,
        members=known,
        invites={u.id: invites.state(u, now, age) for u in found},
        uninvited=[m for m in known if m not in emails],
        invite_days=invites.days(age),
    )


def add_user(ctx: Context, session: Session) -> Response:
    can.require(can.may_manage_users(_user(ctx)), "Only admins manage users.")
    role = ctx.form.get("role") or None
    try:
        user = users.add_user(
            session,
            ctx.form.get("email", "")[:MAX_FIELD],
            role,
            ctx.form.get("password", ""),
            active_routing(session),
        )
    except users.UserError as e:
        raise _problem(400, str(e), users_page) from e
    return ctx.redirect(f"{PATH}/users", f"Added {user.email} ({user.role}).")


def remove_user(ctx: Context, session: Session) -> Response:
    me = _user(ctx)
    can.require(can.may_manage_users(me), "Only admins manage users.")
    user = session.get(User, ctx.request.path_params["user"])
    if user is None:
        raise Missing("There is no such user.")
    if user.id == me.id:
        raise _problem(400, "You cannot remove yourself; ask another admin.", users_page)
    users.remove_user(session, user.email)
    return ctx.redirect(f"{PATH}/users", f"Removed {user.email}.")


# ---------------------------------------------------------------- helpers


def _user(ctx: Context) -> can.Who:
    assert ctx.user is not None  # the route let only signed-in users in
    return ctx.user


def _lead(ctx: Context, session: Session) -> Lead:
    lead = session.get(Lead, ctx.request.path_params["lead"])
    if lead is None or not can.may_see(_user(ctx), lead):
        raise Missing("There is no such lead, or it is not yours.")
    return lead


def _reasons(session: Session) -> list[str]:
    return [str(r) for r in (active_routing(session) or {}).get("return_reasons") or ()]


def _reason(ctx: Context, back: View) -> str:
    chosen = ctx.form.get("reason", "").strip()
    other = ctx.form.get("other", "").strip()
    reason = f"{chosen}: {other}" if chosen not in ("", "other") and other else other or chosen
    if chosen == "other" and not other:
        reason = ""
    if not reason:
        raise _problem(400, "Returning a lead needs a reason: choose one or say why.", back)
    if len(reason) > MAX_REASON:
        raise _problem(400, f"Keep the reason under {MAX_REASON} characters.", back)
    return reason


def _words(said: str) -> str:
    """An answer's refusal in the console's words (the command line's option names dropped)."""
    for option in (" (--reason)", " (--by)"):
        said = said.replace(option, "")
    said = said.replace("--amount", "the amount")
    return said[:1].upper() + said[1:] + "."


def _problem(status: int, words: str, again: View) -> Problem:
    return Problem(status, words, again)
