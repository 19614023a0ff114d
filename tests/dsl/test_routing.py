"""Teams and routing beyond the goldens: across files, template variables, the compiled contract."""

from __future__ import annotations

import pytest

from dsl import DictTemplates, DslError, analyze, build
from dsl.errors import Diagnostic

INBOUND = 'team "inbound"\n  member "amy@x.io"\n'
MANAGERS = 'team "managers"\n  member "boss@x.io" name "Boss"\n'
ROUND_ROBIN = 'routing\n  assign round robin team "inbound" otherwise\n'
HANDOFF_EMAIL = (
    "{% block subject %}New MQL: {{ lead.email }}{% endblock %}"
    "{% block html %}{{ owner.name }} {{ mql.reason }} {{ mql.sla_due_at }}"
    "{% for e in timeline %}{{ e.at }} {{ e.what }}{% endfor %}"
    "<a href='{{ links.accept }}'>a</a><a href='{{ links.return }}'>r</a>{% endblock %}"
)


def check(sources: dict[str, str], templates: dict[str, str] | None = None) -> list[Diagnostic]:
    analysis = analyze(sources, None if templates is None else DictTemplates(templates))
    return list(analysis.diagnostics)


def codes(found: list[Diagnostic]) -> list[str]:
    return [d.code for d in found]


def test_teams_and_routing_may_be_in_different_files() -> None:
    # Given the teams in one file and the routing that uses them in another
    sources = {"teams.nurture": INBOUND + MANAGERS, "routing.nurture": ROUND_ROBIN}
    sources["routing.nurture"] += '  accept within 1 day else escalate to user "boss@x.io"\n'

    # Then they are checked together, with nothing to report
    assert check(sources) == []


def test_a_member_may_be_in_several_teams_with_their_own_options() -> None:
    # Given one person in two teams, with a different weight in each
    teams = 'team "east"\n  member "amy@x.io" weight 3\n' + INBOUND
    routing = ROUND_ROBIN.replace("otherwise", 'when lead.region == "x"')
    routing += '  assign to team "east" otherwise\n'

    # When it is checked and compiled
    found = check({"r.nurture": teams + routing})
    compiled = build({"r.nurture": teams + routing}).routing

    # Then that is no duplicate, and each team keeps its own options
    assert found == []
    assert compiled is not None
    assert compiled["teams"]["east"][0]["weight"] == 3
    assert compiled["teams"]["inbound"][0]["weight"] == 1


def test_teams_without_a_routing_block_warn_and_compile_no_routing() -> None:
    # Given teams and no routing block
    found = check({"t.nurture": INBOUND})

    # Then each is reported as unused, and the program compiles without routing
    assert codes(found) == ["unused-team"]
    assert build({"t.nurture": INBOUND}).routing is None


def test_a_team_used_only_for_escalation_is_used() -> None:
    source = INBOUND + MANAGERS + ROUND_ROBIN
    source += '  accept within 1 day else reassign, then escalate to user "boss@x.io"\n'
    assert check({"r.nurture": source}) == []
    compiled = build({"r.nurture": source}).routing
    assert compiled is not None and set(compiled["teams"]) == {"inbound", "managers"}


def test_reassign_without_team_rules_is_fine_when_it_then_escalates() -> None:
    source = MANAGERS + "routing\n  assign to owner otherwise\n"
    source += '  accept within 1 day else reassign, then escalate to user "boss@x.io"\n'
    assert check({"r.nurture": source}) == []


def test_notify_by_templates_get_the_handoff_variables() -> None:
    # Given notify-by templates that read the lead, owner, MQL, timeline and links
    source = INBOUND + ROUND_ROBIN + '  notify by email "sales/mql" and wecom "sales/card"\n'
    card = '{"text": {{ (lead.email ~ " " ~ owner.email ~ " " ~ links.accept) | tojson }}}'
    templates = {"sales/mql.email": HANDOFF_EMAIL, "sales/card.wecom": card}

    # Then they are found by channel, and none of those names is unknown
    assert check({"r.nurture": source}, templates) == []


def test_a_campaign_template_may_not_use_the_handoff_variables() -> None:
    source = 'campaign "A"\n  enroll when lead created\n  send email "t"\n'
    found = check({"a.nurture": source}, {"t.email": HANDOFF_EMAIL})
    unknown = sorted(d.message.split("`")[1] for d in found if d.code == "unknown-variable")
    assert unknown == ["links", "mql", "owner", "timeline"]


