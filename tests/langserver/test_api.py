"""The language server's public names, and the rule that it needs the language alone."""

from __future__ import annotations

import subprocess
import sys

import langserver


def test_the_public_api_is_sorted_and_pinned() -> None:
    assert langserver.__all__ == sorted(langserver.__all__)
    assert set(langserver.__all__) == {
        "Completion",
        "Symbol",
        "Target",
        "complete",
        "definition",
        "format_text",
        "hover",
        "items",
        "symbols",
    }


def test_the_language_server_does_not_load_the_engine() -> None:
    # langserver sits beside dsl: importing it must not pull in nurture's engine or database
    code = (
        "import sys, langserver.server; langserver.server.create(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nurture', 'sqlalchemy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
