"""Simulator throughput: engine steps per second, time and memory, as leads grow.

    python bench/simulate_throughput.py [--leads 25000 50000 100000] [--days 90]
                                        [--campaign Welcome] [--profile N]
                                        [--jobs 1 2] [--jobs-leads 20000] [--jobs-rounds 2]

Runs `nurture simulate campaigns/ --campaign Welcome` (the other campaign files
loaded, so `enroll "Product drip"` and the triggers resolve) once per lead
count, each in a fresh process so peak memory is that run's own. Prints a
table: engine steps, decisions, wall and CPU time, steps per CPU second (the
machine may be shared: CPU time is the steadier number), the share of CPU
time spent inside `engine.decide` and the steps per CPU second it alone
manages, and peak RSS with its growth over the loaded program (flat: the
simulator lets each lead go when its run ends). The time in
`decide` comes from a second, identical run that times every call, less
what the clock reads add to each (measured on a call that does nothing, and
printed), and is a share of the first, untimed run's CPU time, so the
timer's own cost counts nowhere; the column whole-simulator steps/s over
`decide`-alone steps/s is that share, what the simulator leaves to `decide`.
The same timed run also times the core's other parts the simulator calls
(scores and the MQL rule, triggers and reentry): the last column, whole over
core-alone, is the share left to the core as a whole, what the simulator's
own bookkeeping (the agenda, counters, synthetic leads, reactions) does not
take.

A second table runs `--jobs-leads` leads per `--jobs` count (`simulate
--jobs`, a fresh pool of processes each), the counts in turns (1, 2, 1, 2)
for `--jobs-rounds` rounds, each keeping its best times, and compares each
one's wall-clock throughput with the first (1 job). On a machine shared with
other work that ratio is the load's as much as the design's (the load average
and "cores busy", CPU over wall seconds, say how shared it was); the CPU
seconds of all the processes per lead say what sharing the leads costs
however loaded, and what N jobs would give on N idle cores. A third table
starts a pool of 2 workers by `fork` and by `spawn` (what a start method
costs) and gives the bytes a share sends back. `--profile N` also profiles N
leads with cProfile and prints where the time goes, by module and by engine
function.

Measured 6 December 2026 on the shared 2-core machine, second round (load
average 4-5), `--leads 5000 20000 --jobs`:

- whole / `decide`-alone 0.51x at 5,000 leads and 0.56x at 20,000 (goal
  0.7x); `decide` 51-56% of the run, the core's other parts 19-20% (whole /
  core-alone 0.70-0.76x). With this table's accounting (every share of the
  untimed run, clock reads taken off) the first round's code would show about
  0.49-0.53x (these over the 1.02-1.07x below). What is left, 24-30% of the
  run, is the simulator's own; 0.7x with `decide` as fast needs the whole run
  20-27% shorter, that is the simulator's own work cut to a sixth or a tenth
  of itself: the core's other parts alone (scores brought to each event, the
  MQL rule on every event, triggers), which production calls as often, leave
  whole / `decide`-alone at 0.73-0.74x with no simulator at all. Not
  reachable by bookkeeping in Python.
- Where the simulator's own quarter goes (CPU, 5,000 leads, by taking a
  report-only part out in one process, or timing it alone): counting the steps
  each decision ran and the branches taken 2.7%, the 7-day touch maximum 1.9%
  (now mostly skipped, below), the agenda's 113,551 pushes and pops 0.07 s
  (2.6%), seeding two string-seeded random streams a lead (kept: the report
  depends on the draws) about 3%; the rest is the loop driving the core
  (dispatching wake-ups, performing actions, sends and reactions), spread over
  a dozen functions at 1-6% each (`--profile`, pyinstrument, line_profiler).
- The structure, looked at: the lead's `LeadView` is rebuilt only when it
  changes (tags, stage, and scores when an event moves interest), never for a
  decision; its events are one list appended to, never copied; the agenda is
  already one heap of int keys (microseconds since the start, then sequence)
  with a dict beside it; per-step counters are built once per campaign, and
  the trace a decision fills is one list reused; the handoff is noted only
  with a routing and only at an MQL. Datetimes stay: `decide` takes them.
- What was tried this round (one process, CPU, best of 3, 5,000 leads, same
  report byte for byte each time): a campaign enrolled by segments alone asks
  a lead's tags and stage first (`graphs.relaxed`), and skips the candidate and
  `should_enroll` when they shut the lead out: 1.03x, kept; the 7-day touch
  count done only when the lead's kept sends outnumber the most so far: 1.02x,
  kept; the agenda as a heap of `(key, moment, kind, subject, payload)` tuples
  without the dict: 1.00x, dropped. The whole branch against the first
  round's code, the two in turns in fresh processes (4 rounds, best of 2
  each): 2.70 s against 2.64 s best, 2.89 s against 2.69 s on average
  (1.02-1.07x).
- First round: counters as `Counter`s updated a decision at a time were
  slower (3.2-5.2 us a decision against 2.1 us); the MQL rule with cheap
  arguments first and `event ... count` compiled (-23% of its CPU); synthetic
  leads drawn with summed weights: within noise.
- `--jobs` at a quiet moment (second round, load average 1.97 at the start,
  `--leads 1000 --jobs-leads 10000`): same report for 1 and 2 jobs; 2 jobs
  1.89x the wall-clock throughput of 1 (goal 1.7x: met), 5.1 s against 2.7 s,
  CPU per lead 1.01x (0.507 and 0.512 ms), 1.90 cores busy; fork 0.04 s CPU,
  spawn 0.66 s.
- `--jobs` (first round, load 7-9, 10,000 leads): same report for 1 and 2
  jobs; 2 jobs 1.11x the wall-clock throughput of 1, CPU per lead 1.05x (0.589
  and 0.621 ms): the run got 0.40 and 0.47 cores of the 2, so the wall ratio
  is the machine's load; sharing costs 5% more CPU a lead, so on 2 idle cores
  2 jobs would give about 1.9x (goal 1.7x). Pool start-up by `fork` 0.04 s
  CPU, by `spawn` 0.78-0.97 s (each worker imports nurture): fork it is. A
  share of 2,000 leads sends back 32 KB of counters; the program, 11 KB
  pickled, is copied by fork.
- Peak RSS grew 1 MiB at 5,000 leads and 2 MiB at 20,000: flat.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import multiprocessing
import os
import pickle
import pstats
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import dsl
import nurture.simulate.decisions as decisions_module
import nurture.simulate.enrolling as enrolling_module
from dsl.graph import CompiledProgram
from nurture.simulate import Settings, shards, simulate, synthetic_leads
from nurture.simulate.run import Simulation
from nurture.simulate.scores import ScoreKeeper
from nurture.simulate.shards import simulate_jobs

REPO = Path(__file__).resolve().parents[1]
CAMPAIGNS = REPO / "campaigns"
FLAT_MIB = 16
"""Growth between the smallest and largest run below which memory counts as flat."""


def load() -> CompiledProgram:
    files = sorted(CAMPAIGNS.glob("*.nurture"))
    sources = {str(p): p.read_text(encoding="utf-8") for p in files}
    return dsl.build(sources, dsl.FileTemplates())


def rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(leads: int, days: int, campaign: str, seed: int) -> dict[str, Any]:
    """Two runs in this process: one as is (counts, times, memory), one timing the core.

    Timing every call into the core costs two clock reads and a wrapper per
    call, a fifth of the run; the first run goes without, and its CPU time is
    the one every share is of. The second says how long `decide` took, and the
    core's other parts the simulator calls (scores and the MQL rule, kept by
    `ScoreKeeper`; triggers and reentry, `should_enroll` and `may_enter`),
    less what the clock reads themselves add to each timed call (`tick`).
    """
    program = load()
    settings = Settings(leads=leads, days=days, seed=seed, entry=(campaign,))
    base = rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    report = simulate(program, settings, synthetic_leads(leads, seed, program))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = rss_mb()
    gc.collect()
    inside, calls = time_core(program, settings)
    clock = tick()
    decide = inside["decide"] - calls["decide"] * clock
    other = inside["other"] - calls["other"] * clock
    return {
        "leads": leads,
        "steps": report["engine"]["steps"],
        "decisions": report["engine"]["decisions"],
        "wall": wall,
        "cpu": cpu,
        "decide": decide,
        "tick": clock,
        "decide_share": decide / cpu,
        "core_share": (decide + other) / cpu,
        "rss": rss,
        "growth": rss - base,
        "mql": report["mql"]["count"],
        "touches": report["touches_per_lead"]["total"],
    }


class Timer:
    """Wraps functions so that each call's CPU time adds to its part (`inside`) and its count
    to `calls`; a call made from inside another timed one is not timed again."""

    def __init__(self) -> None:
        self.inside: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.busy = False

    def wrap(self, real: Any, part: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.busy:
                return real(*args, **kwargs)
            self.busy = True
            start = time.process_time()
            try:
                return real(*args, **kwargs)
            finally:
                self.inside[part] += time.process_time() - start
                self.calls[part] += 1
                self.busy = False

        return timed


def tick(rounds: int = 200_000) -> float:
    """What timing adds to the time measured inside one call: the clock read's own CPU time,
    measured on a call that does nothing (least of 3)."""
    best = float("inf")
    for _ in range(3):
        timing = Timer()
        nothing = timing.wrap(lambda: None, "nothing")
        for _ in range(rounds):
            nothing()
        best = min(best, timing.inside["nothing"] / rounds)
    return best


def time_core(
    program: CompiledProgram, settings: Settings
) -> tuple[dict[str, float], Counter[str]]:
    """The same run with every call into the core timed: CPU seconds in `decide` and in the
    core's other parts, and how many calls each."""
    timing = Timer()

    enrolling: list[Any] = [enrolling_module, enrolling_module]
    owners = [decisions_module, *enrolling, ScoreKeeper, ScoreKeeper]
    names = ("decide", "should_enroll", "may_enter", "refresh", "mql_due")
    saved = [(owner, name, getattr(owner, name)) for owner, name in zip(owners, names, strict=True)]
    for owner, name, real in saved:  # count the time spent in the core
        setattr(owner, name, timing.wrap(real, "decide" if name == "decide" else "other"))
    try:
        simulate(program, settings, synthetic_leads(settings.leads, settings.seed, program))
        return timing.inside, timing.calls
    finally:
        for owner, name, real in saved:
            setattr(owner, name, real)


