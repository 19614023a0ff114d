"""The one public entry that chains the stages: parse, check, compile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dsl.ast import Module, Program, Span
from dsl.checks import run_checks
from dsl.errors import ERROR, CheckError, Diagnostic, DslSyntaxError, sort_key
from dsl.syntax import gc_paused, parse_module
from dsl.templates import TemplateSource

if TYPE_CHECKING:  # `check` alone never compiles: see `build`
    from dsl.graph import CompiledProgram


@dataclass(frozen=True, slots=True)
class Analysis:
    """What `analyze` found: the program (None when a file did not parse) and diagnostics."""

    program: Program | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)

    def failed(self, strict: bool = False) -> bool:
        """True when there are errors, or any diagnostic at all under `--strict`."""
        return bool(self.errors) or (strict and bool(self.diagnostics))


def analyze(sources: Mapping[str, str], templates: TemplateSource | None = None) -> Analysis:
    """Parse and check every file together; syntax errors stop before the checks."""
    with gc_paused():
        return _analyze(sources, templates)


def _analyze(sources: Mapping[str, str], templates: TemplateSource | None) -> Analysis:
    modules: list[Module] = []
    found: list[Diagnostic] = []
    for path, text in sources.items():
        try:
            modules.append(parse_module(text, path))
        except DslSyntaxError as e:
            found.extend(e.diagnostics)
        except RecursionError:
            found.append(_too_deep(path))
    program: Program | None = None
    if not found:
        program = Program(tuple(modules))
        try:
            found.extend(run_checks(program, templates))
        except RecursionError:
            found.append(_too_deep(next(iter(sources), "<string>")))
    return Analysis(program, _with_source_lines(found, sources))


def check_program(sources: Mapping[str, str], templates: TemplateSource | None = None) -> Program:
    """Parse and check; raise `DslSyntaxError` or `CheckError` when anything is an error."""
    analysis = analyze(sources, templates)
    if analysis.program is None:
        raise DslSyntaxError(analysis.errors)
    if analysis.errors:
        raise CheckError(analysis.errors)
    return analysis.program


def _too_deep(path: str) -> Diagnostic:
    return Diagnostic(
        ERROR,
        "too-deep",
        Span(path, 1, 1, 1, 2),
        "this file nests conditions or blocks too deeply to read",
        "split the condition or the flow into smaller pieces",
    )


def _with_source_lines(
    found: list[Diagnostic], sources: Mapping[str, str]
) -> tuple[Diagnostic, ...]:
    lines = {path: text.split("\n") for path, text in sources.items()}  # as Lark counts lines
    out = []
    for d in sorted(set(found), key=sort_key):
        file_lines = lines.get(d.span.path)
        if d.source_line is None and file_lines and 0 < d.span.line <= len(file_lines):
            d = replace(d, source_line=file_lines[d.span.line - 1])
        out.append(d)
    return tuple(out)


def build(sources: Mapping[str, str], templates: TemplateSource | None = None) -> CompiledProgram:
    """Parse, check and compile: the whole pipeline, raising `DslError` on any error."""
    from dsl.compile import compile_program  # here, so that `nurture check` never imports it

    with gc_paused():  # a large program is one long-lived object graph: see `gc_paused`
        return compile_program(check_program(sources, templates))
