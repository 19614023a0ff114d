"""`dsl`'s public names: each imported from its module when first used."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import dsl

CAMPAIGN = Path(__file__).parents[2] / "campaigns" / "drip.nurture"


@pytest.mark.parametrize("name", dsl.__all__)
def test_each_public_name_is_its_module_s_own(name: str) -> None:
    home = importlib.import_module(f"dsl.{dsl._HOMES[name]}")
    assert getattr(dsl, name) is getattr(home, name)


def test_every_public_name_has_a_home_and_every_home_is_public() -> None:
    assert sorted(dsl.__all__) == sorted(dsl._HOMES)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'analyse'"):
        dsl.analyse  # noqa: B018 - the lookup is the test


def test_checking_starts_without_the_compiler_or_the_step_graph() -> None:
    # When a fresh interpreter checks an example campaign, templates and all
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from dsl import FileTemplates, analyze\n"
        f"path = {str(CAMPAIGN)!r}\n"
        "found = analyze({path: Path(path).read_text(encoding='utf-8')}, FileTemplates())\n"
        "print(found.errors, sorted(m for m in ('dsl.compile', 'dsl.graph') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    # Then it found the campaign clean without importing what only compiling needs
    assert done.stdout.strip() == "() []"
