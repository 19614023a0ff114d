"""A dry run in a child process of its own, killed once it has run too long.

For the console's "simulate": the simulator tells its progress only every
few hundred leads, and one lead of a campaign that loops every minute takes
seconds a year, so a time limit checked in the run would not hold; a child
process is killed whatever it is doing. The child is spawned, not forked
(the server's other threads may hold locks a fork would copy held), and
imports only the simulator, to start quickly.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from dsl.graph import CompiledProgram
from nurture.simulate.leads import synthetic_leads
from nurture.simulate.model import Settings
from nurture.simulate.run import Simulation


class TooLong(Exception):
    """The run had not ended when its time was up, and was killed."""


def run_within(program: CompiledProgram, settings: Settings, seconds: float) -> dict[str, Any]:
    """The report of a dry run of `settings.leads` synthetic leads (``--jobs 1``), run in a
    child process; `TooLong` when it takes more than `seconds`."""
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(program, settings, writer), daemon=True)
    child.start()
    writer.close()
    try:
        if not reader.poll(seconds):
            raise TooLong
        try:
            failed, got = reader.recv()
        except EOFError:
            failed, got = True, f"its process ended with code {child.exitcode}"
    finally:
        child.kill()
        child.join()
        reader.close()
    if failed:
        raise RuntimeError(f"the simulation failed: {got}")
    return dict(got)


def _child(program: CompiledProgram, settings: Settings, writer: Connection) -> None:
    """In the child: run, and send back (False, the report) or (True, what failed)."""
    try:
        leads = synthetic_leads(settings.leads, settings.seed, program)
        writer.send((False, Simulation(program, settings, leads).run()))
    except Exception as e:
        writer.send((True, f"{type(e).__name__}: {e}"))
    finally:
        writer.close()
