"""The campaigns pages' views: the list, one campaign (its flow with live numbers, versions,
steps and A/B arms), its pictures, and its dry run ("simulate").

Kept apart from `nurture.console.views` (the leads' pages); the same rules:
each view asks `nurture.console.permissions` before it shows anything, and
a form that cannot be done shows its page again with the problem.
"""

from __future__ import annotations

from base64 import b64encode
from typing import TYPE_CHECKING

from sqlalchemy import select
from starlette.responses import Response

from dsl.draw import to_dot
from nurture.console import campaigns, projection
from nurture.console import permissions as can
from nurture.console.views import MAX_ID, Missing, Problem
from nurture.models import Campaign, CampaignVersion
from nurture.reports import ENGAGEMENT, campaign_report
from nurture.split_report import METRICS

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nurture.console.app import Context

NOT_SALES = "Campaigns are for marketers, analysts and admins."
METRIC_WORDS = {"opened": "opened", "clicked": "clicked", "mql": "MQL"}


def campaigns_page(ctx: Context, session: Session) -> Response:
    can.require(can.sees_all(_user(ctx)), NOT_SALES)
    return ctx.render("campaigns.html", campaigns=campaigns.listed(session))


def campaign_page(ctx: Context, session: Session) -> Response:
    """One campaign: the flow of a version (``?version=N``; the current one) with its live
    numbers, its versions with their leads, steps, A/B arms and the simulate form."""
    return _page(ctx, session, None)


def _page(
    ctx: Context,
    session: Session,
    projected: projection.Projection | None,
    projected_src: str | None = None,
) -> Response:
    user = _user(ctx)
    can.require(can.sees_all(user), NOT_SALES)
    found = _campaign(ctx, session)
    report = campaign_report(session, found.name)
    shown = _shown(ctx, found)
    if shown is not None and shown not in {v.version for v in report.versions}:
        raise Missing(f"{found.name} has no version {shown}.")
    form = {name: ctx.form.get(name, value) for name, value in projection.DEFAULTS.items()}
    return ctx.render(
        "campaign.html",
        campaign=found,
        report=report,
        shown=shown,
        drawn=campaigns.Pictures.available(),
        engagement=ENGAGEMENT,
        metrics=METRICS,
        metric_words=METRIC_WORDS,
        may_simulate=can.may_simulate(user),
        form=form,
        limits={"leads": projection.MAX_LEADS, "days": projection.MAX_DAYS},
        projected=projected,
        projected_src=projected_src,
    )


def campaign_svg(ctx: Context, session: Session) -> Response:
    """A version's flow picture with its live numbers, as an SVG image."""
    can.require(can.sees_all(_user(ctx)), NOT_SALES)
    params = ctx.request.path_params
    pictures = ctx.console.pictures
    found = pictures.live(session, params["campaign"], params["version"])
    session.commit()  # Graphviz runs with no transaction open (see `campaign_simulate`)
    svg = None if found is None else pictures.draw(*found)
    if svg is None:
        raise Missing("There is no such version, or no Graphviz to draw it.")
    headers = {
        "Cache-Control": "private, no-cache",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff",
    }  # opened on its own, no script in the picture could run either
    return Response(svg, media_type="image/svg+xml", headers=headers)


def campaign_simulate(ctx: Context, session: Session) -> Response:
    """Run the dry run of the shown version with the form's leads, days and seed; the page
    again with the projected picture and table (nothing is stored)."""
    user = _user(ctx)
    can.require(can.sees_all(user), NOT_SALES)
    can.require(can.may_simulate(user), "Simulations are run by marketers and admins.")
    found = _campaign(ctx, session)
    try:
        asked = projection.read_form(ctx.form)
        version = _version(session, found, _shown(ctx, found))
        program, graph = projection.program_of(session, version)
    except projection.Refused as e:
        raise Problem(e.status, str(e), campaign_page) from e
    session.commit()  # the run holds no transaction (on SQLite one may hold the write lock)
    try:
        projected = projection.project(program, graph, asked)
    except projection.Refused as e:
        raise Problem(e.status, str(e), campaign_page) from e
    drawn = campaigns.svg_of(to_dot(graph, projected.numbers))  # an image in the page
    src = None if drawn is None else "data:image/svg+xml;base64," + b64encode(drawn).decode()
    with ctx.console.sessions() as fresh, fresh.begin():
        return _page(ctx, fresh, projected, src)


def _campaign(ctx: Context, session: Session) -> Campaign:
    found = session.get(Campaign, ctx.request.path_params["campaign"])
    if found is None:
        raise Missing("There is no such campaign.")
    return found


def _shown(ctx: Context, found: Campaign) -> int | None:
    """``?version=N``'s number; without one, the current version."""
    asked = ctx.request.query_params.get("version", "")
    if not (asked.isascii() and asked.isdigit()):
        return found.current_version
    if int(asked) > MAX_ID:
        raise Missing(f"{found.name} has no version {asked}.")
    return int(asked)


def _version(session: Session, found: Campaign, number: int | None) -> CampaignVersion:
    version = session.scalars(
        select(CampaignVersion).where(
            CampaignVersion.campaign_id == found.id, CampaignVersion.version == number
        )
    ).one_or_none()
    if version is None:
        which = "deployed version" if number is None else f"version {number}"
        raise projection.Refused(f"{found.name} has no {which} to simulate.", 404)
    return version


def _user(ctx: Context) -> can.Who:
    assert ctx.user is not None  # the route let only signed-in users in
    return ctx.user
