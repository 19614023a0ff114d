"""A hard bounce closes only its channel: later sends there are withheld, the flow goes on."""

from __future__ import annotations

from pathlib import Path

from nurture.simulate import Rates, Settings, Simulation, synthetic_leads
from nurture.simulate.shards import simulate_jobs
from tests.simulate.helpers import campaign, cli, program, run, step, write
from tests.simulate.test_jobs import example_program

MIXED = """\
campaign "Mixed"
  send email "a/one"
  wait 1 day
  send sms "a/two"
  wait 1 day
  send email "a/three"
  wait 1 day
  tag "reached the end"
"""
BOUNCING = Rates(open=0.0, click=0.0, reply=0.0, event=0.0, bounce=1.0)


def test_a_bounced_channel_is_suppressed_and_the_campaign_goes_on() -> None:
    # Given leads whose every message bounces hard
    report = run(program(MIXED), leads=12, days=10, rates=BOUNCING)

    # Then the first email and the SMS went out (each bounced, closing its own channel),
    # the second email was withheld, and every lead still reached the end of the flow
    assert [step(report, n)["sent"] for n in ("n1", "n3", "n5")] == [12, 12, 0]
    assert step(report, "n5")["suppressed"] == 12
    assert report["events"] == {"bounced_hard": 24}
    mixed = campaign(report, "Mixed")
    assert mixed["completed"] == 12 and mixed["exits"] == {} and mixed["suppressed"] == 12


def test_without_bounces_nothing_is_withheld() -> None:
    report = run(program(MIXED), leads=12, days=10, rates=Rates(open=0.0, bounce=0.0))

    assert [step(report, n)["sent"] for n in ("n1", "n3", "n5")] == [12, 12, 12]
    assert campaign(report, "Mixed")["suppressed"] == 0


def test_the_table_shows_the_withheld_touches(tmp_path: Path) -> None:
    write(tmp_path, MIXED)

    code, out, err = cli(str(tmp_path), "--leads", "12", "--days", "10", "--bounce-rate", "1")
    _, plain, _ = cli(str(tmp_path), "--leads", "12", "--days", "10")

    assert code == 0, err
    assert "suppressed" in out and "suppressed" not in plain
    code, _, err = cli(str(tmp_path), "--bounce-rate", "2")
    assert code == 2 and "--bounce-rate must be between 0 and 1 (got 2.0)" in err


def test_bounces_give_the_same_numbers_whatever_the_jobs() -> None:
    prog = example_program()
    settings = Settings(leads=600, days=30, seed=5, rates=Rates(bounce=0.05, unsubscribe=0.01))

    whole = Simulation(prog, settings, synthetic_leads(600, 5, prog)).run()
    shared = simulate_jobs(prog, settings, None, 2)

    assert sum(c["suppressed"] for c in whole["campaigns"]) > 0
    assert shared == whole
