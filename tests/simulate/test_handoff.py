"""The handoff in a dry run: MQLs routed by the routing file, the SLA on the virtual clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from nurture.simulate import Settings, Simulation, synthetic_leads
from tests.simulate.helpers import cli, program, report, write

CAMPAIGN = 'campaign "Demo"\n  enroll when lead created\n  send email "hello" subject "Hi"\n  mql\n'
"""Every lead becomes an MQL as it arrives."""
ROUTING = """\
team "inbound"
  member "amy@acme.example"
  member "tom@acme.example"{tom}
team "managers"
  member "vip@acme.example"
  member "boss@acme.example"
routing
  assign to user "vip@acme.example" when lead.employees >= 100000
  assign round robin team "inbound" otherwise
  accept within 24 hours else reassign, then escalate to user "boss@acme.example"
"""


def simulate(
    leads: int = 10,
    days: int = 10,
    tom: str = "",
    trace: list[str] | None = None,
    **answers: Any,
) -> dict[str, Any]:
    prog = program(CAMPAIGN, routing=ROUTING.format(tom=tom))
    settings = Settings(leads=leads, days=days, seed=3, **answers)
    report = Simulation(
        prog, settings, synthetic_leads(leads, 3, prog), None, trace.append if trace else None
    ).run()
    section: dict[str, Any] = report["handoff"]
    return section


def test_mqls_that_sales_accept_in_time_stay_with_the_round_robin_member() -> None:
    # Given sales who accept every MQL within two hours
    trace = [""]
    handoff = simulate(
        12, accept_rate=1.0, accept_after=(timedelta(hours=1), timedelta(hours=2)), trace=trace
    )

    # Then every MQL went to the team by round robin, half each, and was accepted in time
    assert handoff["mqls"] == handoff["assigned"] == 12
    assert handoff["accepted_in_time"] == 12 and handoff["reassigned"] == 0
    assert handoff["members"]["amy@acme.example"]["assigned"] == 6
    assert handoff["members"]["tom@acme.example"]["assigned"] == 6
    assert handoff["teams"]["inbound"] == {"assigned": 12, "accepted": 12, "expired": 0}
    assert 1 <= handoff["hours_to_accept_median"] <= 2
    # And the trace tells each assignment with its reason words, in time order
    lines = trace[1:]
    assert sum("rule 2 (otherwise) → team inbound → " in line for line in lines) == 12
    assert sum("round robin" in line for line in lines) == 12
    assert sum(" accepted by " in line for line in lines) == 12
    assert lines == sorted(lines, key=lambda line: line[:16])


def test_mqls_nobody_accepts_are_reassigned_then_escalated_then_stay() -> None:
    # Given sales who never accept, and ten days for the clock to run
    trace = [""]
    handoff = simulate(4, accept_rate=0.0, trace=trace)

    # Then each MQL moved to the other member after a day, then to the escalation user,
    # then nobody was left and its clock stopped
    assert handoff["accepted"] == 0
    assert handoff["escalated"] == 4 and handoff["nobody_left"] == 4
    assert handoff["reassigned"] >= 4
    assert handoff["waiting_at_end"] == 4 and handoff["unassigned"] == 0
    text = "\n".join(trace[1:])
    assert "not accepted within 1 day by amy@acme.example → tom@acme.example" in text
    assert "nobody left to reassign to; escalated to boss@acme.example" in text
    assert "the SLA clock stopped" in text
    for line in trace[1:]:  # never back to somebody who had it
        if " → " in line and "not accepted" in line:
            before = line.split(" by ", 1)[1].split(" → ")[0]
            after = line.split(" → ", 1)[1].split(":")[0]
            assert before != after


def test_a_member_at_their_daily_cap_gets_no_more_that_day() -> None:
    handoff = simulate(10, days=1, tom=" cap 2 per day", accept_rate=1.0)

    assert handoff["members"]["tom@acme.example"]["assigned"] == 2
    assert handoff["members"]["amy@acme.example"]["assigned"] == 8


def test_the_same_seed_gives_the_same_handoff_and_the_share_accepting_follows_the_rate() -> None:
    one = simulate(200, days=20, accept_rate=0.5)
    two = simulate(200, days=20, accept_rate=0.5)

    assert one == two
    first_owner_accepts = one["members"]["amy@acme.example"]["accepted"]
    assert 0 < first_owner_accepts < one["members"]["amy@acme.example"]["assigned"]
    assert 40 <= one["accepted_in_time"] <= 160


def test_a_deadline_after_the_end_of_the_run_leaves_the_mql_waiting() -> None:
    handoff = simulate(3, days=1, accept_rate=0.0)

    assert handoff["reassigned"] + handoff["escalated"] <= 3
    assert handoff["waiting_at_end"] == 3


def test_without_a_routing_there_is_no_handoff_section() -> None:
    prog = program(CAMPAIGN)
    report = Simulation(prog, Settings(leads=3, days=2), synthetic_leads(3, 0, prog)).run()
    assert report["handoff"] is None


def test_bad_answers_are_refused_by_name() -> None:
    assert Settings(accept_rate=1.5).problems() == [
        "--accept-rate must be between 0 and 1 (got 1.5)"
    ]
    backwards = Settings(accept_after=(timedelta(hours=4), timedelta(hours=1))).problems()
    assert backwards == ["--accept-after must be a range from a shorter to a longer time"]


def test_the_command_prints_the_handoff_and_its_trace(tmp_path: Path) -> None:
    write(tmp_path, CAMPAIGN)
    write(tmp_path, ROUTING.format(tom=""), "routing.nurture")
    args = [str(tmp_path), "--leads", "6", "--days", "5", "--accept-rate", "0"]

    code, text, _ = cli(*args, "--accept-after", "1h..2h", "--trace")
    data = report(*args, "--accept-after", "1h..2h", "--trace")

    assert code == 0
    assert "Handoff to sales" in text and "reassigned after the SLA ran out" in text
    assert "→ amy@acme.example: rule 2 (otherwise) → team inbound" in text
    assert data["handoff"]["mqls"] == 6 and data["handoff"]["accept_after_hours"] == [1.0, 2.0]
    assert any("escalated to boss@acme.example" in line for line in data["trace"])
    code, _, err = cli(*args, "--accept-after", "soon")
    assert code == 2 and "--accept-after 'soon': not a duration" in err


def test_synthetic_customers_have_an_account_owner_that_assign_to_owner_finds() -> None:
    # Given a routing whose first rule sends customers to their owner
    routing = ROUTING.format(tom="").replace(
        "routing\n", "routing\n  assign to owner when lead.is_customer\n"
    )
    prog = program(CAMPAIGN, routing=routing)
    leads = list(synthetic_leads(400, 3, prog))
    customers = [lead for lead in leads if lead.fields["is_customer"]]
    assert customers, "the seed gives no customer among 400 leads"

    # Then each synthetic customer's account has an owner from the routing's members
    everyone = {"amy@acme.example", "tom@acme.example", "vip@acme.example", "boss@acme.example"}
    assert {lead.fields["account_owner"] for lead in customers} <= everyone
    assert all("account_owner" not in lead.fields for lead in leads if lead not in customers)

    # And a dry run hands each customer's MQL to that owner, by the owner rule
    trace = [""]
    report = Simulation(prog, Settings(leads=400, days=3, seed=3), iter(leads), None, trace.append)
    handoff = report.run()["handoff"]
    owned = [line for line in trace if "rule 1 (lead.is_customer) → its owner " in line]
    assert len(owned) == len(customers) and handoff["assigned"] == 400
