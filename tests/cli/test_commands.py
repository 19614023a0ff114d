"""The root `nurture` command: every command listed, each module imported only when used."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nurture.cli import COMMANDS, SUMMARIES, app, module_commands

runner = CliRunner()
ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("module", sorted(set(COMMANDS.values())))
def test_each_module_defines_the_commands_listed_for_it(module: str) -> None:
    listed = sorted(name for name, owner in COMMANDS.items() if owner == module)
    assert sorted(module_commands(module)) == listed


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert f" {name} " in result.output


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_lists_each_command_with_the_first_paragraph_of_its_own_help(name: str) -> None:
    command = module_commands(COMMANDS[name])[name]
    assert SUMMARIES[name] == inspect.cleandoc(command.help or "").split("\n\n")[0]


def test_help_imports_no_command_module() -> None:
    # When `nurture --help` runs in a fresh interpreter
    code = (
        "import sys\n"
        "from nurture.cli import main\n"
        "sys.argv = ['nurture', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('nurture.cli.', 'dsl'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    # Then it listed every command without importing any command's module or the language
    assert " check " in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_mistyped_command_gets_a_suggestion() -> None:
    result = runner.invoke(app, ["segmnt"])
    assert result.exit_code == 2
    assert "Did you mean 'segment'?" in result.output


def test_segment_starts_without_the_runtime_the_service_or_dramatiq() -> None:
    # When `nurture segment --help` runs in a fresh interpreter
    code = (
        "import sys\n"
        "from nurture.cli import main\n"
        "sys.argv = ['nurture', 'segment', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('nurture.runtime', 'nurture.tracking', 'nurture.simulate', 'dramatiq', "
        "'starlette', 'uvicorn')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    # Then none of the other commands' libraries was imported
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_check_starts_without_pydantic_rich_or_the_compiler() -> None:
    # When `nurture check` checks an example campaign in a fresh interpreter
    code = (
        "import sys\n"
        "from nurture.cli import main\n"
        "sys.argv = ['nurture', 'check', 'campaigns/drip.nurture']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    print('exit', e.code)\n"
        "heavy = ('pydantic', 'rich', 'dsl.compile', 'dsl.graph', 'sqlalchemy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )

    # Then it passed without importing what only other commands need: the compiler, the
    # database, Rich (help screens), pydantic (Typer 0.29's option coercion, ~1.1x the
    # time of `import lark` on its own: bench/cli_startup.py)
    assert done.stdout.strip().splitlines()[-2:] == ["exit 0", "[]"]
