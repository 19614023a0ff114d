"""``nurture lsp``: the language server for editors, speaking LSP on stdin and stdout."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``lsp`` to the main ``nurture`` app."""
    app.command("lsp")(lsp)


def lsp() -> None:
    """Start the language server on stdio (editors run this; see editors/vscode/)."""
    from langserver.server import serve

    serve()
