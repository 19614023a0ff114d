"""Formatting is safe: the same program, comments kept, and a second run changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl import parse_module
from langserver.layout import format_text

ROOT = Path(__file__).parents[2]

MESSY = """\
# top
campaign "X"
    kind welcome{TRAILING}
\t# about the send
    send email "a" subject "s"
    if opened within 3 days:   # waits
            tag "x"
            if lead.industry in ["a",
                  "b"]:
                 mql
    else:
      tag "y"
# the end


""".format(TRAILING="   ")

TIDY = """\
# top
campaign "X"
  kind welcome
  # about the send
  send email "a" subject "s"
  if opened within 3 days:   # waits
    tag "x"
    if lead.industry in ["a",
                  "b"]:
      mql
  else:
    tag "y"
# the end
"""


def test_indentation_is_two_spaces_a_level_and_comments_stay() -> None:
    assert format_text(MESSY) == TIDY
    assert format_text(TIDY) is None


def test_a_file_that_does_not_parse_is_left_alone() -> None:
    assert format_text(MESSY.replace('tag "y"', "tag (((")) is None


@pytest.mark.parametrize(
    "file", sorted((ROOT / "campaigns").glob("*.nurture")), ids=lambda p: p.name
)
def test_the_example_campaigns_are_already_formatted(file: Path) -> None:
    assert format_text(file.read_text(encoding="utf-8")) is None


STEPS = ['send email "a" subject "s"', "wait 2 days", 'tag "t"', "mql", "score +5"]


@st.composite
def campaigns(draw: st.DrawFn) -> str:
    """A campaign with nested ifs, each block indented by a random width (tabs too)."""
    widths = draw(
        st.lists(st.sampled_from([" ", "  ", "   ", "    ", "\t"]), min_size=3, max_size=3)
    )
    lines = ['campaign "C"', widths[0] + "enroll when lead created"]

    def block(depth: int, prefix: str) -> None:
        for _ in range(draw(st.integers(1, 3))):
            if depth < 2 and draw(st.booleans()):
                lines.append(
                    prefix + "if opened within 1 day:" + draw(st.sampled_from(["", "  # c"]))
                )
                block(depth + 1, prefix + widths[depth + 1])
            else:
                lines.append(
                    prefix + draw(st.sampled_from(STEPS)) + draw(st.sampled_from(["", " ", "\t"]))
                )
            if draw(st.booleans()):
                lines.append(draw(st.sampled_from(["", "# note", "   # note"])))

    block(0, widths[0])
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(text=campaigns())
def test_formatting_keeps_the_program_and_is_idempotent(text: str) -> None:
    formatted = format_text(text)
    if formatted is None:
        return
    assert _shape(formatted) == _shape(text)
    assert format_text(formatted) is None
    assert formatted.count("#") == text.count("#")


def _shape(text: str) -> str:
    """The program without positions: the parsed items' repr with the spans cut out."""
    return re.sub(r"Span\([^)]*\)", "", repr(parse_module(text).items))
