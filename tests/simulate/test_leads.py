"""Synthetic leads from a seed, and leads from a `--profile` CSV file."""

from __future__ import annotations

from collections import Counter
from itertools import islice
from pathlib import Path

import pytest

from dsl.vocabulary import NAMED_LISTS
from nurture.simulate import ProfileError, load_profile, synthetic_leads
from tests.simulate.helpers import program

PERSONAS = """\
fields
  budget number
  timeline text

campaign "Tracks"
  if lead.persona == "cxo":
    send email "a/cxo"
  elif lead.persona == "founder":
    send email "a/founder"
  else:
    send email "a/other"
  if lead.budget >= 50000 and lead.timeline == "this quarter":
    tag "hot"
"""


def test_the_same_seed_draws_the_same_leads() -> None:
    prog = program(PERSONAS)

    first = list(synthetic_leads(50, 3, prog))
    again = list(synthetic_leads(50, 3, prog))
    other = list(synthetic_leads(50, 4, prog))

    assert first == again
    assert first != other
    assert [p.id for p in first[:2]] == ["L000001", "L000002"]


def test_synthetic_leads_look_like_b2b_leads_from_three_continents() -> None:
    prog = program(PERSONAS)

    leads = list(synthetic_leads(2000, 1, prog))

    zones = Counter(p.fields["time_zone"] for p in leads)
    assert {"Asia/Shanghai", "America/New_York", "Europe/Berlin"} <= set(zones)
    regions = {p.fields["region"] for p in leads}
    assert {"Shanghai", "Jiangsu", "Zhejiang", "Guangdong"} <= regions
    domains = Counter(p.fields["email"].rsplit("@", 1)[1] for p in leads)
    freemail = sum(n for d, n in domains.items() if d in NAMED_LISTS["freemail"])
    assert 0.1 < freemail / len(leads) < 0.3
    assert all(p.fields["employees"] >= 5 for p in leads)
    assert any("region:华东" in p.tags for p in leads)
    assert any(p.fields["name"] == p.fields["last_name"] + p.fields["first_name"] for p in leads)


def test_personas_and_field_values_come_from_what_the_campaigns_test() -> None:
    prog = program(PERSONAS)

    leads = list(synthetic_leads(1000, 1, prog))

    personas = Counter(p.fields["persona"] for p in leads)
    assert personas["cxo"] and personas["founder"]  # each branch of the campaign
    assert personas["marketer"] + personas["developer"]  # and its `else`
    assert {p.fields.get("timeline") for p in leads} == {"this quarter", None}
    budgets = {p.fields.get("budget") for p in leads}
    assert 50000 in budgets and len(budgets - {None}) > 2
    titles = {p.fields["title"] for p in leads if p.fields["persona"] == "cxo"}
    assert titles <= {"CEO", "CFO", "CMO", "COO", "CTO", "Founder & CEO"}


def test_leads_are_drawn_lazily() -> None:
    prog = program(PERSONAS)

    first = list(islice(synthetic_leads(10**9, 1, prog), 3))

    assert len(first) == 3


# ---------------------------------------------------------------- CSV


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leads.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_file_gives_one_lead_per_row(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id,email,persona,employees,time_zone,tags,favourite_colour,is_customer\n"
        'a1,li@example.cn,cxo,"1,200",Asia/Shanghai,vip;region:华东,blue,no\n'
        "\n"
        "a2,jo@example.com,marketer,40,America/New_York,,,\n",
    )

    leads = load_profile(path)

    assert [p.id for p in leads] == ["a1", "a2"]
    first = leads[0]
    assert first.fields["employees"] == 1200
    assert first.fields["is_customer"] is False
    assert first.fields["favourite_colour"] == "blue"  # unknown columns become fields
    assert first.tags == frozenset({"vip", "region:华东"})
    assert "tags" not in first.fields and "id" not in first.fields
    assert "favourite_colour" not in leads[1].fields  # empty cells are left out


def test_declared_fields_are_typed(tmp_path: Path) -> None:
    path = write(tmp_path, "email,budget\nli@example.cn,lots\n")

    with pytest.raises(ProfileError) as caught:
        load_profile(path, {"budget": "number"})

    assert str(caught.value) == f"{path}:2: budget: 'lots' is not a number"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("email,employees\na@b.c,12\nx@y.z,many\n", 3, "employees: 'many' is not a number"),
        ("email,persona\nnot-an-email,cxo\n", 2, "email: 'not-an-email' is not an email address"),
        ("email,persona\na@b.c,cxo,extra\n", 2, "3 cells, but the header has 2"),
        ("email,stage\na@b.c,hot\n", 2, "stage 'hot' is not one of"),
        ("email,time_zone\na@b.c,Mars/Olympus\n", 2, "time_zone: 'Mars/Olympus' is not a time"),
        ("email,is_customer\na@b.c,maybe\n", 2, "is_customer: 'maybe' is not yes/no"),
        ("email,email\na@b.c,d@e.f\n", 1, "column 'email' appears twice"),
        ("id,email\nx,a@b.c\nx,d@e.f\n", 3, "lead id 'x' appears twice"),
        ("", 1, "no header row"),
        ('email,persona\na@b.c,"cxo\nd@e.f,marketer\n', 3, "not valid CSV: a quoted cell"),
    ],
)
def test_a_bad_row_names_the_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ProfileError) as caught:
        load_profile(path)

    assert str(caught.value).startswith(f"{path}:{line}: {message}")


def test_a_header_without_rows_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "email,persona\n")

    with pytest.raises(ProfileError, match="no leads"):
        load_profile(path)


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(b"email\n\xff\xfe@x\n")

    with pytest.raises(ProfileError, match="not UTF-8"):
        load_profile(path)