def in_child(leads: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", str(leads), "--days", str(args.days)]
    command += ["--campaign", args.campaign, "--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"run with {leads} leads failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def table(rows: list[dict[str, Any]], days: int, campaign: str) -> Table:
    out = Table(title=f"nurture simulate: {campaign!r} over {days} days, one core")
    for name in ("leads", "engine steps", "decisions", "wall s", "CPU s", "steps/s (CPU)"):
        out.add_column(name, justify="right")
    for name in ("in decide", "engine-only steps/s", "peak RSS MiB", "RSS growth", "KiB/lead"):
        out.add_column(name, justify="right")
    out.add_column("whole / decide-alone", justify="right")
    out.add_column("in the core's other parts", justify="right")
    out.add_column("whole / core-alone", justify="right")
    for r in rows:
        out.add_row(
            f"{r['leads']:,}",
            f"{r['steps']:,}",
            f"{r['decisions']:,}",
            f"{r['wall']:.1f}",
            f"{r['cpu']:.1f}",
            f"{r['steps'] / r['cpu']:,.0f}",
            f"{r['decide_share']:.0%}",
            f"{r['steps'] / r['decide']:,.0f}",
            f"{r['rss']:.0f}",
            f"{r['growth']:.0f}",
            f"{r['growth'] * 1024 / r['leads']:.2f}",
            f"{(r['steps'] / r['cpu']) / (r['steps'] / r['decide']):.2f}x",
            f"{r['core_share'] - r['decide_share']:.0%}",
            f"{r['core_share']:.2f}x",
        )
    return out


def cpu_all() -> float:
    """CPU seconds of this process and of its finished children (a pool's workers, once shut)."""
    own, children = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (own, children)))


