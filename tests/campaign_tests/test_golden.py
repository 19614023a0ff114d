"""`nurture test`'s output, golden: every test-file diagnostic and the failure report.

Each `tests/fixtures/testfiles/<code>[--<variant>].nurture-test` starts with a
`# title` line and may say which example campaigns it runs against
(`# campaigns: welcome, drip`; default: all of `campaigns/`) and which of
their lines to leave out (`# without: accept within, remind`). It is run by
`nurture test tests/<name>` from a folder holding those campaigns and their
templates, so paths read `tests/<name>`; its sibling `.expected` holds the
exact output, diagnostics with their carets, failures with the leads' paths.
`failure--*` fixtures show the failure report. Regenerate them with
`NURTURE_UPDATE_GOLDEN=1 pytest tests/campaign_tests/test_golden.py`, then
read every changed file before committing it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nurture.cli import app

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = ROOT / "campaigns"
FIXTURES = ROOT / "tests" / "fixtures" / "testfiles"
UPDATE = os.environ.get("NURTURE_UPDATE_GOLDEN") == "1"
runner = CliRunner()


def fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.nurture-test"))


def _header(text: str, word: str) -> list[str]:
    found = re.search(rf"^# {word}: (.*)$", text, re.M)
    return [w.strip() for w in found.group(1).split(",")] if found else []


def _folder(text: str, where: Path) -> None:
    """The campaigns the fixture asks for, and their templates, in `where`."""
    names = _header(text, "campaigns")
    chosen = [CAMPAIGNS / f"{n}.nurture" for n in names] or sorted(CAMPAIGNS.glob("*.nurture"))
    without = tuple(_header(text, "without"))
    for path in chosen:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not without or not line.lstrip().startswith(without)]
        (where / path.name).write_text("".join(kept), encoding="utf-8")
    shutil.copytree(CAMPAIGNS / "templates", where / "templates")
    (where / "tests").mkdir()


@pytest.mark.parametrize("source", fixtures(), ids=lambda p: p.stem)
def test_golden_output(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a fixture with a title, beside the campaigns it names
    text = source.read_text(encoding="utf-8")
    assert text.startswith("# "), f"{source.name} must start with a `# title` line"
    _folder(text, tmp_path)
    shutil.copy(source, tmp_path / "tests" / source.name)
    monkeypatch.chdir(tmp_path)

    # When `nurture test` runs it
    result = runner.invoke(app, ["test", f"tests/{source.name}"])

    # Then it fails, and prints exactly what is expected (never a traceback)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    expected = source.with_suffix(".expected")
    if UPDATE:
        expected.write_text(result.output, encoding="utf-8")
    assert result.output == expected.read_text(encoding="utf-8")


def test_every_test_file_diagnostic_has_a_golden_fixture() -> None:
    source = "".join(
        (ROOT / "dsl" / f).read_text() for f in ("testfile.py", "testsyntax.py", "testcheck.py")
    )
    codes = set(re.findall(r'"(test-[a-z-]+)"', source))
    covered: dict[str, list[Path]] = {}
    for path in fixtures():
        covered.setdefault(path.stem.split("--")[0], []).append(path)
    assert set(covered) - {"failure"} <= codes, "fixtures named after no known code"
    for code in codes:
        assert code in covered, f"no fixture for {code}"
        texts = [p.with_suffix(".expected").read_text(encoding="utf-8") for p in covered[code]]
        assert any(f"[{code}]" in t for t in texts), f"no fixture shows [{code}]"
