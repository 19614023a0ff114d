"""A run pauses the cyclic garbage collector: that is safe only while it makes no garbage cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

import dsl
from nurture.simulate import Rates, Settings, Simulation, synthetic_leads
from nurture.simulate.model import Enrollment, Lead

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """Whatever the test does to the collector is undone afterwards."""
    enabled = gc.isenabled()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()


@pytest.mark.usefixtures("collector_restored")
def test_a_run_of_the_example_campaigns_makes_no_garbage_cycles() -> None:
    # Given every example campaign, with leads who react and some who unsubscribe
    sources = {str(p): p.read_text(encoding="utf-8") for p in sorted(CAMPAIGNS.glob("*.nurture"))}
    program = dsl.build(sources, dsl.FileTemplates())
    settings = Settings(leads=150, days=120, seed=4, rates=Rates(unsubscribe=0.05))
    simulation = Simulation(program, settings, synthetic_leads(150, 4, program))
    gc.collect()  # what compiling left behind
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what a collection finds, to look at

    # When it runs (the simulation itself kept alive)
    report = simulation.run()

    # Then a collection finds nothing, and the run left the collector as it found it (off)
    assert report["engine"]["steps"] > 1000
    assert gc.collect() == 0 and gc.garbage == []
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
def test_a_run_turns_the_collector_back_on() -> None:
    program = dsl.build({"a.nurture": 'campaign "A"\n  send email "a"\n'})
    gc.enable()

    Simulation(program, Settings(leads=3, days=2), synthetic_leads(3, 0, program)).run()

    assert gc.isenabled()


def test_a_run_lets_each_lead_go_when_its_run_ends() -> None:
    # Given the example campaigns over 30 days: many leads are still in flight at the end
    sources = {str(p): p.read_text(encoding="utf-8") for p in sorted(CAMPAIGNS.glob("*.nurture"))}
    program = dsl.build(sources, dsl.FileTemplates())
    simulation = Simulation(
        program, Settings(leads=60, days=30, seed=2), synthetic_leads(60, 2, program)
    )

    # When it runs (the simulation itself kept alive)
    report = simulation.run()

    # Then every lead was counted, in flight ones too, and none is held any longer
    assert report["leads"] == 60 and report["in_flight"]["enrollments"] > 0
    held = [o for o in gc.get_objects() if isinstance(o, (Lead, Enrollment))]
    assert held == []