def jobs_table(args: argparse.Namespace) -> tuple[Table, str]:
    """The same run over 1, 2, ... processes (`--jobs`), in turns: throughput ratios.

    Wall-clock throughput is what a user sees, but on a shared machine it is the load's as
    much as the design's; CPU seconds per lead, summed over every process, are the design's
    alone: if sharing costs no more CPU per lead, N jobs on N idle cores run N times as fast.
    "cores busy" (CPU seconds over wall seconds) says how much of the machine the run got.
    The job counts take `--jobs-rounds` turns (1, 2, 1, 2, ...) and each keeps its best
    wall and CPU time, so a burst of other work does not land on one count alone.
    """
    program = load()
    leads = args.jobs_leads
    settings = Settings(leads=leads, days=args.days, seed=args.seed, entry=(args.campaign,))
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    out = Table(
        title=f"simulate --jobs: {leads:,} leads, {os.cpu_count()} cores, load average {load_avg}"
        f" (best of {args.jobs_rounds})"
    )
    names = ("jobs", "engine steps", "wall s", "steps/s (wall)", "vs 1 job", "CPU s, all processes")
    for name in (*names, "CPU ms/lead", "CPU/lead vs 1 job", "cores busy", "same report"):
        out.add_column(name, justify="right")
    best: dict[int, tuple[float, float, dict[str, Any]]] = {}
    for _ in range(args.jobs_rounds):
        for jobs in args.jobs:
            wall, cpu = time.perf_counter(), cpu_all()
            report = simulate_jobs(program, settings, None, jobs)
            wall, cpu = time.perf_counter() - wall, cpu_all() - cpu
            if jobs in best:
                wall, cpu = min(wall, best[jobs][0]), min(cpu, best[jobs][1])
            best[jobs] = (wall, cpu, report)
    first_wall, first_cpu, first = best[args.jobs[0]]
    said = []
    for jobs, (wall, cpu, report) in best.items():
        rate = report["engine"]["steps"] / wall
        speed, cost = first_wall / wall, cpu / first_cpu
        out.add_row(
            str(jobs),
            f"{report['engine']['steps']:,}",
            f"{wall:.1f}",
            f"{rate:,.0f}",
            f"{speed:.2f}x",
            f"{cpu:.1f}",
            f"{cpu * 1000 / leads:.3f}",
            f"{cost:.2f}x",
            f"{cpu / wall:.2f}",
            "yes" if report == first else "NO",
        )
        if jobs != args.jobs[0]:
            said.append(
                f"{jobs} jobs: {speed:.2f}x the wall-clock throughput, each lead {cost:.2f}x "
                f"the CPU: on {jobs} idle cores, {jobs / args.jobs[0] / cost:.2f}x"
            )
    return out, "; ".join(said)


