"""`simulate --jobs N`: the leads in shares across processes, their counters added up.

Leads are independent (`run`), and each draws from its own random stream
seeded by the run's seed and its place among the leads, so a lead does the
same thing in whichever process it runs. The leads are cut into consecutive
shares of at most `SHARE` leads, several per process so that a slow share
does not leave a core idle; each worker process simulates a share
(`Simulation.part`) and sends back its counters and the MQLs it noted for the
sales desk. The main process adds the shares up in the leads' order and then
plays the desk over every MQL, as one process would: the report is the same
whatever N is. A worker holds one share's leads at a time and lets each go
when its run ends, so memory stays flat in the number of leads; synthetic
leads are drawn in the worker, a profile file's rows are sent with the share.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from dsl.graph import CompiledProgram
from nurture.simulate.handoff import Trace
from nurture.simulate.leads import Profile, synthetic_leads
from nurture.simulate.model import Progress, Settings
from nurture.simulate.report import LeadTotals
from nurture.simulate.run import Part, Simulation

SHARE = 2000
"""The most leads in one share: small enough to spread evenly, big enough to be cheap."""
SHARES_PER_JOB = 4
MIN_SHARE = 250
"""Fewer leads than this per process are not worth a process: they run in this one."""

_program: CompiledProgram | None = None
_settings: Settings | None = None


def cores() -> int:
    """The cores this process may run on (the default for `--jobs`)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def simulate_jobs(
    program: CompiledProgram,
    settings: Settings,
    rows: Sequence[Profile] | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    trace: Trace | None = None,
) -> dict[str, Any]:
    """The report of a dry run over `jobs` processes: the same whatever `jobs` is.

    `rows`: the leads (a profile file's, `settings.leads` of them at most);
    None: `settings.leads` synthetic leads from `settings.seed`.
    """
    count = settings.leads if rows is None else min(settings.leads, len(rows))
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1 (got {jobs})")
    jobs = min(jobs, max(1, count // MIN_SHARE))
    if jobs == 1:
        leads = synthetic_leads(count, settings.seed, program) if rows is None else rows
        return Simulation(program, settings, leads, progress, trace).run()
    whole = Simulation(program, settings, (), progress, trace)
    """Runs no lead: adds the shares' counters up, and plays the sales desk over their MQLs."""
    size = min(SHARE, math.ceil(count / (jobs * SHARES_PER_JOB)))
    shares = [(first, min(first + size, count)) for first in range(0, count, size)]
    totals, done = LeadTotals(), 0
    context = multiprocessing.get_context("fork" if os.name == "posix" else None)
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_start, initargs=(program, settings)
    ) as pool:
        try:
            work = [(a, b, None if rows is None else list(rows[a:b])) for a, b in shares]
            for part in pool.map(_share, work):
                whole.add(part)
                totals.add_share(part.totals)
                done += part.totals.leads
                if progress is not None:
                    progress(done / count)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return whole.report(totals)


def _start(program: CompiledProgram, settings: Settings) -> None:
    """A worker's start: the program and settings every share runs with.

    Ctrl-C is for the main process, which stops the run and says so; the
    workers leave it to it rather than each printing a traceback.
    """
    global _program, _settings
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _program, _settings = program, settings


def _share(work: tuple[int, int, list[Profile] | None]) -> Part:
    """Simulate the leads from `first` to `stop` in a worker; their counters."""
    first, stop, rows = work
    assert _program is not None and _settings is not None
    leads = synthetic_leads(_settings.leads, _settings.seed, _program, first, stop)
    return Simulation(_program, _settings, leads if rows is None else rows, first=first).part()
