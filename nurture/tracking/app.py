"""The tracking service: a Starlette app over the database.

    GET  /o/<token>    the open pixel: records ``opened``; a 1×1 GIF (200, ``no-store``)
    GET  /c/<token>    records ``clicked`` and redirects (302) to the stored link
    GET  /u/<token>    the unsubscribe page: a button, nothing recorded (mail scanners
                       prefetch links, so a GET must not unsubscribe)
    POST /u/<token>    unsubscribes: RFC 8058 one-click (``List-Unsubscribe=One-Click``)
                       and the page's button alike; 200 with a confirmation page
    GET  /s/<token>    an MQL's owner's accept / return page (`nurture.tracking.answers`);
                       a GET answers nothing
    POST /s/<token>    accepts, or returns with a reason; 409 once the MQL moved on
    POST /api/events   records events, all or none (API key)
    POST /api/leads    creates or updates leads: cleaning, dedup, merges (API key)
    POST /api/sales/<action>  accept, return, stage, away, as `nurture sales` (API key;
                       `nurture.tracking.sales_api`)
    POST /api/leads/note  a note on a lead, as `nurture leads note` (API key)
    POST /api/leads/export-data, /api/leads/forget  {"lead": EMAIL|ID}: data-subject
                       export and erasure, as `nurture leads export-data|forget` (API key)
    POST /api/sms/replies  an SMS reply from the provider's inbound webhook; STOP / TD
                       closes SMS for that number (API key; `nurture.tracking.sms_replies`)
    POST /esp/<provider>  ESP event webhooks: ses, sendgrid, postmark, mailgun
                       (`nurture.tracking.esp_webhooks`)
    GET  /healthz      200 ``{"ok": true, "database": "ok"}``, 503 when the database is down
    GET  /console/...  the console (`nurture.console`), when one is given; ``GET /`` goes there

Status codes. A token that is forged, altered, truncated or made for another
purpose is 404 (the unsubscribe page says the link is damaged) and records
nothing; so is a genuine open or click token whose delivery or link index
does not exist. An expired open token still gets the GIF and an expired click
token still redirects (old mail keeps working), but neither is recorded
(`nurture.tokens` explains the 180 days). A genuine unsubscribe token whose
lead no longer exists gets the confirmation page: no mail goes to it, which
is what the reader asked for. ``HEAD`` requests (link checkers) get the same
answers and record nothing.

The API answers 401 without the key (``Authorization: Bearer <key>`` or
``X-API-Key: <key>``), 503 when no key is configured, 400 for a body that is
not JSON, 413 above 1 MiB, 422 ``{"errors": [{"path", "message"}]}`` for a
body that does not validate (every problem, each with its JSON path such as
``$[2].lead.email``); a failed request stores nothing. Unexpected errors are
logged and answered 500 ``{"errors": [...]}`` without internals; an
unreachable database is 503.

A body must arrive whole within `BODY_TIMEOUT` seconds (uvicorn's keep-alive
timeout does not cover a body that was declared and not sent): after that the
answer is 408 and the connection is closed. A client that goes away before
its body arrived is one line in the log, at INFO, and nothing is recorded.

Hooks run after the commit, in a worker thread: ``on_wake(ids)`` with the
enrollments an event made due (the runtime enqueues them at once),
``on_lead(lead_id, created)`` for each lead the API stored. A hook that
raises is logged; the request has succeeded by then.
"""

from __future__ import annotations

import functools
import hmac
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from html import escape
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from nurture.deliverability.esp import EspConfig
from nurture.engine.clock import Clock, SystemClock
from nurture.handoff.answers import AnswerError, NotFound
from nurture.models import Lead
from nurture.store.cleaning import DEFAULT_RULES, LeadRules
from nurture.tokens import BadToken, ExpiredToken, TokenSigner
from nurture.tracking import answers, data_api, pages, records, sales_api, schema, sms_replies
from nurture.tracking.bodies import (
    BODY_TIMEOUT,
    MAX_FORM,
    Reject,
    read_body,
    read_json,
)
from nurture.tracking.esp_webhooks import routes as esp_routes
from nurture.tracking.records import Effects
from nurture.tracking.schema import Invalid, Problem