def startup_table(program: CompiledProgram, settings: Settings) -> Table:
    """What starting a pool of 2 workers costs, by start method, and what a share sends back.

    `fork` copies the loaded program into each worker; `spawn` starts fresh interpreters that
    import nurture and unpickle the program: that is the CPU a start method adds to a run.
    """
    out = Table(title="a pool of 2 workers, started and given one tiny share each")
    for name in ("start method", "CPU s, all processes", "wall s"):
        out.add_column(name, justify="right")
    work = [(0, 10, None), (10, 20, None)]
    for method in ("fork", "spawn"):
        wall, cpu = time.perf_counter(), cpu_all()
        context = multiprocessing.get_context(method)
        with ProcessPoolExecutor(2, context, shards._start, (program, settings)) as pool:
            list(pool.map(shards._share, work))
        out.add_row(method, f"{cpu_all() - cpu:.2f}", f"{time.perf_counter() - wall:.2f}")
    leads = synthetic_leads(shards.SHARE, settings.seed, program)
    part = Simulation(program, settings, leads).part()
    out.caption = (
        f"one share of {shards.SHARE:,} leads sends back {len(pickle.dumps(part)):,} bytes "
        f"(counters, not leads); the program goes to the workers once, "
        f"{len(pickle.dumps(program)):,} bytes pickled (fork copies it instead)"
    )
    return out