def test_a_notify_by_email_without_a_subject_block_says_to_add_one_to_the_template() -> None:
    source = INBOUND + ROUND_ROBIN + '  notify by email "sales/mql"\n'
    found = check({"r.nurture": source}, {"sales/mql.email": "{{ lead.email }}"})
    assert codes(found) == ["missing-subject"]
    assert found[0].hint == "add {% block subject %} to the template"


def test_without_a_template_source_notify_templates_are_not_checked() -> None:
    source = INBOUND + ROUND_ROBIN + '  notify by webhook "crm/nowhere"\n'
    assert check({"r.nurture": source}) == []
    assert codes(check({"r.nurture": source}, {})) == ["unknown-template"]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        pytest.param("  remind 2 hourz before\n", "unknown-unit", id="remind-unit"),
        pytest.param("  remind 0 hours before\n", "zero-duration", id="remind-zero"),
        pytest.param('  return reasons: "", "x"\n', "empty-name", id="empty-reason"),
        pytest.param('  notify by email ""\n', "empty-name", id="empty-template"),
    ],
)
def test_routing_lines_share_the_checks_of_durations_and_names(line: str, code: str) -> None:
    source = INBOUND + ROUND_ROBIN + "  accept within 1 day else reassign\n" + line
    assert code in codes(check({"r.nurture": source}))


def test_empty_team_and_member_names_are_empty_names() -> None:
    source = 'team ""\n  member ""\n' + ROUND_ROBIN.replace("inbound", "")
    assert set(codes(check({"r.nurture": source}))) == {"empty-name"}


def test_a_remind_with_an_unknown_unit_is_not_compared_with_the_deadline() -> None:
    source = INBOUND + ROUND_ROBIN + "  accept within 1 dya else reassign\n"
    source += "  remind 4 hours before\n"
    assert codes(check({"r.nurture": source})) == ["unknown-unit"]


def test_the_compiled_routing_is_exactly_the_engine_contract() -> None:
    # Given every kind of rule, notify channels, an SLA with reminder and reasons
    source = (
        INBOUND + MANAGERS + "routing\n"
        "  assign to owner when lead.is_customer\n"
        '  assign to user "boss@x.io" when lead.employees >= 10000\n'
        '  assign to team "inbound" when lead.region == "x"\n'
        '  assign round robin team "inbound" otherwise\n'
        '  return reasons: "no budget", "not a fit"\n'
        '  notify by webhook "crm/mql"\n'
        '  accept within 2 days else escalate to user "boss@x.io"\n'
    )

    # When it is compiled
    routing = build({"r.nurture": source}).routing

    # Then it has exactly the agreed keys and values
    assert routing is not None
    assert set(routing) == {"teams", "rules", "notify", "sla", "return_reasons", "path"}
    assert routing["path"] == "r.nurture"  # notices find their templates beside it
    assert routing["teams"]["managers"] == [
        {
            "email": "boss@x.io",
            "name": "Boss",
            "weight": 1,
            "wecom": None,
            "phone": None,
            "daily_cap": None,
        }
    ]
    rules = routing["rules"]
    assert [(r["number"], r["line"], r["assign"], r["team"], r["user"]) for r in rules] == [
        (1, 6, "owner", None, None),
        (2, 7, "user", None, "boss@x.io"),
        (3, 8, "team", "inbound", None),
        (4, 9, "round_robin", "inbound", None),
    ]
    assert rules[0]["when"] == {"op": "truthy", "field": "is_customer"}
    assert rules[3]["when"] is None
    assert routing["notify"] == [{"channel": "webhook", "template": "crm/mql"}]
    assert routing["sla"] == {
        "seconds": 172800,
        "action": "escalate",
        "escalate_to": "boss@x.io",
        "remind_seconds": None,
    }
    assert routing["return_reasons"] == ["no budget", "not a fit"]


def test_routing_without_sla_compiles_sla_null_and_no_reasons() -> None:
    routing = build({"r.nurture": INBOUND + ROUND_ROBIN}).routing
    assert routing is not None
    assert routing["sla"] is None and routing["return_reasons"] == [] and routing["notify"] == []


def test_a_routing_error_stops_the_build() -> None:
    with pytest.raises(DslError, match="unknown-team"):
        build({"r.nurture": ROUND_ROBIN})


def test_a_weight_of_thousands_of_digits_is_a_bad_member_not_a_crash() -> None:
    # Given a weight longer than Python's int() reads from text
    source = INBOUND.replace('"amy@x.io"', '"amy@x.io" weight ' + "9" * 5000) + ROUND_ROBIN

    # Then it is reported where it stands, shortened
    found = check({"r.nurture": source})
    assert codes(found) == ["bad-member"]
    assert found[0].message == "a weight of 99999999... (5,000 digits) is not possible"
