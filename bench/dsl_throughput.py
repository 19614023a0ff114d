"""Language pipeline throughput: parse, check and compile, in lines per second.

    python bench/dsl_throughput.py [--lines 50000] [--earley-lines 3000]

Generates a corpus of realistic campaigns, runs each stage of the real
pipeline over it, and runs Lark's Earley parser on the same grammar over a
slice of it as a reference line. Prints a table; ratios compare within one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib import resources
from pathlib import Path

from lark import Lark
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from corpus import corpus

from dsl.ast import Program
from dsl.checks import run_checks
from dsl.compile import compile_program
from dsl.pipeline import build
from dsl.syntax import _Indenter, gc_paused, parse_module


def timed(fn: object, *args: object) -> tuple[float, object]:
    """CPU seconds, not wall time: the pipeline is single-threaded and the machine is shared."""
    start = time.process_time()
    result = fn(*args)  # type: ignore[operator]
    return time.process_time() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--earley-lines", type=int, default=3_000)
    args = parser.parse_args()

    text = corpus(args.lines)
    lines = text.count("\n")
    parse_module('campaign "warm-up"\n  mql\n')  # build the parser outside the timing

    t_parse, module = timed(parse_module, text, "corpus.nurture")
    program = Program((module,))  # type: ignore[arg-type]
    with gc_paused():  # as `dsl.build` runs them
        t_check, diagnostics = timed(lambda: list(run_checks(program)))
        t_compile, _ = timed(compile_program, program)
    total, _ = timed(build, {"corpus.nurture": text})

    grammar = resources.files("dsl").joinpath("nurture.lark").read_text(encoding="utf-8")
    earley = Lark(grammar, parser="earley", lexer="basic", postlex=_Indenter())
    slice_text = corpus(args.earley_lines)
    slice_lines = slice_text.count("\n")
    t_earley, _ = timed(earley.parse, slice_text + "\n")

    table = Table(
        title=f"nurture language pipeline, {lines:,} lines ({len(diagnostics)} diagnostics)"
    )
    table.add_column("stage")
    table.add_column("lines", justify="right")
    table.add_column("CPU seconds", justify="right")
    table.add_column("lines/s", justify="right")
    for name, seconds, n in (
        ("parse (LALR + AST)", t_parse, lines),
        ("check", t_check, lines),
        ("compile", t_compile, lines),
        ("whole pipeline (dsl.build)", total, lines),
        ("Earley parse only (reference)", t_earley, slice_lines),
    ):
        table.add_row(name, f"{n:,}", f"{seconds:.3f}", f"{n / seconds:,.0f}")
    console = Console()
    console.print(table)
    ratio = (lines / total) / (slice_lines / t_earley)
    console.print(f"whole LALR pipeline vs Earley parse alone: {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
