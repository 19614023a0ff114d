"""`dsl.regex_risk`: exponential-time shapes are found, ordinary patterns pass."""

from __future__ import annotations

import re
import time

import pytest

from dsl.regex_risk import risk


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "(a*)*b", "(a|a)*$", "(a|ab)*c", r"^(\w+\s?)+$", "(.*a){20}", "(x+x+)+y"],
)
def test_nested_or_ambiguous_repeats_are_found(pattern: str) -> None:
    assert risk(pattern) is not None


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?i)\b(cxo|ceo|cfo|cmo|vp)\b",
        r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$",
        "(ab)+",
        "(a{2})*",
        "([a-z]|_)+",
        r"\d+(\.\d+)?",
        "(?:a++)+",
        "(?>a+)+",
        "(a|b|c)+",
        "@(gmail|qq|163)\\.com$",
    ],
)
def test_ordinary_patterns_pass(pattern: str) -> None:
    assert risk(pattern) is None


def test_a_found_pattern_really_is_slow() -> None:
    # Given a pattern the check refuses, on a text of 22 characters that does not match
    pattern, text = re.compile("(a+)+$"), "a" * 22 + "b"
    # Then Python's engine already takes a noticeable time; each extra `a` doubles it
    started = time.monotonic()
    assert pattern.search(text) is None
    assert time.monotonic() - started > 0.05
    assert risk(pattern.pattern) is not None
