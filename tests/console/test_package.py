"""The console package's public names, and its templates shipped as package data."""

from __future__ import annotations

from importlib.resources import files

import nurture.console


def test_the_public_names_are_pinned() -> None:
    assert nurture.console.__all__ == ["Lockout", "create_console"]


def test_every_template_is_package_data() -> None:
    templates = files("nurture.console") / "templates"
    names = sorted(t.name for t in templates.iterdir() if t.name.endswith(".html"))
    assert "base.html" in names and "lead.html" in names and len(names) >= 12
