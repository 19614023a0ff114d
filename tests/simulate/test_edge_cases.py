"""An audit of `nurture simulate` through its command line: numbers counted by hand on tiny
runs, triggers between campaigns, `--profile` files, and the output streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.simulate.helpers import cli, report, write

REPO = Path(__file__).resolve().parents[2]
QUIET = ("--reply-rate", "0", "--event-rate", "0")
"""No replies and no custom events: only the opens and clicks the test asks for."""


def rows(data: dict[str, Any], name: str) -> list[tuple[Any, ...]]:
    keys = ("id", "kind", "line", "entered", "sent", "opened", "clicked")
    return [tuple(s[k] for k in keys) for s in data["steps"] if s["campaign"] == name]


def campaign(data: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in data["campaigns"] if c["name"] == name]
    assert isinstance(found, dict)
    return found


# ---------------------------------------------------------------- counts by hand

HAND = """\
campaign "Hand"
  send email "a/one" subject "Hi"
  if clicked within 3 days:
    send email "a/two" subject "More"
    exit
  else:
    wait 3 days
  send email "a/three" subject "Last"
"""


def test_everyone_clicking_takes_the_yes_branch_and_leaves_by_the_exit_step(
    tmp_path: Path,
) -> None:
    # Given 4 leads who open and click everything (clicks come within 2 days and an hour)
    path = write(tmp_path, HAND)
    args = (str(path), "--leads", "4", "--days", "10", "--seed", "3", *QUIET)

    data = report(*args, "--open-rate", "1", "--click-rate", "1")

    # Then every lead gets the first two mails, opens and clicks both, and exits
    assert rows(data, "Hand") == [
        ("n1", "send", 2, 4, 4, 4, 4),
        ("n2", "branch", 3, 4, 0, 0, 0),
        ("n3", "send", 4, 4, 4, 4, 4),
        ("n4", "exit", 5, 4, 0, 0, 0),
        ("n5", "wait", 7, 0, 0, 0, 0),
        ("n6", "send", 8, 0, 0, 0, 0),
        ("end", "end", 9, 0, 0, 0, 0),
    ]
    assert data["touches_per_lead"] == {"mean": 2.0, "max": 2, "total": 8}
    assert data["max_touches_7d"] == 2
    assert data["exits"] == {"exit step": 4}
    assert data["completed"] == 0
    assert data["in_flight"]["leads"] == 0
    assert data["mql"] == {
        "count": 0,
        "rate": 0.0,
        "days_median": None,
        "days_p90": None,
        "by_cause": {},
    }

    # And the text report says the same
    code, out, err = cli(*args, "--open-rate", "1", "--click-rate", "1")
    assert code == 0, err
    assert "Hand (nurture): 4 enrolled, 0 completed, 4 exited, 0 in flight" in out
    assert "exit step: 4" in out
    assert "mean 2.00, max 2" in out
    assert "0 leads (0 enrollments: 0 waiting, 0 stuck)" in out


def test_nobody_opening_takes_the_timeout_and_completes(tmp_path: Path) -> None:
    path = write(tmp_path, HAND)

    data = report(str(path), "--leads", "5", "--days", "10", "--open-rate", "0", *QUIET)

    assert rows(data, "Hand") == [
        ("n1", "send", 2, 5, 5, 0, 0),
        ("n2", "branch", 3, 5, 0, 0, 0),
        ("n3", "send", 4, 0, 0, 0, 0),
        ("n4", "exit", 5, 0, 0, 0, 0),
        ("n5", "wait", 7, 5, 0, 0, 0),
        ("n6", "send", 8, 5, 5, 0, 0),
        ("end", "end", 9, 5, 0, 0, 0),
    ]
    assert data["touches_per_lead"] == {"mean": 2.0, "max": 2, "total": 10}
    assert data["exits"] == {}
    assert data["completed"] == 5


def test_leads_still_waiting_at_the_end_show_in_the_text_report(tmp_path: Path) -> None:
    # Given a branch that waits 3 days and a run of 2 days: nobody gets past it
    path = write(tmp_path, HAND)

    code, out, err = cli(str(path), "--leads", "3", "--days", "2", "--open-rate", "0")

    assert code == 0, err
    assert "3 in flight" in out
    assert "3 leads (3 enrollments: 3 waiting, 0 stuck)" in out


# ---------------------------------------------------------------- over-mailing

WITHIN_ITS_CAP = """\
campaign "Daily"
  cap 5 per week
  repeat 5 times:
    send email "a/one" subject "x"
    wait 1 day

campaign "Other"
  repeat 5 times:
    send email "a/two" subject "y"
    wait 1 day
