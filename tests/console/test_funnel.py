"""The funnel page: the numbers of `nurture report funnel`, as a page and as the same JSON."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from typer.testing import CliRunner

from nurture.cli import app
from nurture.models import Cost, Lead, LifecycleTransition
from nurture.reports import funnel
from nurture.store.funnel_firsts import refresh
from tests.console.conftest import T, World, form, sign_in

pytestmark = pytest.mark.asyncio


async def test_the_funnel_shows_the_reports_numbers(
    client: httpx.AsyncClient, world: World
) -> None:
    await sign_in(client, world.owner("ada@corp.com"))
    inbox = (await client.get("/console/inbox")).text
    lead = world.leads["ada@corp.com"].id
    await form(client, inbox, f"/console/leads/{lead}/stage", stage="won", amount="5000")
    client.cookies.clear()
    await sign_in(client, "mia@t.io")

    page = await client.get("/console/funnel")
    as_json = await client.get("/console/funnel.json")

    with world.sessions() as session:
        expected = json.loads(json.dumps(funnel(session, world.clock.now()).to_json()))
    assert as_json.json() == expected
    text = page.text
    assert "<tr><td>mql</td><td>2</td>" in text and "<tr><td>customer</td><td>1</td>" in text
    assert "2 leads · 0 returned by sales" in text
    assert "won 5,000.00" in text
    assert f"<th>{world.owner('ada@corp.com')}</th>" in text  # by owner
    assert '<svg role="img" aria-label="Leads that reached each stage"' in text


async def test_since_filters_and_a_bad_date_is_400(client: httpx.AsyncClient, world: World) -> None:
    await sign_in(client, "ann@t.io")
    later = await client.get("/console/funnel.json", params={"since": "2099-01-01"})
    assert later.json()["leads"] == 0
    bad = await client.get("/console/funnel", params={"since": "soon"})
    assert (bad.status_code, "Since &#39;soon&#39; is not a date" in bad.text) == (400, True)


async def test_sales_have_no_funnel(client: httpx.AsyncClient, world: World) -> None:
    await sign_in(client, world.owner("ada@corp.com"))
    assert (await client.get("/console/funnel")).status_code == 403
    assert (await client.get("/console/funnel.json")).status_code == 403


def over_months(world: World) -> None:
    """Ada won in March, Li reached SQL in April; costs for their source in both months."""
    ada, li = world.leads["ada@corp.com"].id, world.leads["li@corp.cn"].id
    with world.sessions() as session:
        for lead_id, stage, at, amount in (
            (ada, "sql", T + timedelta(days=1), None),
            (ada, "customer", T + timedelta(days=3), Decimal("5000")),
            (li, "sql", T + timedelta(days=35), None),
        ):
            session.add(
                LifecycleTransition(
                    lead_id=lead_id,
                    from_stage="mql",
                    to_stage=stage,
                    cause="test",
                    at=at,
                    amount=amount,
                )
            )
            session.get(Lead, lead_id).stage = stage  # type: ignore[union-attr]
        session.flush()
        refresh(session, [ada, li])  # as `transition` keeps the funnel's row of firsts
        source = session.get(Lead, ada).source or ""  # type: ignore[union-attr]
        for month, amount in ((date(2026, 3, 1), "400"), (date(2026, 4, 1), "100")):
            session.add(
                Cost(kind="source", name=source, month=month, amount=Decimal(amount), imported_at=T)
            )
        session.commit()


async def test_the_charts_by_month_are_report_funnels_numbers(
    client: httpx.AsyncClient, world: World
) -> None:
    over_months(world)
    await sign_in(client, "mia@t.io")
    url = world.engine.url.render_as_string(hide_password=False)

    page = (await client.get("/console/funnel")).text
    by_source = (await client.get("/console/funnel", params={"by": "source"})).text
    served = (await client.get("/console/funnel.json")).json()["months"]
    printed = CliRunner().invoke(app, ["report", "funnel", "--url", url, "--json"])

    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["months"] == served  # the same numbers
    march, april = served["all"][0], served["all"][1]
    assert (march["month"], march["mql"], march["sql"], march["customer"]) == ("2026-03", 2, 1, 1)
    assert (april["month"], april["sql"], april["lead_velocity_rate"]) == ("2026-04", 1, -1.0)
    assert march["won"] == 5000.0 and march["cost_per_mql"] == {"source": 200.0}
    assert march["romi"] == {"source": 12.5} and april["romi"] == {"source": 0.0}
    for m in served["all"]:  # every number of the chart is the report's
        for stage in ("leads", "mql", "sql", "opportunity", "customer"):
            assert f"<title>{m['month']} {stage}: {m[stage]}</title>" in page
    assert "<title>2026-04 lead velocity rate: -100%</title>" in page
    assert 'aria-label="Leads reaching each stage by month: All leads"' in page
    assert "<td>200.00</td><td>12.5×</td>" in page  # March: cost per MQL and ROMI
    assert "http" not in "".join(re.findall(r"<svg.*?</svg>", page, re.S))  # nothing external
    for name, rows in served["by"]["source"].items():
        assert f"<h3>{name or '(unknown)'}</h3>" in by_source
        assert f"<title>{rows[0]['month']} mql: {rows[0]['mql']}</title>" in by_source
    assert '<option value="source" selected>by source</option>' in by_source


async def test_an_unknown_breakdown_is_400(client: httpx.AsyncClient, world: World) -> None:
    await sign_in(client, "ann@t.io")
    bad = await client.get("/console/funnel", params={"by": "colour"})
    assert bad.status_code == 400 and "choose source, campaign or owner" in bad.text
    for by in ("campaign", "owner"):
        assert (await client.get("/console/funnel", params={"by": by})).status_code == 200


async def test_by_owner_and_source_each_lead_counts_under_its_own_name(
    client: httpx.AsyncClient, world: World
) -> None:
    """One query counts every kind (`nurture.funnel_months`, `nurture.handoff.report`): each
    name still gets only its own leads' stages and amounts, and all leads their sum."""
    over_months(world)
    ada, li = world.owner("ada@corp.com"), world.owner("li@corp.cn")
    with world.sessions() as session:
        data = funnel(session, world.clock.now())
        source = session.get(Lead, world.leads["ada@corp.com"].id).source or ""  # type: ignore[union-attr]
    months = data.to_json()["months"]

    def month(rows: list[dict[str, object]], at: str) -> tuple[object, ...]:
        [found] = [m for m in rows if m["month"] == at]
        return tuple(found[k] for k in ("mql", "sql", "customer", "won"))

    assert month(months["by"]["owner"][ada], "2026-03") == (1, 1, 1, 5000.0)
    assert month(months["by"]["owner"][li], "2026-03") == (1, 0, 0, 0.0)
    assert month(months["by"]["owner"][li], "2026-04") == (0, 1, 0, 0.0)
    assert month(months["by"]["source"][source], "2026-03") == (2, 1, 1, 5000.0)
    assert month(months["all"], "2026-03") == (2, 1, 1, 5000.0)
    assert months["by"]["campaign"] == {}
    owners = {g.name: (g.leads, g.mqls, g.sql, g.customers, g.won) for g in data.sales.by_owner}
    assert owners == {ada: (1, 1, 1, 1, Decimal(5000)), li: (1, 1, 1, 0, Decimal(0))}
    reached = {s.stage: s.reached for s in data.stages}
    assert reached == {"lead": 2, "mql": 2, "sql": 2, "opportunity": 1, "customer": 1}
    assert (data.mqls_this_month, data.sla_waiting + data.sla_overdue) == (2, 0)