logger = logging.getLogger("nurture.tracking")

MAX_TOKEN: Final = 512
"""Longer path segments are not tokens and are refused unread."""
ATTEMPTS: Final = 8
"""Tries of a write that lost a race (see `_Tracking._write`)."""
RACES: Final = ("database is locked", "database table is locked", "deadlock detected")
"""Database errors that mean "another transaction got in the way; run it again"."""
RETRY_DELAY: Final = 0.005
"""Seconds; the n-th retry waits a random time up to ``RETRY_DELAY * 2**n``."""

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]


def _ignore_wake(ids: list[int]) -> None:
    """The default ``on_wake``: the scheduler's next poll finds the enrollments."""


def _ignore_lead(lead_id: int, created: bool) -> None:
    """The default ``on_lead``: nothing enrolls the lead."""


def create_app(
    session_factory: Callable[[], Session],
    signer: TokenSigner,
    *,
    api_key: str | None,
    on_wake: Callable[[list[int]], None] = _ignore_wake,
    on_lead: Callable[[int, bool], None] = _ignore_lead,
    clock: Clock | None = None,
    lead_rules: LeadRules = DEFAULT_RULES,
    body_timeout: float = BODY_TIMEOUT,
    console: ASGIApp | None = None,
    esp: EspConfig | None = None,
) -> Starlette:
    """The tracking service; see the module docstring for its endpoints and answers.

    `session_factory` makes sessions on the database (`nurture.db.session_factory`);
    `signer` reads tokens with the keys the renderer signed them with;
    `api_key` guards ``/api/*`` (None: the API answers 503); `clock` gives
    the time of recorded events; `body_timeout` bounds the wait for a body;
    `console` is mounted at ``/console`` (`nurture.console.create_console`);
    `esp` configures the ESP webhooks (None: they answer 503).
    """
    service = _Tracking(
        session_factory,
        signer,
        api_key,
        on_wake,
        on_lead,
        clock or SystemClock(),
        lead_rules,
        body_timeout,
    )
    routes: list[BaseRoute] = [
        Route("/o/{token}", _guarded(service.open_pixel), methods=["GET"]),
        Route("/c/{token}", _guarded(service.click), methods=["GET"]),
        Route("/u/{token}", _guarded(service.unsubscribe_page), methods=["GET"]),
        Route("/u/{token}", _guarded(service.unsubscribe), methods=["POST"]),
        Route("/s/{token}", _guarded(service.answer_page), methods=["GET"]),
        Route("/s/{token}", _guarded(service.answer), methods=["POST"]),
        Route("/api/events", _guarded(service.api_events), methods=["POST"]),
        Route("/api/leads", _guarded(service.api_leads), methods=["POST"]),
        Route("/api/sales/{action}", _guarded(service.api_sales), methods=["POST"]),
        Route("/api/leads/note", _guarded(service.api_note), methods=["POST"]),
        Route("/api/leads/export-data", _guarded(service.api_data), methods=["POST"]),
        Route("/api/leads/forget", _guarded(service.api_data), methods=["POST"]),
        Route("/api/sms/replies", _guarded(service.api_sms_reply), methods=["POST"]),
        Route("/healthz", _guarded(service.healthz), methods=["GET"]),
        *esp_routes(esp, service, _guarded),
    ]
    if console is not None:
        to_console = RedirectResponse("/console/", 303)
        routes.append(Route("/", lambda _: to_console, methods=["GET"]))
        routes.append(Route("/console", lambda _: to_console, methods=["GET"]))
        routes.append(Mount("/console", app=console))
    handlers: dict[Any, Callable[[Request, Exception], Response]] = {
        HTTPException: _http_error,
        Exception: _server_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    # A token never ends in "/": `/o/<token>/` is a damaged token (404), not a redirect.
    app.router.redirect_slashes = False
    app.state.tracking = service
    return app


class _Tracking:
    """The endpoints, over one database and one signer."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        signer: TokenSigner,
        api_key: str | None,
        on_wake: Callable[[list[int]], None],
        on_lead: Callable[[int, bool], None],
        clock: Clock,
        rules: LeadRules,
        body_timeout: float,
    ) -> None:
        self.sessions = sessions
        self.signer = signer
        self.api_key = api_key or None
        self.on_wake = on_wake
        self.on_lead = on_lead
        self.clock = clock
        self.rules = rules
        self.body_timeout = body_timeout
        self._sqlite_writer = threading.Lock()

    # ------------------------------------------------------------ opens and clicks

    async def open_pixel(self, request: Request) -> Response:
        try:
            delivery_id = self.signer.read_open(_token(request))
        except ExpiredToken:
            return _gif()
        except BadToken:
            return _not_found()
        if request.method != "HEAD":

            def work(session: Session, now: datetime, effects: Effects) -> bool:
                return records.record_open(session, delivery_id, now, effects)

            if not await run_in_threadpool(self._write, work):
                return _not_found()
        return _gif()

    async def click(self, request: Request) -> Response:
        try:
            delivery_id, index = self.signer.read_click(_token(request))
            record = request.method != "HEAD"
        except ExpiredToken as e:
            (delivery_id, index), record = e.payload, False
        except BadToken:
            return _not_found()
        if record:

            def work(session: Session, now: datetime, effects: Effects) -> Any:
                return records.record_click(session, delivery_id, index, now, effects)

            link = await run_in_threadpool(self._write, work)
        else:
            link = await run_in_threadpool(
                self._read, lambda session: records.click_target(session, delivery_id, index)
            )
        if link is None:
            return _not_found()
        return RedirectResponse(link.url, status_code=302, headers=dict(pages.NO_STORE))

    # ------------------------------------------------------------ unsubscribing

    async def unsubscribe_page(self, request: Request) -> Response:
        try:
            lead_id, delivery_id = self.signer.read_unsubscribe(_token(request))
        except BadToken:
            return _html(pages.invalid_page(), 404)

        def look(session: Session) -> tuple[str, bool]:
            lead, _delivery = records.unsubscribe_lead(session, lead_id, delivery_id)
            return _who(lead), lead is None or lead.unsubscribed_at is not None

        who, done = await run_in_threadpool(self._read, look)
        return _html(pages.done_page(who) if done else pages.confirm_page(who))

    async def unsubscribe(self, request: Request) -> Response:
        try:
            lead_id, delivery_id = self.signer.read_unsubscribe(_token(request))
        except BadToken:
            return _html(pages.invalid_page(), 404)
        raw = await read_body(request, MAX_FORM, self.body_timeout)
        form = parse_qs(raw.decode("utf-8", "replace"))
        via = "one-click" if form.get("List-Unsubscribe") == ["One-Click"] else "page"

        def work(session: Session, now: datetime, effects: Effects) -> str:
            lead = records.unsubscribe(session, lead_id, delivery_id, via, now, effects)
            return _who(lead)

        who = await run_in_threadpool(self._write, work)
        return _html(pages.done_page(who))

    # ------------------------------------------------------------ sales' answers

    async def answer_page(self, request: Request) -> Response:
        try:
            assignment_id = self.signer.read_answer(_token(request))
        except BadToken:
            return _refused(answers.EXPIRED)
        try:
            page = await run_in_threadpool(self._read, lambda s: answers.page(s, assignment_id))
        except answers.Refused as e:
            return _refused(e)
        return _html(page)

    async def answer(self, request: Request) -> Response:
        try:
            assignment_id = self.signer.read_answer(_token(request))
        except BadToken:
            return _refused(answers.EXPIRED)
        body = await read_body(request, MAX_FORM, self.body_timeout)

        def work(session: Session, now: datetime, effects: Effects) -> str:
            return answers.answer(session, assignment_id, body, now)

        try:
            return _html(await run_in_threadpool(self._write, work))
        except answers.Refused as e:
            return _refused(e)

    # ------------------------------------------------------------ the API

    async def api_events(self, request: Request) -> Response:
        self._authorize(request)
        body = await read_json(request, self.body_timeout)
        events = schema.parse_events(body, self.clock.now(), self.rules)

        def work(session: Session, now: datetime, effects: Effects) -> list[int]:
            return records.record_events(session, events, now, effects)

        ids = await run_in_threadpool(self._write, work)
        return JSONResponse({"recorded": len(ids), "events": ids})

    async def api_leads(self, request: Request) -> Response:
        self._authorize(request)
        body = await read_json(request, self.body_timeout)
        leads = schema.parse_leads(body, self.rules)

        def work(session: Session, now: datetime, effects: Effects) -> Any:
            return records.store_leads(session, leads, now, effects)

        outcome = await run_in_threadpool(self._write, work)
        return JSONResponse(outcome.to_json())

    async def api_sales(self, request: Request) -> Response:
        self._authorize(request)
        action = str(request.path_params["action"])
        fields = sales_api.parse(action, await read_json(request, self.body_timeout))

        def work(session: Session, now: datetime, effects: Effects) -> Any:
            return sales_api.act(session, action, fields, now)

        try:
            done = await run_in_threadpool(self._write, work)
        except AnswerError as e:
            return _errors(404 if isinstance(e, NotFound) else 409, [Problem("$", str(e))])
        return JSONResponse(
            {"lead": done.lead_id or None, "said": done.said, "changed": done.changed}
        )

    async def api_note(self, request: Request) -> Response:
        self._authorize(request)
        fields = sales_api.parse_note(await read_json(request, self.body_timeout))

        def work(session: Session, now: datetime, effects: Effects) -> Any:
            return sales_api.note(session, fields, now)

        try:
            done = await run_in_threadpool(self._write, work)
        except AnswerError as e:
            return _errors(404 if isinstance(e, NotFound) else 422, [Problem("$", str(e))])
        return JSONResponse({"lead": done.lead_id, "said": done.said, "changed": True})

    async def api_data(self, request: Request) -> Response:
        self._authorize(request)
        action = request.url.path.rsplit("/", 1)[-1]
        lead = data_api.parse(await read_json(request, self.body_timeout))

        def work(session: Session, now: datetime, effects: Effects) -> Any:
            return data_api.act(session, action, lead, now)

        try:
            done = await run_in_threadpool(self._write, work)
        except NotFound as e:
            return _errors(404, [Problem("$.lead", str(e))])
        return JSONResponse(done)

    async def api_sms_reply(self, request: Request) -> Response:
        self._authorize(request)
        reply = sms_replies.parse(await read_json(request, self.body_timeout), self.rules)

        def work(session: Session, now: datetime, effects: Effects) -> Any:
            return sms_replies.act(session, reply, now, effects)

        return JSONResponse(await run_in_threadpool(self._write, work))

    def _authorize(self, request: Request) -> None:
        if self.api_key is None:
            raise Reject(503, "$", "the API is disabled: the service has no NURTURE_API_KEY")
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        given = credentials.strip() if scheme.lower() == "bearer" else ""
        given = given or request.headers.get("x-api-key", "").strip()
        if not given or not hmac.compare_digest(given.encode(), self.api_key.encode()):
            why = "a wrong API key" if given else "no API key"
            message = f"{why}: send Authorization: Bearer <key> or X-API-Key: <key>"
            raise Reject(401, "Authorization", message, **{"WWW-Authenticate": "Bearer"})

    # ------------------------------------------------------------ health

    async def healthz(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self._read, lambda session: session.execute(text("SELECT 1")))
        except Exception:
            logger.warning("health check: the database is unavailable", exc_info=True)
            return JSONResponse({"ok": False, "database": "unavailable"}, 503)
        return JSONResponse({"ok": True, "database": "ok"})

    # ------------------------------------------------------------ transactions

    def _write(self, work: Callable[[Session, datetime, Effects], T]) -> T:
        """Run `work` in one transaction, then the hooks; retried when it lost a race.

        Two races are retried: a unique key taken meanwhile (two requests creating
        one lead), SQLite's "database is locked" (another process writing; a
        deferred transaction that read first cannot wait for it) and PostgreSQL's
        deadlocks (two events of one lead rescoring it at once).
        """
        for attempt in range(1, ATTEMPTS + 1):
            effects = Effects()
            try:
                with self.sessions() as session, self._serial(session), session.begin():
                    result = work(session, self.clock.now(), effects)
            except (IntegrityError, OperationalError) as e:
                if attempt == ATTEMPTS or not _lost_race(e):
                    raise
                logger.info("a write lost a race (%s); trying again", _first_line(e))
                time.sleep(random.uniform(0, RETRY_DELAY * 2**attempt))
                continue
            self._after(effects)
            return result
        raise AssertionError("unreachable")

    def _serial(self, session: Session) -> AbstractContextManager[object]:
        """On SQLite, one writer at a time in this process: SQLite has one anyway, and
        waiting here beats transactions invalidating each other's snapshots."""
        if session.get_bind().dialect.name == "sqlite":
            return self._sqlite_writer
        return nullcontext()

    def _read(self, work: Callable[[Session], T]) -> T:
        with self.sessions() as session:
            return work(session)

    def _after(self, effects: Effects) -> None:
        if effects.woken:
            _call_hook("on_wake", self.on_wake, list(effects.woken))
        for lead_id, created in effects.leads.items():
            _call_hook("on_lead", self.on_lead, lead_id, created)


