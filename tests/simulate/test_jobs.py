"""`simulate --jobs N`: the leads shared between processes give the report one process gives."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import dsl
from nurture.simulate import Rates, Settings, Simulation, synthetic_leads
from nurture.simulate.model import Enrollment, Lead
from nurture.simulate.shards import simulate_jobs
from tests.simulate.helpers import cli, program, write

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
FLOW = """\
campaign "Demo"
  enroll when lead created
  window weekdays 09:00-18:00 lead time
  cap 2 per week
  send email "hello" subject "Hi"
  if opened within 2 days:
    send email "more" subject "More"
    if clicked within 3 days:
      mql
  else:
    wait 3 days
    send email "nudge" subject "Nudge"
"""
ROUTING = """\
team "inbound"
  member "amy@acme.example"
  member "tom@acme.example"
routing
  assign round robin team "inbound" otherwise
  accept within 24 hours else reassign, then escalate to user "amy@acme.example"
"""


def example_program() -> dsl.CompiledProgram:
    sources = {str(p): p.read_text(encoding="utf-8") for p in sorted(CAMPAIGNS.glob("*.nurture"))}
    return dsl.build(sources, dsl.FileTemplates())


def test_the_json_report_and_its_trace_are_the_same_whatever_the_jobs(tmp_path: Path) -> None:
    # Given a flow whose clickers become MQLs, and a routing that hands them to sales
    write(tmp_path, FLOW)
    write(tmp_path, ROUTING, "routing.nurture")
    args = [str(tmp_path), "--leads", "1200", "--days", "20", "--seed", "7", "--trace", "--json"]
    args += ["--open-rate", "0.6", "--click-rate", "0.5"]

    # When it runs in one process, in two and in three
    outputs = {jobs: cli(*args, "--jobs", str(jobs)) for jobs in (1, 2, 3)}

    # Then the three reports (the handoff and its trace too) are the same, to the byte
    assert {code for code, _, _ in outputs.values()} == {0}
    one = outputs[1][1]
    assert outputs[2][1] == one and outputs[3][1] == one
    data = json.loads(one)
    assert data["mql"]["count"] > 50 and data["handoff"]["mqls"] == data["mql"]["count"]
    assert any("reassigned" in line or "accepted" in line for line in data["trace"])


def test_the_table_is_the_same_whatever_the_jobs(tmp_path: Path) -> None:
    write(tmp_path, FLOW)
    write(tmp_path, ROUTING, "routing.nurture")
    args = [str(tmp_path), "--leads", "700", "--days", "10", "--trace", "--open-rate", "0.7"]

    code, one, _ = cli(*args, "--jobs", "1")
    _, two, _ = cli(*args, "--jobs", "2")

    assert code == 0 and "Handoff to sales" in one
    assert two == one


def test_shares_of_the_example_campaigns_add_up_to_the_run_in_one_process() -> None:
    # Given every example campaign, with leads who react, unsubscribe and get stuck or not
    prog = example_program()
    settings = Settings(leads=600, days=30, seed=5, rates=Rates(unsubscribe=0.02))

    # When the leads run in one process, and shared between two and four
    whole = Simulation(prog, settings, synthetic_leads(600, 5, prog)).run()
    shared = [simulate_jobs(prog, settings, None, jobs) for jobs in (2, 4)]

    # Then every number is the same, in-flight leads and each campaign's MQLs included
    assert whole["engine"]["steps"] > 10_000 and whole["in_flight"]["enrollments"] > 0
    assert shared == [whole, whole]


def test_a_profile_files_rows_are_shared_too(tmp_path: Path) -> None:
    write(tmp_path, FLOW)
    rows = ["id,email,persona"] + [f"p{i},p{i}@acme.example,cxo" for i in range(600)]
    (tmp_path / "leads.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    args = [str(tmp_path / "flow.nurture"), "--profile", str(tmp_path / "leads.csv"), "--json"]

    code, one, err = cli(*args, "--jobs", "1", "--open-rate", "0.5")
    _, two, _ = cli(*args, "--jobs", "2", "--open-rate", "0.5")

    assert code == 0, err
    assert two == one and json.loads(one)["leads"] == 600


def test_each_lead_does_the_same_in_whichever_share_it_runs() -> None:
    # Given the leads from the 100th to the 200th drawn alone, and within all of them
    prog = program(FLOW)
    alone = list(synthetic_leads(300, 2, prog, 100, 200))
    within = list(synthetic_leads(300, 2, prog))[100:200]

    # Then they are the same leads
    assert alone == within and alone[0].id == "L000101"


def test_a_share_lets_each_lead_go_when_its_run_ends() -> None:
    # Given a share of the example campaigns' leads, many still in flight at the end
    prog = example_program()
    settings = Settings(leads=400, days=30, seed=2)
    simulation = Simulation(prog, settings, synthetic_leads(400, 2, prog, 300, 360), first=300)

    # When it runs (the simulation and its counters kept alive)
    part = simulation.part()

    # Then it counted its 60 leads and holds none of them
    assert part.totals.leads == 60 and part.totals.in_flight > 0
    held = [o for o in gc.get_objects() if isinstance(o, (Lead, Enrollment))]
    assert held == []
