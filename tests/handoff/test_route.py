"""Choosing an owner: the routing rules over a lead and the desk, with no database."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import dsl
from nurture.engine.state import LeadView
from nurture.handoff.route import (
    Choice,
    Desk,
    after_deadline,
    choose,
    choose_by,
    holding,
    pick,
    teams,
)
from nurture.models import Definition

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EAST = [{"email": "li.na@t.io", "name": "李娜"}, {"email": "wang.fang@t.io", "weight": 2}]
INBOUND = [{"email": "amy@t.io"}, {"email": "tom@t.io", "daily_cap": 2}]


def when(condition: str) -> Any:
    """A condition as the compiler writes it."""
    return dsl.build({"c.nurture": f'segment "c"\n  {condition}\n'}).segments["c"]


def routing(**changes: Any) -> dict[str, Any]:
    """The routing of the docs' example, as the compiler writes it."""
    base: dict[str, Any] = {
        "teams": {"east": EAST, "inbound": INBOUND, "managers": [{"email": "boss@t.io"}]},
        "rules": [
            {
                "number": 1,
                "assign": "owner",
                "team": None,
                "user": None,
                "when": when("lead.is_customer"),
            },
            {
                "number": 2,
                "assign": "user",
                "team": None,
                "user": "zhang@t.io",
                "when": when("lead.employees >= 10000"),
            },
            {
                "number": 3,
                "assign": "round_robin",
                "team": "east",
                "user": None,
                "when": when('lead.region in ["Shanghai", "Jiangsu"]'),
            },
            {"number": 4, "assign": "team", "team": "inbound", "user": None, "when": None},
        ],
        "sla": {
            "seconds": 86400,
            "action": "reassign",
            "escalate_to": "boss@t.io",
            "remind_seconds": None,
        },
    }
    return {**base, **changes}


def lead(**fields: Any) -> LeadView:
    return LeadView(id=1, fields=fields)


def test_the_first_rule_that_holds_wins_and_says_why() -> None:
    choice = choose(routing(), lead(region="Shanghai"), [], NOW, Desk())

    assert (choice.owner, choice.how, choice.team, choice.rule) == (
        "wang.fang@t.io",
        "round_robin",
        "east",
        3,
    )
    assert choice.reason.startswith("rule 3 (lead.region in [")
    assert choice.reason.endswith("→ team east → wang.fang@t.io, round robin")


def test_a_customer_goes_to_its_owner() -> None:
    choice = choose(routing(), lead(is_customer=True, owner="Zoe@T.io"), [], NOW, Desk())

    assert (choice.owner, choice.how) == ("zoe@t.io", "owner")


def test_a_rule_that_finds_nobody_is_passed_over_with_its_reason() -> None:
    desk = Desk(away=frozenset({"zhang@t.io"}))

    choice = choose(routing(), lead(is_customer=True, employees=20000), [], NOW, desk)

    assert (choice.owner, choice.rule) == ("amy@t.io", 4)
    assert "rule 1 (lead.is_customer): the lead has no owner yet" in choice.reason
    assert "rule 2 (lead.employees >= 10000): zhang@t.io is away" in choice.reason
    assert choice.reason.endswith("team inbound → amy@t.io, fewest open leads")


def test_team_gives_the_member_with_fewest_open_leads_skipping_full_ones() -> None:
    assert choose(routing(), lead(), [], NOW, Desk(open={"amy@t.io": 3})).owner == "tom@t.io"
    desk = Desk(open={"amy@t.io": 3}, today={"tom@t.io": 2})  # tom's daily cap is 2
    assert choose(routing(), lead(), [], NOW, desk).owner == "amy@t.io"


def test_weighted_round_robin_gives_weight_2_twice_as_many() -> None:
    crew = teams(routing())["east"]
    turns: Counter[tuple[str, str]] = Counter()
    for _ in range(300):
        member = pick("round_robin", "east", crew, Desk(turns=turns))
        assert member is not None
        turns["east", member] += 1

    assert turns == {("east", "li.na@t.io"): 100, ("east", "wang.fang@t.io"): 200}