"""


def test_touches_held_by_the_global_cap_are_not_blamed_on_the_campaigns_own_cap(
    tmp_path: Path,
) -> None:
    # Given a campaign that keeps to its own cap (5 a week), and a global cap of 6 a week
    # that two campaigns of 5 touches each cannot both fit in
    path = write(tmp_path, WITHIN_ITS_CAP)
    args = (str(path), "--leads", "3", "--days", "10", "--global-cap", "6 per week")

    code, out, err = cli(*args)

    # Then the report says it was the global cap that held touches back, for both
    assert code == 0, err
    assert "Daily: 3 touches held back by a cap (the global cap, 6 per week)" in out
    assert "Other: 3 touches held back by a cap (the global cap, 6 per week)" in out
    assert "(5 per week) at" not in out
    assert report(*args)["max_touches_7d"] == 6


# ---------------------------------------------------------------- days to MQL

QUALIFY = """\
campaign "Qualify"
  if lead.persona == "p1":
    wait 1 day
  elif lead.persona == "p2":
    wait 2 days
  elif lead.persona == "p3":
    wait 3 days
  elif lead.persona == "p4":
    wait 4 days
  elif lead.persona == "p5":
    wait 5 days
  elif lead.persona == "p6":
    wait 6 days
  elif lead.persona == "p7":
    wait 7 days
  elif lead.persona == "p8":
    wait 8 days
  elif lead.persona == "p9":
    wait 9 days
  else:
    wait 10 days
  mql
"""


@pytest.mark.parametrize(
    ("leads", "median", "p90"),
    [(1, 1.0, 1.0), (2, 1.5, 2.0), (3, 2.0, 3.0), (4, 2.5, 4.0), (10, 5.5, 9.0)],
)
def test_days_to_mql_median_and_p90_on_small_samples(
    tmp_path: Path, leads: int, median: float, p90: float
) -> None:
    # Given leads that become MQLs exactly 1, 2, ... 10 days after they arrive
    path = write(tmp_path, QUALIFY)
    profile = tmp_path / "leads.csv"
    lines = ["email,persona", *(f"l{i}@example.com,p{i}" for i in range(1, 11))]
    profile.write_text("\n".join(lines) + "\n", encoding="utf-8")

    data = report(str(path), "--profile", str(profile), "--leads", str(leads), "--days", "20")

    # Then the median is the middle (or the mean of the two middle values) and the
    # p90 the nearest-rank one: the smallest value with 90% of values at or below it
    assert data["leads"] == leads
    assert data["mql"]["count"] == leads
    assert (data["mql"]["days_median"], data["mql"]["days_p90"]) == (median, p90)


# ---------------------------------------------------------------- triggers between campaigns

CHAIN = """\
campaign "A"
  send email "a/one" subject "Hi"
  tag "hot"
  enroll "B"

campaign "B"
  enroll when tagged "hot"
  send email "b/one" subject "More"
  enroll "C"

campaign "C"
  send email "c/one" subject "Last"
"""


def test_a_campaign_reached_by_a_tag_and_an_enroll_step_is_entered_once(tmp_path: Path) -> None:
    path = write(tmp_path, CHAIN)

    data = report(str(path), "-c", "A", "--leads", "6", "--days", "5", "--open-rate", "0")

    assert [campaign(data, n)["enrolled"] for n in ("A", "B", "C")] == [6, 6, 6]
    assert [campaign(data, n)["sent"] for n in ("A", "B", "C")] == [6, 6, 6]
    assert data["touches_per_lead"] == {"mean": 3.0, "max": 3, "total": 18}
    assert data["completed"] == 18


SCORE_SEGMENT = """\
segment "scored"
  score >= 10

campaign "Scorer"
  send email "a/one" subject "Hi"
  score +20

campaign "Hot"
  enroll when segment "scored"
  send email "b/hot" subject "Hot"
"""

STAGE_SEGMENT = """\
segment "mqls"
  stage >= mql

campaign "Scorer"
  send email "a/one" subject "Hi"
  mql

campaign "Hot"
  enroll when segment "mqls"
  send email "b/hot" subject "Hot"
"""


@pytest.mark.parametrize("text", [SCORE_SEGMENT, STAGE_SEGMENT], ids=["score", "stage"])
def test_a_step_that_brings_the_lead_into_a_segment_fires_the_segment_trigger(
    tmp_path: Path, text: str
) -> None:
    # Given a step that changes the score (or the stage) so the lead is in a segment,
    # with nothing else happening to the lead: production's segment sweep enrolls it
    path = write(tmp_path, text)

    data = report(str(path), "-c", "Scorer", "--leads", "5", "--days", "5", "--open-rate", "0")

    assert campaign(data, "Hot")["enrolled"] == 5
    assert campaign(data, "Hot")["sent"] == 5


TAG_ON_ARRIVAL = """\
campaign "Welcome"
  send email "a/one" subject "Hi"