def _lost_race(error: Exception) -> bool:
    if isinstance(error, IntegrityError):
        return True
    text = str(getattr(error, "orig", error)).lower()
    return any(sign in text for sign in RACES)


def _first_line(error: Exception) -> str:
    lines = str(getattr(error, "orig", error)).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _call_hook(name: str, hook: Callable[..., None], *args: Any) -> None:
    try:
        hook(*args)
    except Exception:
        logger.exception("the %s hook failed for %r; the request itself succeeded", name, args)


# ---------------------------------------------------------------- requests


def _token(request: Request) -> str:
    """The path's token; `BadToken` for one no signer could have made."""
    token = str(request.path_params["token"])
    if len(token) > MAX_TOKEN or not token.isascii():
        raise BadToken("not a token")
    return token


def _who(lead: Lead | None) -> str:
    return pages.masked(None, None) if lead is None else pages.masked(lead.email, lead.phone)


# ---------------------------------------------------------------- responses


def _gif() -> Response:
    return Response(pages.PIXEL_GIF, media_type="image/gif", headers=dict(pages.NO_STORE))


def _refused(refused: answers.Refused) -> HTMLResponse:
    body = f"<h1>{escape(refused.title)}</h1>\n<p>{refused.words}</p>"
    return _html(pages.page(refused.title, body), refused.status)


