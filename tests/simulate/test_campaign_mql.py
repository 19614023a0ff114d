"""`nurture simulate` singles out campaigns by their MQLs, and refuses `;`-separated profiles.

Each campaign in the report carries the MQLs attributed to it: a lead's first
MQL counts for the campaign whose `mql` step made it, or, when the scoring
file's `mql when` rule made it, for every campaign the lead was enrolled in at
that moment. Numbers are counted by hand on tiny runs, through the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nurture.intake import FileError, read_rows
from tests.simulate.helpers import cli, report, write

QUIET = ("--open-rate", "0", "--reply-rate", "0", "--event-rate", "0")
"""Leads who never react: only the flow's own steps happen."""
NO_MQL_NOTE = "none became an MQL while in it (by its mql steps or the MQL rule)"


def mqls(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each campaign's `mql` entry, by campaign name."""
    return {c["name"]: c["mql"] for c in data["campaigns"]}


def notes(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("! ")]


# ---------------------------------------------------------------- an `mql` step


STEP = """\
campaign "Qualify"
  send email "a/one" subject "Hi"
  wait 2 days
  mql

campaign "Cold"
  send email "b/one" subject "Hi"
  wait 1 day
  send email "b/two" subject "Again"
"""


def test_an_mql_step_counts_for_its_campaign_and_a_campaign_without_one_is_noted(
    tmp_path: Path,
) -> None:
    # Given 4 leads entering two campaigns, one of which makes every lead an MQL on day 2
    path = write(tmp_path, STEP)
    args = (str(path), "--leads", "4", "--days", "10", *QUIET)

    data = report(*args)

    # Then the 4 MQLs are Qualify's, and Cold, which enrolled the same 4 leads, has none
    assert mqls(data) == {
        "Qualify": {"count": 4, "by_cause": {'campaign "Qualify" step n3': 4}},
        "Cold": {"count": 0, "by_cause": {}},
    }
    # And the run-wide numbers are as before: 4 leads, each an MQL exactly 2 days in
    assert data["mql"] == {
        "count": 4,
        "rate": 1.0,
        "days_median": 2.0,
        "days_p90": 2.0,
        "by_cause": {'campaign "Qualify" step n3': 4},
    }

    # And the text report shows each campaign's MQLs and notes the one that made none
    code, out, err = cli(*args)
    assert code == 0, err
    assert "Qualify (nurture): 4 enrolled, 4 completed, 0 exited, 0 in flight, 4 MQLs" in out
    assert "Cold (nurture): 4 enrolled, 4 completed, 0 exited, 0 in flight, 0 MQLs" in out
    assert notes(out) == [f"! Cold: 4 enrolled, {NO_MQL_NOTE}"]


ONCE = """\
campaign "First"
  mql

campaign "Second"
  wait 1 day
  mql
"""


def test_a_lead_already_an_mql_counts_for_no_later_campaign(tmp_path: Path) -> None:
    # Given two campaigns with an `mql` step: the first qualifies the leads as they arrive
    path = write(tmp_path, ONCE)
    args = (str(path), "--leads", "3", "--days", "5", *QUIET)

    data = report(*args)

    # Then each lead's MQL is counted once, for the first; the second's step makes no new MQL
    assert mqls(data) == {
        "First": {"count": 3, "by_cause": {'campaign "First" step n1': 3}},
        "Second": {"count": 0, "by_cause": {}},
    }
    assert data["mql"]["count"] == 3
    assert data["mql"]["days_median"] == 0.0
    assert [c["completed"] for c in data["campaigns"]] == [3, 3]
    code, out, err = cli(*args)
    assert code == 0, err
    assert "First (nurture): 3 enrolled, 3 completed, 0 exited, 0 in flight, 3 MQLs" in out
    assert notes(out) == [f"! Second: 3 enrolled, {NO_MQL_NOTE}"]


# ---------------------------------------------------------------- the scoring rule

RULE = """\
scoring "Tags"
  mql when tagged "hot"
"""

ENROLLED = """\
campaign "Warm"
  wait 1 day
  tag "hot"
  wait 1 day

campaign "Watch"
  wait 3 days

campaign "Quick"
  tag "seen"

campaign "Never"
  enroll when tagged "nope"
  tag "seen"
"""
ENTRY = ("-c", "Warm", "-c", "Watch", "-c", "Quick")


def test_the_mql_rule_counts_for_every_campaign_the_lead_is_in_at_that_moment(
    tmp_path: Path,
) -> None:
    # Given leads in three campaigns: Warm tags them "hot" (the MQL rule) on day 1, while
    # they wait in Watch until day 3; Quick ended the moment they arrived
    write(tmp_path, RULE, "scoring.nurture")
    write(tmp_path, ENROLLED)
    args = (str(tmp_path), *ENTRY, "--leads", "3", "--days", "5", *QUIET)

    data = report(*args)

    # Then each of the 3 MQLs counts for Warm and for Watch, not for Quick (nor Never)
    rule = {"count": 3, "by_cause": {"scoring rule": 3}}
    none: dict[str, Any] = {"count": 0, "by_cause": {}}
    assert mqls(data) == {"Warm": rule, "Watch": rule, "Quick": none, "Never": none}
    assert [c["enrolled"] for c in data["campaigns"]] == [3, 3, 3, 0]
    # And the run counts each lead once, a day after it arrived
    assert data["mql"] == {
        "count": 3,
        "rate": 1.0,
        "days_median": 1.0,
        "days_p90": 1.0,
        "by_cause": {"scoring rule": 3},
    }

    # And the text notes Quick, which leads entered but left before qualifying; Never,
    # which nobody entered, is not noted
    code, out, err = cli(*args)
    assert code == 0, err
    assert "Watch (nurture): 3 enrolled, 3 completed, 0 exited, 0 in flight, 3 MQLs" in out
    assert "Never: no lead entered" in out
    assert notes(out) == [f"! Quick: 3 enrolled, {NO_MQL_NOTE}"]


def test_a_lead_meeting_the_rule_as_it_arrives_counts_for_the_run_only(tmp_path: Path) -> None:
    # Given one lead imported tagged "hot" (an MQL before any campaign runs) and one not
    write(tmp_path, RULE, "scoring.nurture")
    write(tmp_path, ENROLLED)
    profile = tmp_path / "leads.csv"
    profile.write_text("email,tags\na@example.com,hot\nb@example.com,\n", encoding="utf-8")
    args = (str(tmp_path), *ENTRY, "--profile", str(profile), "--days", "5", *QUIET)

    data = report(*args)

    # Then both are MQLs of the run; only the second, qualified in Warm, counts for campaigns
    assert data["mql"]["count"] == 2
    assert (data["mql"]["days_median"], data["mql"]["days_p90"]) == (0.5, 1.0)
    assert {n: m["count"] for n, m in mqls(data).items()} == {
        "Warm": 1,
        "Watch": 1,
        "Quick": 0,
        "Never": 0,
    }


# ---------------------------------------------------------------- no MQL in the whole run

NOBODY = """\
campaign "One"
  send email "a/one" subject "Hi"

campaign "Two"
  send email "b/one" subject "Hi"
"""


@pytest.mark.parametrize("scoring", [None, 'scoring "Tags"\n  mql when tagged "never"\n'])
def test_with_no_mql_in_the_run_one_note_says_so_not_one_per_campaign(
    tmp_path: Path, scoring: str | None
) -> None:
    # Given two campaigns and no MQL at all: no way to qualify, or a rule nobody meets
    write(tmp_path, NOBODY)
    if scoring is not None:
        write(tmp_path, scoring, "scoring.nurture")
    args = (str(tmp_path), "--leads", "2", "--days", "5", *QUIET)

    code, out, err = cli(*args)

    # Then the run-wide note says it once, and no campaign is noted on its own
    assert code == 0, err
    assert notes(out) == ["! no lead became an MQL in 5 days"]
    assert "2 enrolled, 2 completed, 0 exited, 0 in flight, 0 MQLs" in out
    assert {n: m["count"] for n, m in mqls(report(*args)).items()} == {"One": 0, "Two": 0}


# ---------------------------------------------------------------- --profile separators


@pytest.mark.parametrize(
    ("header", "separator"),
    [("email;first_name;persona", ";"), ("email\tfirst_name\tpersona", "\t")],
    ids=["semicolon", "tab"],
)
def test_a_profile_separated_by_semicolons_or_tabs_is_refused_as_leads_import_refuses_it(
    tmp_path: Path, header: str, separator: str
) -> None:
    # Given a profile saved by a spreadsheet with another separator than the comma
    path = write(tmp_path, NOBODY)
    profile = tmp_path / "leads.csv"
    row = separator.join(("ada@example.com", "Ada", "cxo"))
    profile.write_text(f"{header}\n{row}\n", encoding="utf-8")

    code, out, err = cli(str(path), "--profile", str(profile), "--json")

    # Then the run stops at the header, with the words `nurture leads import` prints
    assert code == 2
    assert out == ""
    expected = (
        f"{profile}:1: the header is one column, {header!r}: "
        f"separate the columns with commas, not {separator!r}"
    )
    assert f"error: {expected}" in err
    with pytest.raises(FileError) as imported:
        read_rows(profile, "leads")
    assert str(imported.value) == expected


def test_a_profile_of_one_column_without_separators_still_runs(tmp_path: Path) -> None:
    path = write(tmp_path, NOBODY)
    profile = tmp_path / "leads.csv"
    profile.write_text("email\na@example.com\nb@example.com\n", encoding="utf-8")

    data = report(str(path), "--profile", str(profile), "--days", "3", *QUIET)

    assert data["leads"] == 2
    assert data["touches_per_lead"]["total"] == 4
