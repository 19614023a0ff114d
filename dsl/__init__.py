"""The nurture campaign language: text in, diagnostics or a step graph out.

`analyze` parses and checks; `build` also compiles. Nothing here imports the
engine (`nurture`) or the channels.

Each name is imported from its module when first used (PEP 562): ``nurture
check`` then starts without the compiler and the step graph (hashlib, json),
which only ``graph``, ``deploy`` and the engine need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsl.ast import Program, Span
    from dsl.checks import CODES
    from dsl.compile import compile_program
    from dsl.errors import CheckError, Diagnostic, DslError, DslSyntaxError
    from dsl.graph import CompiledProgram, Edge, Node, StepGraph
    from dsl.pipeline import Analysis, analyze, build, check_program
    from dsl.syntax import parse_module
    from dsl.templates import DictTemplates, FileTemplates, TemplateFile, TemplateSource

_HOMES = {
    "Program": "ast",
    "Span": "ast",
    "CODES": "checks",
    "compile_program": "compile",
    "CheckError": "errors",
    "Diagnostic": "errors",
    "DslError": "errors",
    "DslSyntaxError": "errors",
    "CompiledProgram": "graph",
    "Edge": "graph",
    "Node": "graph",
    "StepGraph": "graph",
    "Analysis": "pipeline",
    "analyze": "pipeline",
    "build": "pipeline",
    "check_program": "pipeline",
    "parse_module": "syntax",
    "DictTemplates": "templates",
    "FileTemplates": "templates",
    "TemplateFile": "templates",
    "TemplateSource": "templates",
}
"""Each public name and the `dsl` module that defines it."""

__all__ = [
    "CODES",
    "Analysis",
    "CheckError",
    "CompiledProgram",
    "Diagnostic",
    "DictTemplates",
    "DslError",
    "DslSyntaxError",
    "Edge",
    "FileTemplates",
    "Node",
    "Program",
    "Span",
    "StepGraph",
    "TemplateFile",
    "TemplateSource",
    "analyze",
    "build",
    "check_program",
    "compile_program",
    "parse_module",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'dsl' has no attribute {name!r}")
    found = getattr(importlib.import_module(f"dsl.{home}"), name)
    globals()[name] = found
    return found
