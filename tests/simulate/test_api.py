"""The simulator's public surface, and its promise to stay off the clock and out of tests."""

from __future__ import annotations

import ast
from pathlib import Path

import nurture.simulate

SIMULATE = Path(nurture.simulate.__file__).parent


def test_all_is_sorted_and_pinned() -> None:
    names = nurture.simulate.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert all(hasattr(nurture.simulate, n) for n in names)
    assert names == [
        "START",
        "Behaviour",
        "Profile",
        "ProfileError",
        "Rates",
        "Settings",
        "Simulation",
        "load_profile",
        "render",
        "simulate",
        "synthetic_leads",
    ]


def test_the_simulator_never_reads_the_clock_nor_imports_tests() -> None:
    for path in SIMULATE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("tests"), path.name
            if isinstance(node, ast.Attribute) and node.attr in ("now", "today", "utcnow"):
                raise AssertionError(f"{path.name} reads the clock: .{node.attr}")