def test_round_robin_skips_the_away_and_the_excluded() -> None:
    crew = teams(routing())["east"]
    away = Desk(away=frozenset({"wang.fang@t.io"}))

    assert pick("round_robin", "east", crew, away) == "li.na@t.io"
    assert pick("round_robin", "east", crew, away, exclude=frozenset({"li.na@t.io"})) is None


def test_when_nobody_can_be_assigned_the_escalation_user_gets_it() -> None:
    everyone = frozenset({"amy@t.io", "tom@t.io"})

    choice = choose(routing(), lead(), [], NOW, Desk(away=everyone))

    assert (choice.owner, choice.how) == ("boss@t.io", "escalation")
    assert choice.reason == (
        "rule 4 (otherwise): team inbound: nobody available; escalated to boss@t.io"
    )


def test_without_an_escalation_user_the_mql_waits_unassigned() -> None:
    rules = routing(sla=None, rules=routing()["rules"][:3])

    choice = choose(rules, lead(region="Beijing"), [], NOW, Desk())

    assert (choice.owner, choice.how) == (None, "none")
    assert choice.reason == "no routing rule held; nobody assigned"


def test_routing_deployed_before_teams_still_reads() -> None:
    old = {"rules": [{"assign": "user", "team": "zhang@t.io", "when": None}], "sla": None}

    choice = choose(old, lead(), [], NOW, Desk())

    assert (choice.owner, choice.rule, choice.reason) == (
        "zhang@t.io",
        1,
        "rule 1 (otherwise) → zhang@t.io",
    )


def deployed(body: dict[str, Any]) -> Definition:
    """The routing `body` as `nurture deploy` stores it: the active routing."""
    return Definition(
        kind="routing", name="", version=1, content_hash="0" * 64, body=body, source="routing"
    )


def test_the_rules_evaluated_apart_choose_as_the_lead_would() -> None:
    # The dry run keeps only which rules hold (holding) and chooses later (choose_by)
    lead = LeadView(1, {"region": "Shanghai", "employees": 20}, frozenset(), "mql")
    holds = holding(routing(), lead, [], NOW)
    desk = Desk(turns={("east", "li.na@t.io"): 1})

    assert holds == (False, False, True, True)
    assert choose_by(routing(), holds, None, desk) == choose(routing(), lead, [], NOW, desk)
    assert choose_by(routing(), holds, None, desk).owner == "wang.fang@t.io"


def test_after_the_deadline_the_mql_never_goes_back_to_somebody_who_had_it() -> None:
    def again() -> Choice:
        raise AssertionError("only an MQL nobody held goes through the rules again")

    had = frozenset({"li.na@t.io"})
    desk = Desk()

    moved = after_deadline(routing(), "li.na@t.io", "east", "round_robin", had, desk, again)
    escalated = after_deadline(
        routing(), "wang.fang@t.io", "east", "round_robin", had | {"wang.fang@t.io"}, desk, again
    )
    nobody = after_deadline(
        routing(),
        "boss@t.io",
        "east",
        "round_robin",
        had | {"wang.fang@t.io", "boss@t.io"},
        desk,
        again,
    )

    assert moved is not None and moved.owner == "wang.fang@t.io"
    assert moved.reason == "team east → wang.fang@t.io, round robin, after li.na@t.io"
    assert escalated is not None and escalated.how == "escalation"
    assert escalated.owner == "boss@t.io"
    assert nobody is None


def test_a_rule_reads_the_leads_account_as_lead_account() -> None:
    # Given a rule on the account's status, written as the language spells it
    rule = {"number": 1, "assign": "user", "team": None, "user": "zhang@t.io"}
    rules = [{**rule, "when": when('lead.account.status == "opportunity"')}]
    deal = LeadView(1, {"account_status": "opportunity"}, frozenset(), "mql")
    other = LeadView(2, {"account_status": "prospect"}, frozenset(), "mql")

    # Then a lead of an open deal is given by it, with the rule in the language's words
    chosen = choose(routing(rules=rules), deal, [], NOW, Desk())
    assert chosen.owner == "zhang@t.io"
    assert chosen.reason == 'rule 1 (lead.account.status == "opportunity") → zhang@t.io'
    assert choose(routing(rules=rules), other, [], NOW, Desk()).owner == "boss@t.io"
