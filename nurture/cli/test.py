"""`nurture test PATH...`: run campaign test files (`*.nurture-test`), report pass/fail."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nurture.campaign_tests import Result, collect, junit, run_file


def register(app: typer.Typer) -> None:
    app.command("test")(test_command)


def test_command(
    paths: list[Path] = typer.Argument(  # noqa: B008
        ..., help="Test files (*.nurture-test), or folders searched for them."
    ),
    format: str = typer.Option("text", "--format", help="text or json."),
    junit_file: Path | None = typer.Option(  # noqa: B008
        None, "--junit", help="Also write the results as JUnit XML to this file."
    ),
) -> None:
    """Run campaign tests: each test's scripted leads together on the virtual clock; exit 1 on
    any failure."""
    if format not in ("text", "json"):
        typer.echo(f"--format must be text or json (got {format!r})", err=True)
        raise typer.Exit(2)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        typer.echo(f"no such file or folder: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    if junit_file is not None and (junit_file.is_dir() or not junit_file.parent.is_dir()):
        typer.echo(f"--junit {junit_file}: not a file in an existing folder", err=True)
        raise typer.Exit(2)
    files = collect(paths)
    if not files:
        typer.echo(f"no *.nurture-test file in {', '.join(map(str, paths))}", err=True)
        raise typer.Exit(2)
    results = [r for f in files for r in run_file(f)]
    if junit_file is not None:
        try:
            junit_file.write_text(junit(results), encoding="utf-8")
        except OSError as e:
            typer.echo(f"--junit {junit_file}: cannot write it: {e.strerror or e}", err=True)
            raise typer.Exit(2) from None
    if format == "json":
        passed = sum(r.passed for r in results)
        data = {
            "passed": passed,
            "failed": len(results) - passed,
            "tests": [r.to_json() for r in results],
        }
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print(results)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def _print(results: list[Result]) -> None:
    for r in results:
        typer.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.path}:{r.line}  {r.name}")
        if not r.passed:
            for failure in r.failures:
                typer.echo("  " + failure.replace("\n", "\n  "))
            if r.steps:
                typer.echo("  what happened:")
                for step in r.steps:
                    typer.echo(f"    {step}")
    passed = sum(r.passed for r in results)
    typer.echo(f"{passed} passed, {len(results) - passed} failed")
