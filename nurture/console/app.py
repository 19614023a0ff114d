"""The console as a Starlette app, mounted at ``/console`` by the tracking service.

    GET  /console/                   to the inbox (or the sign-in page)
    GET  /console/sign-in?next=PATH  the sign-in form; POST signs in, then goes to PATH
                                     (only a path of the console; anything else: the inbox)
    POST /console/sign-out           ends the session
    GET  /console/inbox              open MQLs with their SLA clocks, accepted leads by stage
    GET  /console/leads/<id>[?before=PLACE]  the lead's 360 view, the newest timeline
                                     entries (before PLACE: "Show older" pages back)
    GET  /console/leads/<id>/touches/<delivery>  one touch's message, rendered again
    POST /console/leads/<id>/note    write a note (the owner, marketers, admins)
    POST /console/leads/<id>/accept  accept the MQL (the owner alone)
    POST /console/leads/<id>/return  return it to nurture with a reason (required)
    POST /console/leads/<id>/stage   report sql, opportunity, won (amount) or lost (reason)
    GET  /console/campaigns          deployed campaigns with their leads (not for sales)
    GET  /console/campaigns/<id>[?version=N]  one campaign: a version's flow picture
                                     (Graphviz) with live numbers, versions with their
                                     enrollments, touches and engagement per step, A/B arms
    GET  /console/campaigns/<id>/versions/<n>.svg  that picture, an image
    POST /console/campaigns/<id>/simulate[?version=N]  a dry run (leads, days, seed): the
                                     page with the projected picture and table (marketers,
                                     admins)
    GET  /console/funnel[?since=DATE]  the funnel and the handoff (not for sales); ``.json``:
                                     the same numbers as ``nurture report funnel --json``
    GET  /console/segments?where=EXPR|segment=NAME   a segment's count and first rows, or
                                     the expression's located errors (not for sales)
    GET  /console/segments.csv?...   its leads as CSV, streamed (``nurture segment export``)
    GET  /console/deliveries         unknown and failed touches (not for sales)
    POST /console/deliveries/<id>/release  resend an unknown touch, or confirm it delivered
                                     (admins; as ``nurture deliveries release``)
    GET  /console/users              the users (admins); POST adds one
    POST /console/users/<id>/remove  removes one (admins)
    POST /console/users/invite       invites by email (admins; `nurture.console.invite_views`)
    GET  /console/welcome/<token>    an invitation's page: choose a password; POST
                                     /console/welcome sets it and signs in

Every page needs a signed-in user (else: to the sign-in page, remembering
where you were going); every POST needs the session's CSRF token (else 403,
nothing read or changed). Who sees what is `nurture.console.permissions`.
A form that cannot be done shows its page again with the problem at the top
(400, or 409 when the lead moved on) and changes nothing; success redirects
(303) to the page the form was on, with a line saying what was done.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from nurture.console import campaign_views, cookies, invite_views, views
from nurture.console.campaigns import Pictures
from nurture.console.inbox import lead_name, time_left
from nurture.console.invites import Mailer
from nurture.console.permissions import Forbidden, Who
from nurture.console.users import Lockout
from nurture.engine.clock import Clock, SystemClock
from nurture.handoff.notes import MAX_NOTE
from nurture.handoff.reasons import SIZE, Explanations
from nurture.render import Renderer
from nurture.tokens import INVITE_MAX_AGE, TokenSigner
from nurture.tracking.bodies import MAX_FORM, Reject, read_body

logger = logging.getLogger("nurture.console")

PREFIX: Final = cookies.PATH
BODY_TIMEOUT: Final = 30.0
MAX_NOTE_FORM: Final = 9 * MAX_NOTE + 1024
"""A note's form: MAX_NOTE characters, each up to 9 bytes percent-encoded, and the token."""
View = Callable[["Context", Session], Response]


@dataclass
class Context:
    """One request as a view sees it: who, their session, the form, and the console."""

    request: Request
    console: Console
    session: dict[str, Any]
    user: Who | None = None
    form: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    """Why the form just sent could not be done (shown at the top of its page)."""

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """The page `template` with `values`, the user, the CSRF token and any flash line."""
        return self.console.render(self, template, status, **values)

    def redirect(self, path: str, flash: str | None = None) -> RedirectResponse:
        """303 to `path`, with `flash` shown on that page."""
        if flash:
            self.session["flash"] = flash
        return RedirectResponse(path, status_code=303)


