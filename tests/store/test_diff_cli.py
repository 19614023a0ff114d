"""`nurture diff`: two files, or files against what is deployed, with the leads in flight each
change touches, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from nurture.cli import app
from tests.store.test_deploy import V1, V2, deploy, enroll, runner, write
from tests.store.test_deploy import project as project  # the fixture: a folder of campaigns

V2_SHORTER = V2.replace("wait 3 days", "wait 2 days").replace(
    '  send email "welcome/tips" subject "Tips"\n', ""
)
# n1 tag (added), n2 send hello (was n1), n3 wait 2 days (was n2, 3 days); n3 send tips removed


def test_diff_against_the_deployed_version_counts_the_leads_each_change_touches(
    engine: Engine, db_url: str, project: Path
) -> None:
    # Given v1 deployed, two leads waiting at n2 and one about to get n3
    assert deploy(db_url, str(project)).exit_code == 0
    enroll(engine, "n2")
    enroll(engine, "n2", state="active")
    enroll(engine, "n3", state="active")

    # When the file is changed and compared with what is deployed
    write(project, "welcome.nurture", V2_SHORTER)
    result = runner.invoke(app, ["diff", str(project), "--url", db_url])

    # Then each change is listed with the leads in flight it touches, and the map
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert 'campaign "Welcome": changed' in out
    assert '+ n1 tag "welcomed" (line 4)' in out
    assert "~ n2 → n3 wait 3 days → wait 2 days (line 6; 2 leads in flight there)" in out
    assert '- n3 email: welcome/tips subject "Tips" (line 6; 1 lead in flight there)' in out
    assert "= 1 steps unchanged" in out
    assert '--migrate map: {"Welcome": {"end": "end", "n1": "n2", "n2": "n3"}}' in out

    # And as JSON
    data = json.loads(runner.invoke(app, ["diff", str(project), "--url", db_url, "--json"]).stdout)
    [welcome] = data["campaigns"]
    assert [(c["change"], c["leads_in_flight"]) for c in welcome["changes"]] == [
        ("added", None),
        ("changed", 2),
        ("removed", 1),
    ]
    assert data["counted"] is True


def test_diff_of_two_files_counts_leads_on_the_version_the_old_file_is(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    assert deploy(db_url, str(project)).exit_code == 0
    enroll(engine, "n3", state="active")
    old, new = write(tmp_path, "old.nurture", V1), write(tmp_path, "new.nurture", V2_SHORTER)
    templates = ["--templates", str(project / "templates")]

    counted = runner.invoke(app, ["diff", str(old), str(new), "--url", db_url, *templates])
    assert counted.exit_code == 0, counted.output
    assert "(line 6; 1 lead in flight there)" in counted.stdout

    # And with two versions never deployed, no lead is in flight on them
    other = write(tmp_path, "other.nurture", V2)
    fresh = runner.invoke(app, ["diff", str(other), str(new), "--url", db_url, *templates])
    assert fresh.exit_code == 0, fresh.output
    assert "0 leads in flight there" in fresh.stdout


def test_diff_of_unchanged_files_and_of_bad_files(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    same = runner.invoke(app, ["diff", str(project), str(project), "--url", db_url])
    assert same.exit_code == 0 and "no campaign changed" in same.stdout

    broken = write(tmp_path, "broken.nurture", 'campaign "X"\n  sendd email "a"\n')
    bad = runner.invoke(app, ["diff", str(project), str(broken), "--url", db_url])
    assert bad.exit_code == 1 and "broken.nurture:2" in bad.stderr
    assert "Traceback" not in bad.output


def test_diff_against_a_database_that_is_not_there_says_so(project: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = runner.invoke(app, ["diff", str(project), "--url", url])
    assert result.exit_code == 1
    assert "cannot read the deployed campaigns: no database at" in result.stderr
    assert not (tmp_path / "none.db").exists()
