"""Completion as plain functions: what fits at each place of the language, read from the grammar."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import vocabulary as voc
from langserver import complete, folder
from tests.langserver.conftest import OTHER

CAMPAIGN = 'campaign "C"\n  enroll when lead created\n  send email "a" subject "s" as intro\n'


def labels(text: str, tmp_path: Path) -> set[str]:
    """What is offered at the end of `text`, in a folder beside the neighbour file."""
    (tmp_path / "other.nurture").write_text(OTHER, encoding="utf-8")
    path = str(tmp_path / "c.nurture")
    files = folder.sources(path, text, {})
    lines = text.split("\n")
    found = complete(path, text, len(lines) - 1, len(lines[-1]), folder.names(files))
    return {c.label for c in found}


@pytest.mark.parametrize(
    ("typed", "wanted"),
    [
        ("  window ", {"weekdays", "monday", "daily"}),
        ("  window mon-", {"friday"}),
        ("  cap 3 per ", set(voc.CAP_PERIODS)),
        ("  kind ", set(voc.KINDS)),
        ("  wait until ", {"tuesday"}),
        ("  if stage >= ", set(voc.STAGES)),
        ("  if opened ", {"intro", "within"}),
        ("  enroll when segment ", {"Big SaaS"}),
        ("  exit when ", {"tagged", "opened", "not", "stage"}),
    ],
)
def test_in_a_campaign(tmp_path: Path, typed: str, wanted: set[str]) -> None:
    assert wanted <= labels(CAMPAIGN + typed, tmp_path)


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ('scoring "S"\n  interest:\n    +5 per ', set(voc.INTEREST_ACTIVITIES) | {"event"}),
        ('scoring "S"\n  grade fit: ', set(voc.GRADES)),
        ('scoring "S"\n  mql when fit grade in [', set(voc.GRADES)),
        ("routing\n  assign to team ", {"east"}),
        ("routing\n  accept within 1 day else ", set(voc.SLA_ACTIONS)),
        ("routing\n  notify by ", set(voc.NOTIFY_CHANNELS)),
        ("routing\n  assign ", {"to", "round"}),
        ("fields\n  budget2 ", set(voc.FIELD_TYPES)),
        ("", {"campaign", "scoring", "routing", "team", "segment", "fields"}),
    ],
)
def test_outside_campaigns(tmp_path: Path, text: str, wanted: set[str]) -> None:
    assert wanted <= labels(text, tmp_path)


def test_a_broken_line_above_leaves_the_blocks_around_the_cursor(tmp_path: Path) -> None:
    text = CAMPAIGN + "  if opened within 3 days:\n    send email (((\n    wait 2 "
    assert set(voc.UNITS) <= labels(text, tmp_path)


def test_a_string_being_typed_is_replaced_whole(tmp_path: Path) -> None:
    text = CAMPAIGN + '  enroll "Prod"'
    path = str(tmp_path / "c.nurture")
    (tmp_path / "other.nurture").write_text(OTHER, encoding="utf-8")
    names = folder.names(folder.sources(path, text, {}))
    found = complete(path, text, 3, len('  enroll "Pr'), names)
    drip = next(c for c in found if c.label == "Product drip")
    assert (drip.insert, drip.start, drip.end) == ('"Product drip"', 9, 15)
    assert not any(c.kind == "keyword" for c in found)


def test_inside_a_subjects_braces_lead_fields_and_template_variables(tmp_path: Path) -> None:
    text = CAMPAIGN + '  send email "a" subject "Hi {{ lead.fi'
    found = labels(text, tmp_path)
    assert {"lead.first_name", "lead.budget", "unsubscribe_url"} <= found
    assert "scoring" not in found
