"""Campaign tests' speed: how long N tests take to run, engine time alone.

    python bench/campaign_tests.py [--tests 100 1000]

Reads the example tests (`campaigns/tests/*.nurture-test`) and their
campaigns once, then runs the tests over and over until N have run, as
`nurture test` runs each (`campaign_tests.run_test`: the test's scripted leads
together through the simulator's machinery, expectations judged). Prints, per N: wall and CPU
seconds, milliseconds per test, tests per CPU second, and the process's peak
RSS (flat as N grows: a test's leads are let go when it ends). Start-up
(imports, parsing and compiling the campaigns, about a second on a shared
machine) is printed once, apart: it is paid once per `nurture test` run,
whatever N is. The goal: 100 tests in well under a second of engine time.
"""

from __future__ import annotations

import argparse
import resource
import time
from itertools import cycle, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()
    started = time.perf_counter()
    from nurture.campaign_tests import diagnose, load_program, run_test

    files = sorted((ROOT / "campaigns" / "tests").glob("*.nurture-test"))
    program, problems = load_program(files[0])
    assert program is not None, problems
    tests = []
    for file in files:
        found, diagnostics = diagnose(file.read_text(encoding="utf-8"), str(file), program)
        assert not diagnostics, diagnostics
        tests.extend(found)
    print(
        f"start-up: imports, {len(files)} test files and the campaigns read and compiled "
        f"in {time.perf_counter() - started:.2f} s; {len(tests)} distinct tests"
    )
    print()
    heads = ("tests", "wall s", "CPU s", "ms/test", "tests/CPU s", "failed", "peak RSS MB")
    widths = (7, 8, 8, 8, 12, 7, 12)
    print(" ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)))
    for count in args.tests:
        wall, cpu = time.perf_counter(), time.process_time()
        failed = sum(not run_test(t, program).passed for t in islice(cycle(tests), count))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{count:>7} {wall:>8.3f} {cpu:>8.3f} {1000 * cpu / count:>8.2f} "
            f"{count / cpu:>12.0f} {failed:>7} {rss:>12.1f}"
        )


if __name__ == "__main__":
    main()
