"""The nurture language server: diagnostics, completion, hover, definitions and the outline.

A package of its own beside `dsl`, not inside it nor inside `nurture`: it
needs the language alone (never the engine, its database or broker), and
`dsl` stays a pure library with no editor protocol in it. `nurture lsp`
(`nurture.cli.lsp`) starts it. `langserver.server` is the LSP wire (pygls);
the other modules are plain functions of text and a position.
"""

from __future__ import annotations

from langserver.complete import Completion, complete
from langserver.layout import format_text
from langserver.navigate import Target, definition, hover
from langserver.outline import Symbol, items, symbols

__all__ = [
    "Completion",
    "Symbol",
    "Target",
    "complete",
    "definition",
    "format_text",
    "hover",
    "items",
    "symbols",
]
