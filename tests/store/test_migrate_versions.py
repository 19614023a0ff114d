"""`nurture deploy --migrate` across several older versions, and `--dry-run`, on both databases.

The case from issue 12: v2 deployed without a map leaves v1's leads on v1; a
later v3 with a map must move them too, or be refused naming v1, never leave
them silently.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from tests.store.test_deploy import V2, deploy, enroll, enrollment, versions, write
from tests.store.test_deploy import project as project  # the fixture: a folder of campaigns

V3 = V2 + '  tag "welcomed:done"\n'
# n1 tag, n2 send hello, n3 wait, n4 send tips, n5 tag

FROM_V2 = {"n1": "n1", "n2": "n2", "n3": "n3", "n4": "n4"}
FROM_V1 = {"n1": "n2", "n2": "n3", "n3": "n4"}


def three_versions(engine: Engine, db_url: str, project: Path) -> tuple[list[int], list[int]]:
    """Welcome v1 with two leads in flight, v2 (no map) with one: both still in flight."""
    assert deploy(db_url, str(project)).exit_code == 0
    on_v1 = [
        enroll(engine, "n2", waiting_for={"node": "n2", "event": "opened"}),
        enroll(engine, "n3", "active"),
    ]
    write(project, "welcome.nurture", V2)
    second = deploy(db_url, str(project))
    assert second.exit_code == 0, second.output
    assert '2 enrollments of "Welcome" stay on v1' in second.stdout
    on_v2 = [enroll(engine, "n4", "active")]
    write(project, "welcome.nurture", V3)
    return on_v1, on_v2


def test_a_map_that_does_not_cover_an_older_version_is_refused_naming_it(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    # Given leads in flight on v1 and on v2
    on_v1, on_v2 = three_versions(engine, db_url, project)

    # When v3 is deployed with a map of v2's steps only
    step_map = write(tmp_path, "map.json", json.dumps({"Welcome": FROM_V2}))
    result = deploy(db_url, str(project), "--migrate", str(step_map))

    # Then the deploy is refused, naming v1 and how to cover it; nothing changed
    assert result.exit_code == 1
    assert 'cannot migrate "Welcome": v1 has 2 enrollments in flight that the map' in result.stderr
    assert '"v1" = "keep"' in result.stderr and "Traceback" not in result.output
    assert [v for v, _ in versions(engine)] == [1, 2]
    assert [enrollment(engine, e)[:2] for e in on_v1] == [(1, "n2"), (1, "n3")]
    assert enrollment(engine, on_v2[0])[:2] == (2, "n4")


def test_a_map_with_a_table_per_version_moves_every_version_and_says_what_moved(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    # Given leads in flight on v1 and on v2
    on_v1, on_v2 = three_versions(engine, db_url, project)

    # When v3 is deployed with v2's steps and a "v1" table (TOML)
    toml = "[Welcome]\n" + "".join(f'{k} = "{v}"\n' for k, v in FROM_V2.items())
    toml += "[Welcome.v1]\n" + "".join(f'{k} = "{v}"\n' for k, v in FROM_V1.items())
    result = deploy(db_url, str(project), "--migrate", str(write(tmp_path, "map.toml", toml)))

    # Then every lead in flight is on v3, each at its mapped step, and each version is reported
    assert result.exit_code == 0, result.output
    assert enrollment(engine, on_v1[0])[:3] == (3, "n3", {"node": "n3", "event": "opened"})
    assert enrollment(engine, on_v1[1])[:2] == (3, "n4")
    assert enrollment(engine, on_v2[0])[:2] == (3, "n4")
    assert 'moved 2 enrollments of "Welcome" from v1 to v3' in result.stdout
    assert 'moved 1 enrollment of "Welcome" from v2 to v3' in result.stdout


def test_keep_leaves_a_version_on_purpose_and_says_so(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    on_v1, on_v2 = three_versions(engine, db_url, project)
    mapping = {"Welcome": {**FROM_V2, "v1": "keep"}}
    result = deploy(
        db_url, str(project), "--migrate", str(write(tmp_path, "m.json", json.dumps(mapping)))
    )

    assert result.exit_code == 0, result.output
    assert [enrollment(engine, e)[0] for e in on_v1] == [1, 1]
    assert enrollment(engine, on_v2[0])[:2] == (3, "n4")
    assert 'kept 2 enrollments of "Welcome" on v1, as the map says' in result.stdout


def test_a_dry_run_prints_each_version_step_by_step_and_changes_nothing(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    # Given leads in flight on v1 (at n2 and n3) and v2 (at n4)
    on_v1, on_v2 = three_versions(engine, db_url, project)
    mapping = {"Welcome": {**FROM_V2, "v1": FROM_V1}}
    step_map = write(tmp_path, "map.json", json.dumps(mapping))

    # When v3's deploy is tried with --dry-run
    result = deploy(db_url, str(project), "--migrate", str(step_map), "--dry-run")

    # Then it shows each old version's steps, their leads and where they would go
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert 'campaign "Welcome": changed, v3 (was v2)' in out
    assert "v1: 2 in flight, move to v3" in out and "v2: 1 in flight, move to v3" in out
    assert _row(out, "n2") == ["n2", "wait", "5", "1", "v3", "n3"]
    assert _row(out, "n4") == ["n4", "send", "7", "1", "v3", "n4"]
    assert "nothing was changed; the deploy would be stored" in out
    # And nothing was stored or moved
    assert [v for v, _ in versions(engine)] == [1, 2]
    assert [enrollment(engine, e)[0] for e in (*on_v1, *on_v2)] == [1, 1, 2]


def test_a_dry_run_of_a_refused_map_shows_why_and_exits_1(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    three_versions(engine, db_url, project)
    mapping = {"Welcome": {**FROM_V2, "v1": {"n2": "n3"}}}  # v1's n3 forgotten
    step_map = write(tmp_path, "map.json", json.dumps(mapping))

    result = deploy(db_url, str(project), "--migrate", str(step_map), "--dry-run")

    assert result.exit_code == 1
    assert "v1: 2 in flight, cannot move" in result.stdout
    assert _row(result.stdout, "n3")[-2:] == ["not", "mapped"]
    assert 'cannot migrate "Welcome" v1 → v3' in result.stdout
    assert "the deploy would be refused" in result.stdout
    assert [v for v, _ in versions(engine)] == [1, 2]


def test_a_dry_run_without_a_map_says_the_leads_stay(
    engine: Engine, db_url: str, project: Path
) -> None:
    assert deploy(db_url, str(project)).exit_code == 0
    enroll(engine, "n2")
    write(project, "welcome.nurture", V2)

    result = deploy(db_url, str(project), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "v1: 1 in flight, stay on v1 (no --migrate map)" in result.stdout
    assert [v for v, _ in versions(engine)] == [1]


def test_an_unchanged_campaign_takes_an_older_version_by_name(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    # Given v2 deployed without a map, a lead left on v1
    assert deploy(db_url, str(project)).exit_code == 0
    left = enroll(engine, "n3", "active")
    write(project, "welcome.nurture", V2)
    assert deploy(db_url, str(project)).exit_code == 0

    # When the same files are deployed again with a "v1" table
    mapping = {"Welcome": {"v1": FROM_V1}}
    step_map = write(tmp_path, "map.json", json.dumps(mapping))
    result = deploy(db_url, str(project), "--migrate", str(step_map))

    # Then the lead moves to the current v2
    assert result.exit_code == 0, result.output
    assert enrollment(engine, left)[:2] == (2, "n4")
    assert 'moved 1 enrollment of "Welcome" from v1 to v2' in result.stdout


def test_a_table_for_a_version_that_does_not_exist_or_is_malformed_is_refused(
    engine: Engine, db_url: str, project: Path, tmp_path: Path
) -> None:
    three_versions(engine, db_url, project)
    absent = write(tmp_path, "a.json", json.dumps({"Welcome": {**FROM_V2, "v1": "keep", "v7": {}}}))
    wrong = write(tmp_path, "w.json", json.dumps({"Welcome": {"v1": 3}}))

    first = deploy(db_url, str(project), "--migrate", str(absent))
    second = deploy(db_url, str(project), "--migrate", str(wrong))

    assert first.exit_code == 1 and "there is no v7 to move from" in first.stderr
    assert second.exit_code == 1 and "step 'v1' should map to a step id" in second.stderr
    assert [v for v, _ in versions(engine)] == [1, 2]


def _row(output: str, step: str) -> list[str]:
    """The words of the first table row for `step` (box characters left out)."""
    for line in output.splitlines():
        words = [w for w in line.replace("│", " ").split() if w]
        if words and words[0] == step:
            return words
    raise AssertionError(f"no row for {step} in:\n{output}")