def profile(leads: int, args: argparse.Namespace, console: Console) -> None:
    """cProfile one run; print time by module and the engine's heaviest functions."""
    program = load()
    settings = Settings(leads=leads, days=args.days, seed=args.seed, entry=(args.campaign,))
    profiler = cProfile.Profile()
    profiler.runcall(simulate, program, settings, synthetic_leads(leads, args.seed, program))
    stats = pstats.Stats(profiler)
    by_area: Counter[str] = Counter()
    engine: list[tuple[float, float, int, str]] = []
    for (path, line, name), (_, calls, own, total, _) in stats.stats.items():  # type: ignore[attr-defined]
        area = _area(path, name)
        by_area[area] += own
        if area == "nurture/engine":
            engine.append((own, total, calls, f"{Path(path).stem}.{name}:{line}"))
    whole = sum(by_area.values())
    areas = Table(title=f"cProfile, {leads:,} leads: own time by area")
    areas.add_column("area")
    areas.add_column("share", justify="right")
    for area, own in by_area.most_common(8):
        areas.add_row(area, f"{own / whole:.0%}")
    console.print(areas)
    top = Table(title="heaviest engine functions (own time; cumulative includes callees)")
    for name in ("function", "calls", "own %", "cumulative %"):
        top.add_column(name, justify="left" if name == "function" else "right")
    for own, total, calls, where in sorted(engine, reverse=True)[:15]:
        top.add_row(where, f"{calls:,}", f"{own / whole:.1%}", f"{total / whole:.1%}")
    console.print(top)


def _area(path: str, name: str) -> str:
    for area in ("nurture/engine", "nurture/simulate", "dsl"):
        if f"/{area}/" in path:
            return area
    return f"builtins ({name})" if path == "~" else Path(path).name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, nargs="+", default=[25_000, 50_000, 100_000])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--campaign", default="Welcome")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=int, metavar="N", help="also profile N leads")
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 2], help="process counts")
    parser.add_argument("--jobs-leads", type=int, default=20_000, metavar="N")
    parser.add_argument("--jobs-rounds", type=int, default=2, metavar="R", help="turns per count")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.days, args.campaign, args.seed)))
        return
    console = Console() if sys.stdout.isatty() else Console(width=200)
    rows = []
    for leads in args.leads:
        console.print(f"running {leads:,} leads...", style="dim")
        rows.append(in_child(leads, args))
    console.print(table(rows, args.days, args.campaign))
    ticks = ", ".join(f"{r['tick'] * 1e6:.2f}" for r in rows)
    console.print(f"each timed call's clock reads, taken off its time: {ticks} us")
    if len(rows) > 1:
        console.print(memory_verdict(rows[0], rows[-1]))
    if args.jobs:
        console.print(f"running {args.jobs_leads:,} leads with --jobs {args.jobs}...", style="dim")
        jobs, verdict = jobs_table(args)
        console.print(jobs)
        if verdict:
            console.print(verdict)
        program = load()
        settings = Settings(
            leads=shards.SHARE, days=args.days, seed=args.seed, entry=(args.campaign,)
        )
        console.print(startup_table(program, settings))
    if args.profile:
        profile(args.profile, args, console)


def memory_verdict(first: dict[str, Any], last: dict[str, Any]) -> str:
    """Flat (within a few MiB), or how growth per lead compares between the runs (1 = linear)."""
    said = f"RSS growth {first['growth']:.0f} MiB at {first['leads']:,} leads"
    said += f", {last['growth']:.0f} MiB at {last['leads']:,}"
    if last["growth"] - first["growth"] <= FLAT_MIB:
        return f"{said}: flat (each lead is let go when its run ends)"
    ratio = (last["growth"] / max(first["growth"], 1)) / (last["leads"] / first["leads"])
    return f"{said}: {ratio:.2f}x per lead, largest vs smallest run (1 = linear)"


if __name__ == "__main__":
    main()
