"""Write the TextMate grammars of syntaxes/ from the languages' own grammars and vocabulary.

    python editors/vscode/make_grammar.py

`nurture.tmLanguage.json` (campaigns): the keywords are the Lark grammar's
(dsl/nurture.lark), the units, channels and days the checker's
(dsl/vocabulary.py). `nurture-test.tmLanguage.json` (campaign tests): the
keywords are the test grammar's (dsl/nurture_test.lark). So the colours follow
the languages; tests/langserver/test_vscode.py fails when a file is stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from dsl import vocabulary as voc
from langserver.grammar import grammar
from langserver.testfiles import every_keyword

OUT = Path(__file__).parent / "syntaxes" / "nurture.tmLanguage.json"
TEST_OUT = Path(__file__).parent / "syntaxes" / "nurture-test.tmLanguage.json"
BLOCKS = ("test", "settings")
CLOCK = r"\d{1,2}:\d{2}"
ITEMS = ("campaign", "scoring", "routing", "team", "segment", "fields")
NAME = r"[\p{L}_][\p{L}\p{N}_]*"
STRING = r'"(?:[^"\\]|\\.)*"'


def alternation(words: Iterable[str]) -> str:
    """`a|b|c`, longest first, so that `days` is not read as `day` then `s`."""
    return "|".join(sorted(words, key=lambda w: (-len(w), w)))


def build() -> dict[str, object]:
    keywords = sorted(grammar().words - set(ITEMS))
    channels = alternation(set(voc.CHANNELS) | set(voc.NOTIFY_CHANNELS))
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "nurture",
        "scopeName": "source.nurture",
        "fileTypes": ["nurture"],
        "patterns": [
            {"include": "#comment"},
            {"include": "#item"},
            {"include": "#template"},
            {"include": "#string"},
            {"include": "#field"},
            {"include": "#duration"},
            {"include": "#time"},
            {"include": "#number"},
            {"include": "#keyword"},
            {"include": "#day"},
            {"include": "#operator"},
        ],
        "repository": {
            "comment": {"name": "comment.line.number-sign.nurture", "match": "#.*$"},
            "item": {
                "match": rf"^({alternation(ITEMS)})\b(?:\s+({STRING}))?",
                "captures": {
                    "1": {"name": "storage.type.item.nurture"},
                    "2": {"name": "entity.name.type.nurture"},
                },
            },
            "template": {
                "match": rf"\b(send|notify\s+sales|by|and)\s+(?:({channels})\s+)?({STRING})",
                "captures": {
                    "1": {"name": "keyword.control.nurture"},
                    "2": {"name": "support.type.channel.nurture"},
                    "3": {"name": "string.quoted.double.template-name.nurture"},
                },
            },
            "string": {
                "name": "string.quoted.double.nurture",
                "begin": '"',
                "end": r'"|$',
                "patterns": [
                    {"name": "constant.character.escape.nurture", "match": r"\\."},
                    {
                        "name": "meta.embedded.template.nurture",
                        "begin": r"\{[{%]",
                        "end": r"[}%]\}",
                        "beginCaptures": {
                            "0": {"name": "punctuation.section.embedded.begin.nurture"}
                        },
                        "endCaptures": {"0": {"name": "punctuation.section.embedded.end.nurture"}},
                        "patterns": [
                            {"name": "variable.other.template.nurture", "match": r"[\w.]+"}
                        ],
                    },
                ],
            },
            "field": {"name": "variable.other.field.nurture", "match": rf"\blead\.{NAME}"},
            "duration": {
                "match": rf"\b(\d+)\s+({alternation(voc.UNITS)})\b",
                "captures": {
                    "1": {"name": "constant.numeric.duration.nurture"},
                    "2": {"name": "keyword.other.unit.nurture"},
                },
            },
            "time": {
                "name": "constant.numeric.time.nurture",
                "match": r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}\b",
            },
            "number": {
                "name": "constant.numeric.nurture",
                "match": r"(?<![\w.])[+-]?\d+(?:\.\d+)?%?",
            },
            "keyword": {
                "name": "keyword.control.nurture",
                "match": rf"\b(?:{alternation(keywords)})\b",
            },
            "day": {
                "name": "constant.language.day.nurture",
                "match": rf"\b(?:{alternation(set(voc.WEEKDAYS) | set(voc.DAY_GROUPS))})\b",
            },
            "operator": {"name": "keyword.operator.nurture", "match": r"==|!=|>=|<=|>|<"},
        },
    }


def build_tests() -> dict[str, object]:
    """Campaign test files: blocks, lead names, the messages expected, times, keywords."""
    keywords = sorted(every_keyword() - set(BLOCKS))
    channels = alternation(set(voc.CHANNELS))
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "nurture-test",
        "scopeName": "source.nurture-test",
        "fileTypes": ["nurture-test"],
        "patterns": [
            {"include": "#comment"},
            {"include": "#block"},
            {"include": "#lead"},
            {"include": "#actor"},
            {"include": "#message"},
            {"include": "#string"},
            {"include": "#time"},
            {"include": "#number"},
            {"include": "#keyword"},
            {"include": "#operator"},
        ],
        "repository": {
            "comment": {"name": "comment.line.number-sign.nurture-test", "match": "#.*$"},
            "block": {
                "match": rf"^({alternation(BLOCKS)})\b(?:\s+({STRING}))?",
                "captures": {
                    "1": {"name": "storage.type.item.nurture-test"},
                    "2": {"name": "entity.name.type.nurture-test"},
                },
            },
            "lead": {
                "match": rf"^\s*(lead|expect)\s+({STRING})",
                "captures": {
                    "1": {"name": "keyword.control.nurture-test"},
                    "2": {"name": "variable.other.lead.nurture-test"},
                },
            },
            "actor": {
                "match": rf"^\s*(on)\s+(day)\s+(\d+)(?:\s+(at)\s+({CLOCK}))?\s+({STRING})",
                "captures": {
                    "1": {"name": "keyword.control.nurture-test"},
                    "2": {"name": "keyword.control.nurture-test"},
                    "3": {"name": "constant.numeric.nurture-test"},
                    "4": {"name": "keyword.control.nurture-test"},
                    "5": {"name": "constant.numeric.time.nurture-test"},
                    "6": {"name": "variable.other.lead.nurture-test"},
                },
            },
            "message": {
                "match": rf"\b(send)\s+({channels})\s+({STRING})",
                "captures": {
                    "1": {"name": "keyword.control.nurture-test"},
                    "2": {"name": "support.type.channel.nurture-test"},
                    "3": {"name": "string.quoted.double.template-name.nurture-test"},
                },
            },
            "string": {
                "name": "string.quoted.double.nurture-test",
                "begin": '"',
                "end": r'"|$',
                "patterns": [{"name": "constant.character.escape.nurture-test", "match": r"\\."}],
            },
            "time": {
                "name": "constant.numeric.time.nurture-test",
                "match": r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}\b",
            },
            "number": {
                "name": "constant.numeric.nurture-test",
                "match": r"(?<![\w.])\d+(?:\.\d+)?",
            },
            "keyword": {
                "name": "keyword.control.nurture-test",
                "match": rf"\b(?:{alternation(keywords)})\b",
            },
            "operator": {"name": "keyword.operator.nurture-test", "match": r"==|!=|>=|<=|>|<|="},
        },
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def render_tests() -> str:
    return json.dumps(build_tests(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    TEST_OUT.write_text(render_tests(), encoding="utf-8")
    sys.stdout.write(f"wrote {OUT} and {TEST_OUT}\n")
