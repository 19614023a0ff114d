"""The nurture campaign language: text in, diagnostics or a step graph out.

`analyze` parses and checks; `build` also compiles. Nothing here imports the
engine (`nurture`) or the channels.
"""

from __future__ import annotations

from dsl.ast import Program, Span
from dsl.checks import CODES
from dsl.compile import compile_program
from dsl.errors import CheckError, Diagnostic, DslError, DslSyntaxError
from dsl.graph import CompiledProgram, Edge, Node, StepGraph
from dsl.pipeline import Analysis, analyze, build, check_program
from dsl.syntax import parse_module
from dsl.templates import DictTemplates, FileTemplates, TemplateFile, TemplateSource

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
