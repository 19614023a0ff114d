"""The `pg_url` fixture's contract: skip without PostgreSQL, but fail on CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).parents[1] / "conftest.py"


def _run_with_no_server(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "test_pg.py").write_text("def test_pg(pg_url):\n    pass\n", encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    environment["NURTURE_TEST_PG_URL"] = "postgresql://postgres@127.0.0.1:1/test"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("ci", "exit_code"), [("", 0), ("true", 1)], ids=["laptop", "CI"])
def test_no_postgresql_skips_on_a_laptop_and_fails_on_ci(
    tmp_path: Path, ci: str, exit_code: int
) -> None:
    result = _run_with_no_server(tmp_path, CI=ci)

    assert result.returncode == exit_code, result.stdout + result.stderr
    assert (
        "PostgreSQL unreachable at postgresql+psycopg://postgres@127.0.0.1:1/test" in result.stdout
    )
