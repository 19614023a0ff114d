"""Write syntaxes/nurture.tmLanguage.json from the language's own grammar and vocabulary.

    python editors/vscode/make_grammar.py

The keywords are the Lark grammar's (dsl/nurture.lark), the units, channels
and days the checker's (dsl/vocabulary.py), so the colours follow the
language; tests/langserver/test_vscode.py fails when the file is stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from dsl import vocabulary as voc
from langserver.grammar import grammar

OUT = Path(__file__).parent / "syntaxes" / "nurture.tmLanguage.json"
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


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {OUT}\n")