campaign "Customers"
  enroll when tagged "customer"
  send email "b/thanks" subject "Thanks"
"""


def test_tags_a_lead_arrives_with_fire_tag_triggers(tmp_path: Path) -> None:
    # Given leads imported with tags, as `nurture leads import` would create them
    path = write(tmp_path, TAG_ON_ARRIVAL)
    profile = tmp_path / "leads.csv"
    profile.write_text(
        "email,tags\na@example.com,customer\nb@example.com,vip;customer\nc@example.com,vip\n",
        encoding="utf-8",
    )

    data = report(str(path), "-c", "Welcome", "--profile", str(profile), "--days", "5")

    # Then the two tagged `customer` enter the campaign that waits for that tag
    assert campaign(data, "Customers")["enrolled"] == 2
    assert data["touches_per_lead"]["total"] == 5


QUIET_SINCE = """\
campaign "Welcome"
  send email "a/one" subject "Hi"

campaign "Win back"
  enroll when inactive for 90 days
  send email "b/gift" subject "A gift"
"""


@pytest.mark.parametrize(("days", "enrolled"), [(30, 1), (100, 3)])
def test_a_profiles_last_activity_counts_for_inactive_triggers(
    tmp_path: Path, days: int, enrolled: int
) -> None:
    # Given leads last active 218 and 16 days before the run starts, and one with no date
    path = write(tmp_path, QUIET_SINCE)
    profile = tmp_path / "leads.csv"
    profile.write_text(
        "email,last_activity_at\na@example.com,2025-06-01\nb@example.com,2025-12-20\n"
        "c@example.com,\n",
        encoding="utf-8",
    )
    args = ("-c", "Welcome", "--profile", str(profile), "--open-rate", "0")

    data = report(str(path), *args, "--days", str(days))

    # Then the first is quiet enough at once; by day 100 the others are too (day 74, day 90)
    assert campaign(data, "Win back")["enrolled"] == enrolled


# ---------------------------------------------------------------- --profile files


def test_a_suppressed_column_of_no_and_false_suppresses_nobody(tmp_path: Path) -> None:
    path = write(tmp_path, 'campaign "One"\n  send email "a/one" subject "Hi"\n')
    profile = tmp_path / "leads.csv"
    values = ("", "no", "false", "0", "unsubscribed", "yes")
    lines = ["email,suppressed", *(f"l{i}@example.com,{v}" for i, v in enumerate(values))]
    profile.write_text("\n".join(lines) + "\n", encoding="utf-8")

    data = report(str(path), "--profile", str(profile), "--days", "3")

    assert data["leads"] == 6
    assert data["touches_per_lead"]["total"] == 4  # all but `unsubscribed` and `yes`


def test_a_byte_that_is_not_utf8_is_named_by_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'campaign "One"\n  send email "a/one" subject "Hi"\n')
    profile = tmp_path / "leads.csv"
    body = "".join(f"l{i}@example.com,Name{i}\n" for i in range(500)).encode()
    profile.write_bytes(b"email,first_name\n" + body + b"jose@example.com,Jos\xe9\n")

    code, out, err = cli(str(path), "--profile", str(profile), "--json")

    assert code == 2
    assert out == ""
    offset = profile.read_bytes().index(b"\xe9")
    assert f"error: {profile}:502: not UTF-8 text (byte {offset} of the file)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--event-rate", "2"), "--event-rate must be between 0 and 1 (got 2.0)"),
        (("--unsubscribe-rate", "-1"), "--unsubscribe-rate must be between 0 and 1 (got -1.0)"),
        (("--campaign", "华东"), 'no campaign "华东" in '),
    ],
)
def test_more_bad_options_exit_2(tmp_path: Path, option: tuple[str, str], message: str) -> None:
    path = write(tmp_path, HAND)

    code, out, err = cli(str(path), *option, "--json")

    assert code == 2
    assert out == ""
    assert message in err


# ---------------------------------------------------------------- the console script


def nurture(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "nurture"
    return subprocess.run(
        [str(script), "simulate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def test_a_seed_gives_the_same_json_in_every_process() -> None:
    # Given two processes with different string hashing (sets of tags iterate differently)
    args = ("campaigns/", "--leads", "150", "--days", "45", "--seed", "9", "--json")

    one = nurture(*args, env={"PYTHONHASHSEED": "1"})
    two = nurture(*args, env={"PYTHONHASHSEED": "2"})

    assert one.returncode == 0, one.stderr
    assert one.stdout == two.stdout


def test_the_progress_bar_on_a_terminal_stays_off_stdout() -> None:
    # Given a stderr that Rich takes for a terminal, so the progress bar is drawn
    args = ("campaigns/", "-c", "Welcome", "--leads", "2000", "--days", "30", "--json")

    done = nurture(*args, env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["leads"] == 2000
    assert "simulating" in done.stderr