class Console:
    """The pages over one database, with the service's keys, clock and lock-out."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        secret_keys: Sequence[str],
        clock: Clock,
        lockout: Lockout,
        renderer: Renderer | None,
        mailer: Mailer | None = None,
        kept: int = SIZE,
    ) -> None:
        self.sessions = sessions
        self.renderer = renderer
        self.mailer = mailer
        self.invite_age = mailer.max_age if mailer else INVITE_MAX_AGE
        self.signer = TokenSigner(list(secret_keys), clock=clock.now)
        self.pictures = Pictures()
        self.explanations = Explanations(kept)
        """The leads' points explained, kept between views (`nurture.handoff.reasons`)."""
        self.cookies = cookies.Cookies(secret_keys)
        self.clock = clock
        self.lockout = lockout
        self.templates = Environment(
            loader=PackageLoader("nurture.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(
            prefix=PREFIX, lead_name=lead_name, time_left=time_left, quote=quote
        )

    def render(self, ctx: Context, template: str, status: int, **values: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        page = self.templates.get_template(template).render(
            user=ctx.user,
            csrf=ctx.session["csrf"],
            flash=ctx.session.pop("flash", None),
            problem=ctx.problem,
            nonce=nonce,
            now=self.clock.now(),
            **values,
        )
        return HTMLResponse(page, status, headers=_headers(nonce))

    def route(
        self, view: View, *, signed_in: bool = True, form: bool = False, limit: int = MAX_FORM
    ) -> Any:
        """`view` behind the session, the CSRF check (forms of up to `limit` bytes) and the
        sign-in check."""

        async def endpoint(request: Request) -> Response:
            ctx = Context(request, self, self.cookies.read(request))
            fresh = "csrf" not in ctx.session
            if fresh:
                ctx.session.clear()
                ctx.session["csrf"] = cookies.new_token()
            try:
                if form:
                    ctx.form = await _form(request, limit)
                    if fresh or not cookies.token_matches(ctx.session, ctx.form.get("csrf", "")):
                        response = _plain(403, "The form is out of date: reload the page.")
                        self.cookies.write(request, response, ctx.session)
                        return response
                response = await run_in_threadpool(self._run, view, ctx, signed_in)
            except Reject as e:
                response = _plain(e.status, e.problems[0].message)
            except ClientDisconnect:
                return _plain(400, "the client went away")
            if ctx.session.pop("end", False):
                self.cookies.clear(request, response)
            else:
                self.cookies.write(request, response, ctx.session)
            return response

        return endpoint

    def _run(self, view: View, ctx: Context, signed_in: bool) -> Response:
        try:
            try:
                with self.sessions() as session, session.begin():
                    ctx.user = views.current_user(session, ctx.session)
                    if signed_in and ctx.user is None:
                        return _to_sign_in(ctx)
                    numbers = ctx.request.path_params.values()
                    if any(isinstance(n, int) and n > views.MAX_ID for n in numbers):
                        raise views.Missing("There is no such page.")
                    return view(ctx, session)
            except views.Problem as problem:
                with self.sessions() as session:
                    ctx.problem = problem.words
                    response = problem.again(ctx, session)
                    response.status_code = problem.status
                    return response
        except Forbidden as e:
            return ctx.render("error.html", 403, title="Not for you", words=str(e))
        except views.Missing as e:
            return ctx.render("error.html", 404, title="Not found", words=str(e))
        except (OperationalError, PoolTimeout):
            logger.exception("%s: the database is unavailable", ctx.request.url.path)
            return _plain(503, "The database is unavailable; try again in a moment.")
        except Exception:
            logger.exception("%s %s failed", ctx.request.method, ctx.request.url.path)
            return _plain(500, "Something went wrong; it has been logged.")


def create_console(
    sessions: Callable[[], Session],
    secret_keys: Sequence[str],
    *,
    clock: Clock | None = None,
    lockout: Lockout | None = None,
    renderer: Renderer | None = None,
    mailer: Mailer | None = None,
    kept: int = SIZE,
) -> Starlette:
    """The console app, to mount at ``/console``; see the module docstring for its pages.

    `secret_keys` sign the session cookie (the service's keys, newest last);
    `clock` tells the SLA countdowns' and answers' time; `lockout` says when
    wrong passwords lock a user; `renderer` renders a touch's message again for the lead
    page (the workers' templates; None: messages are not shown); `mailer` sends invitations
    (None: only ``nurture users invite`` does, and links last `INVITE_MAX_AGE`); `kept` is
    how many leads' points explained the lead page keeps between views (0: read afresh on
    every view).
    """
    clock, lockout = clock or SystemClock(), lockout or Lockout()
    console = Console(sessions, secret_keys, clock, lockout, renderer, mailer, kept)
    r = console.route
    routes = [
        Route("/", r(views.home), methods=["GET"]),
        Route("/sign-in", r(views.sign_in_page, signed_in=False), methods=["GET"]),
        Route("/sign-in", r(views.sign_in, signed_in=False, form=True), methods=["POST"]),
        Route("/sign-out", r(views.sign_out, signed_in=False, form=True), methods=["POST"]),
        Route("/inbox", r(views.inbox_page), methods=["GET"]),
        Route("/leads/{lead:int}", r(views.lead_page), methods=["GET"]),
        Route("/leads/{lead:int}/touches/{touch:int}", r(views.touch_page), methods=["GET"]),
        Route(
            "/leads/{lead:int}/note",
            r(views.note, form=True, limit=MAX_NOTE_FORM),
            methods=["POST"],
        ),
        Route("/leads/{lead:int}/{action:str}", r(views.answer, form=True), methods=["POST"]),
        Route("/campaigns", r(campaign_views.campaigns_page), methods=["GET"]),
        Route("/campaigns/{campaign:int}", r(campaign_views.campaign_page), methods=["GET"]),
        Route(
            "/campaigns/{campaign:int}/simulate",
            r(campaign_views.campaign_simulate, form=True),
            methods=["POST"],
        ),
        Route(
            "/campaigns/{campaign:int}/versions/{version:int}.svg",
            r(campaign_views.campaign_svg),
            methods=["GET"],
        ),
        Route("/funnel", r(views.funnel_page), methods=["GET"]),
        Route("/funnel.json", r(views.funnel_json), methods=["GET"]),
        Route("/segments", r(views.segments_page), methods=["GET"]),
        Route("/segments.csv", r(views.segments_csv), methods=["GET"]),
        Route("/deliveries", r(views.deliveries_page), methods=["GET"]),
        Route(
            "/deliveries/{delivery:int}/release",
            r(views.release_delivery, form=True),
            methods=["POST"],
        ),
        Route("/users", r(views.users_page), methods=["GET"]),
        Route("/users", r(views.add_user, form=True), methods=["POST"]),
        Route("/users/{user:int}/remove", r(views.remove_user, form=True), methods=["POST"]),
        Route("/users/invite", r(invite_views.invite_users, form=True), methods=["POST"]),
        Route(
            "/welcome/{token:str}",
            r(invite_views.welcome_page, signed_in=False),
            methods=["GET"],
        ),
        Route("/welcome", r(invite_views.welcome, signed_in=False, form=True), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.console = console
    return app


async def _form(request: Request, limit: int) -> dict[str, str]:
    body = await read_body(request, limit, BODY_TIMEOUT)
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _to_sign_in(ctx: Context) -> Response:
    request = ctx.request
    if request.method != "GET":
        return ctx.redirect(f"{PREFIX}/sign-in", "Your session ended: sign in again.")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/sign-in?next={quote(target, safe='/')}", 303)


def _headers(nonce: str) -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": (
            "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
            f"script-src 'nonce-{nonce}'; form-action 'self'; frame-ancestors 'none'; "
            "base-uri 'none'"
        ),
    }


def _plain(status: int, words: str) -> Response:
    return Response(words + "\n", status, media_type="text/plain; charset=utf-8")