def _not_found() -> Response:
    return Response("not found\n", 404, media_type="text/plain", headers=dict(pages.NO_STORE))


def _html(page: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(page, status, headers=dict(pages.PAGE_HEADERS))


def _errors(
    status: int, problems: list[Problem], headers: dict[str, str] | None = None
) -> Response:
    body = {"errors": [p.to_json() for p in problems]}
    return JSONResponse(body, status, headers={**pages.NO_STORE, **(headers or {})})


def _guarded(handler: Handler) -> Handler:
    """`handler` with every failure answered: 4xx for bad input, 503 or 500 (logged) else."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Invalid as e:
            return _errors(422, e.problems)
        except Reject as e:
            return _errors(e.status, e.problems, e.headers)
        except ClientDisconnect:
            where = f"{request.method} {request.url.path}"
            logger.info("%s: the client went away before its body arrived; nothing recorded", where)
            return _errors(400, [Problem("$", "the client went away")])
        except (OperationalError, PoolTimeout):
            logger.exception("%s %s: the database is unavailable", request.method, request.url.path)
            return _errors(503, [Problem("$", "the database is unavailable; try again later")])
        except Exception:
            logger.exception("%s %s failed", request.method, request.url.path)
            return _errors(500, [Problem("$", "internal error; it has been logged")])

    return run


def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (unknown path, wrong method), as JSON errors."""
    assert isinstance(exc, HTTPException)
    problems = [Problem(request.url.path, str(exc.detail))]
    return _errors(exc.status_code, problems, dict(exc.headers or {}))


def _server_error(request: Request, exc: Exception) -> Response:
    """Anything that escaped the guards: logged by Starlette, answered without internals."""
    return _errors(500, [Problem("$", "internal error; it has been logged")])
