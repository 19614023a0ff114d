"""A/B results in `nurture report campaign`: arms by label, counted on both databases, and
p-values checked against tests worked by hand (Fisher's tea tasting, the hypergeometric
sum, the chi-square with two degrees of freedom)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dsl.graph import StepGraph
from nurture.cli import app
from nurture.engine.loops import pick_arm
from nurture.models import CampaignVersion, Delivery, Enrollment, Lead
from nurture.reports import campaign_report
from nurture.runtime.database import sessions_for
from nurture.runtime.deploying import deploy_sources
from nurture.split_report import MIN_LEADS, Arm, compare_metric, p_of
from nurture.store.lifecycle import mark_mql
from nurture.store.scoring import record_event

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
runner = CliRunner()

SPLIT = """\
campaign "Launch AB"
  enroll when lead created
  send email "t/hello"
  split:
    50% "short":
      send email "t/hello" as short
    50% "long":
      send email "t/hello" as long
  send email "t/hello" as after
"""


def arm(label: str, leads: int, opened: int = 0, clicked: int = 0, mqls: int = 0) -> Arm:
    return Arm(label, 50.0, leads, leads, opened, clicked, mqls)


# ---------------------------------------------------------------- the tests, by hand


def test_two_arms_take_fishers_exact_test_as_in_the_tea_tasting() -> None:
    # Given Fisher's lady tasting tea (1935): 3 of 4 right in one row, 1 of 4 in the other;
    # the two-sided p is (16 + 1 + 16 + 1) / 70, the tables at most as likely as it
    assert p_of([(3, 1), (1, 3)]) == pytest.approx(34 / 70)


def fisher_by_hand(a: int, n1: int, b: int, n2: int) -> float:
    """The two-sided exact p: the hypergeometric tables no likelier than the observed one."""
    k, n = a + b, n1 + n2

    def prob(x: int) -> float:
        return math.comb(n1, x) * math.comb(n2, k - x) / math.comb(n, k)

    seen = prob(a)
    low, high = max(0, k - n2), min(k, n1)
    return sum(prob(x) for x in range(low, high + 1) if prob(x) <= seen * (1 + 1e-7))


@pytest.mark.parametrize(
    ("a", "n1", "b", "n2"), [(10, 100, 25, 100), (7, 40, 9, 35), (0, 30, 3, 31)]
)
def test_the_two_arm_p_is_the_hypergeometric_sum(a: int, n1: int, b: int, n2: int) -> None:
    assert p_of([(a, n1 - a), (b, n2 - b)]) == pytest.approx(fisher_by_hand(a, n1, b, n2))


def test_three_arms_take_the_chi_square_test_with_two_degrees_of_freedom() -> None:
    # Given three arms of 50 leads with 10, 20 and 30 clickers
    table = [(10, 40), (20, 30), (30, 20)]
    # The chi-square statistic by hand (expected 20 clickers and 30 others per arm), and
    # with two degrees of freedom the p-value is exp(-chi2 / 2)
    chi2 = sum((c - 20) ** 2 / 20 + (o - 30) ** 2 / 30 for c, o in table)
    assert chi2 == pytest.approx(16.6667, rel=1e-4)
    assert p_of(table) == pytest.approx(math.exp(-chi2 / 2))


def test_a_winner_is_called_only_on_enough_leads_and_a_small_p() -> None:
    # Given 100 leads an arm, 10 and 25 clicks: p about 0.008
    clear = compare_metric([arm("short", 100, clicked=10), arm("long", 100, clicked=25)], "clicked")
    assert clear.winner == "long" and clear.p_value is not None and clear.p_value < 0.05
    assert clear.difference == pytest.approx(0.15)
    assert clear.verdict.startswith('"long" wins (p = 0.00')

    # And the same rates on 20 leads an arm: not enough data, though the p is shown
    few = compare_metric([arm("short", 20, clicked=2), arm("long", 20, clicked=5)], "clicked")
    assert few.winner is None and few.p_value is not None
    assert few.verdict == (
        f"not enough data to call a winner: a winner needs {MIN_LEADS} leads in every arm "
        '(now "short" 20, "long" 20)'
    )

    # And a small difference on many leads is no winner
    close = compare_metric([arm("a", 500, opened=100), arm("b", 500, opened=110)], "opened")
    assert close.winner is None and close.verdict.startswith("no winner: the difference may be")

    # And an arm nobody reached yet
    empty = compare_metric([arm("a", 40, opened=4), arm("b", 0)], "opened")
    assert empty.p_value is None and empty.verdict.endswith('no leads yet in "b"')


def test_no_successes_at_all_is_no_difference() -> None:
    assert p_of([(0, 50), (0, 50)]) == 1.0
    assert p_of([(50, 0), (50, 0), (50, 0)]) == 1.0


# ---------------------------------------------------------------- counted from the database


def deliver(session: Session, enrollment: Enrollment, step: str, at: datetime) -> Delivery:
    row = Delivery(
        enrollment_id=enrollment.id,
        step_id=step,
        lead_id=enrollment.lead_id,
        channel="email",
        template="t/hello",
        status="sent",
        message_id=f"{enrollment.id}.{step}@acme.test",
        created_at=at,
        sent_at=at,
    )
    session.add(row)
    session.flush()
    return row


Behaviour = Callable[[int, int], tuple[bool, bool, bool]]
"""(the lead's index in its arm, the arm) -> (opens, clicks, becomes an MQL)."""


def build(engine: Engine, tmp_path: Path, leads: int, behave: Behaviour) -> dict[str, int]:
    """`leads` leads through the split, acting as `behave` says; one more that has not
    reached it (it stands at the split). Returns how many leads each arm holds."""
    (tmp_path / "templates" / "t").mkdir(parents=True)
    (tmp_path / "templates" / "t" / "hello.email.j2").write_text(
        "{% block subject %}Hi{% endblock %}{% block html %}<p>x</p>{% endblock %}"
    )
    deploy_sources(sessions_for(engine), {str(tmp_path / "ab.nurture"): SPLIT}, T)
    sizes: dict[str, int] = {}
    with Session(engine) as session, session.begin():
        version = session.query(CampaignVersion).one()
        graph = StepGraph.from_json(version.graph)
        [split] = [n for n in graph.nodes.values() if n.kind == "split"]
        labels = [str(e.label) for e in split.edges]
        for n in range(leads + 1):
            person = Lead(email=f"p{n}@client.io", created_at=T, updated_at=T)
            session.add(person)
            session.flush()
            edge = pick_arm(split.edges, person.id, graph.name, split.id)
            waiting = n == leads
            enrollment = Enrollment(
                lead_id=person.id,
                campaign_version_id=version.id,
                cursor=split.id if waiting else edge.target,
                state="waiting",
                entered_at=T,
            )
            session.add(enrollment)
            session.flush()
            deliver(session, enrollment, graph.entry, T)
            if waiting:
                continue
            label = str(edge.label)
            index = sizes.get(label, 0)
            sizes[label] = index + 1
            touch = deliver(session, enrollment, edge.target, T + timedelta(days=1))
            opens, clicks, mql = behave(index, labels.index(label))
            when = T + timedelta(days=2)
            if opens:
                for _ in range(2):  # a second open of the same message counts once
                    record_event(session, person.id, "opened", None, when, delivery_id=touch.id)
            if clicks:
                record_event(session, person.id, "clicked", None, when, delivery_id=touch.id)
            if mql:
                mark_mql(session, person, "rule", "rule", None, when, None)
    return sizes


def test_the_campaign_report_shows_each_arm_by_label(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    # Given 80 leads through a 50/50 split: in "short" the first 5 open and 2 click,
    # in "long" the first 30 open, 12 click and 6 become MQLs
    def behave(index: int, arm_index: int) -> tuple[bool, bool, bool]:
        if arm_index == 0:
            return index < 5, index < 2, False
        return index < 30, index < 12, index < 6

    sizes = build(migrated_engine, tmp_path, 80, behave)
    assert sum(sizes.values()) == 80 and min(sizes.values()) >= MIN_LEADS

    # When the campaign is reported
    with Session(migrated_engine) as session:
        report = campaign_report(session, "Launch AB")

    # Then the split has its two arms by label with the counts, the lead still at the split
    # in neither, and sends counting the arm's own touches only
    [split] = report.splits
    short, long = split.arms
    assert (short.label, short.leads, short.sends, short.opened, short.clicked, short.mqls) == (
        "short",
        sizes["short"],
        sizes["short"],
        5,
        2,
        0,
    )
    assert (long.label, long.leads, long.opened, long.clicked, long.mqls) == (
        "long",
        sizes["long"],
        30,
        12,
        6,
    )
    # And each rate is compared by Fisher's exact test, with the p worked by hand
    opened, clicked, mql = split.comparisons
    assert opened.p_value == pytest.approx(fisher_by_hand(5, sizes["short"], 30, sizes["long"]))
    assert opened.winner == "long" and opened.test == "Fisher's exact test"
    assert opened.difference == pytest.approx(30 / sizes["long"] - 5 / sizes["short"])
    assert mql.p_value == pytest.approx(fisher_by_hand(0, sizes["short"], 6, sizes["long"]))
    assert clicked.metric == "clicked"


def test_report_campaign_prints_the_arms_and_the_verdicts_and_json(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a small split of 12 leads: too few to call a winner
    monkeypatch.delenv("NURTURE_DATABASE_URL", raising=False)
    from nurture import db

    engine = db.make_engine(migrated_url)
    try:
        build(
            engine, tmp_path, 12, lambda index, arm_index: (index < 2 * arm_index + 1, False, False)
        )
    finally:
        engine.dispose()

    # When it is reported as a table and as JSON
    table = runner.invoke(app, ["report", "campaign", "Launch AB", "--url", migrated_url])
    data = runner.invoke(app, ["report", "campaign", "Launch AB", "--url", migrated_url, "--json"])

    # Then the table names the arms and says there is not enough data
    assert table.exit_code == 0, table.output
    assert "A/B split at line 4" in table.stdout
    assert "short" in table.stdout and "long" in table.stdout
    assert "Fisher's exact test" in table.stdout
    assert "not enough data to call a winner" in table.stdout
    # And the JSON carries the same
    [split] = json.loads(data.stdout)["splits"]
    assert [a["label"] for a in split["arms"]] == ["short", "long"]
    assert sum(a["leads"] for a in split["arms"]) == 12
    assert [a["opened"] for a in split["arms"]] == [1, 3]
    assert split["comparisons"][0]["winner"] is None
    assert split["comparisons"][0]["verdict"].startswith("not enough data")


def test_three_arms_call_no_winner_while_a_cell_expects_fewer_than_five() -> None:
    # Given three arms of 40 leads with 1, 2 and 9 MQLs: 4 expected per arm
    arms = [arm("a", 40, mqls=1), arm("b", 40, mqls=2), arm("c", 40, mqls=9)]
    sparse = compare_metric(arms, "mql")
    assert sparse.winner is None and sparse.verdict.startswith("not enough data")

    # And with 3, 4 and 14 (expected 7 each), "c" wins
    arms = [arm("a", 40, mqls=3), arm("b", 40, mqls=4), arm("c", 40, mqls=14)]
    assert compare_metric(arms, "mql").winner == "c"
