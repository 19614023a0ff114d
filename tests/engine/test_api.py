"""The package's public surface, and the core's promise not to touch clocks or I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import nurture.engine

ENGINE = Path(nurture.engine.__file__).parent


def test_all_is_sorted_and_complete() -> None:
    names = nurture.engine.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert all(hasattr(nurture.engine, n) for n in names)
    assert {"decide", "EnrollmentState", "LeadView", "Event", "VirtualClock"} <= set(names)


def test_the_core_never_reads_the_clock_nor_imports_io() -> None:
    forbidden = ("dramatiq", "redis", "sqlalchemy", "nurture.models", "nurture.db")
    for path in ENGINE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    modules.append(node.module)
                assert not [m for m in modules if m.startswith(forbidden)], path.name
            if path.name != "clock.py" and isinstance(node, ast.Call):
                assert _called(node) not in READS_CLOCK, (path.name, node.lineno)


READS_CLOCK = {
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "date.today",
    "time.time",
    "time.monotonic",
}


def _called(call: ast.Call) -> str:
    """`datetime.now` for `datetime.now(UTC)` or `dt.datetime.now()`; "" otherwise."""
    func = call.func
    if isinstance(func, ast.Attribute):
        owner = func.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        return f"{name}.{func.attr}"
    return ""
