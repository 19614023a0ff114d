"""Completion: the keywords the grammar accepts at the cursor and the names that fit there.

Keywords come from the grammar (see `langserver.grammar`); names from the
language's vocabulary (channels, units, days, stages, ...) and from the
folder (campaigns, segments, teams, fields, tags, templates on disk).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from dsl import vocabulary as voc
from langserver import folder
from langserver.grammar import Expected, grammar

_ITEM_START = re.compile(r"[^\s#]")
_PARTIAL = re.compile(r"(lead\.)?\w*$")
_REST_OF_STRING = re.compile(r'(?:\\.|[^"\\])*"')


@dataclass(frozen=True, slots=True)
class Completion:
    """One item to offer, replacing the text from `start` to `end` (0-based columns) of the line."""

    label: str
    kind: str  # keyword | field | template | campaign | segment | team | value | unit | day
    detail: str
    insert: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Cursor:
    quoted: bool  # inside a string: only quoted names fit
    before: str  # the line up to the word being typed
    start: int  # where that word (or its opening quote) starts
    end: int  # where it ends, a closing quote included


def complete(path: str, text: str, line: int, column: int, names: folder.Names) -> list[Completion]:
    """What may be typed at (line, column), both 0-based."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return []
    cursor = _cursor(lines[line], column)
    expected = _expected(lines, line, cursor.before)
    if expected is None:
        return []
    found: list[Completion] = []
    if cursor.quoted and _in_template_code(lines[line][cursor.start : column]):
        word = _PARTIAL.search(lines[line][:column])
        start = word.start() if word else column
        at = _Cursor(True, "", start, column)
        return [
            *_fields(names, at),
            *(_item(g, "value", "template variable", at) for g in voc.TEMPLATE_GLOBALS),
        ]
    if cursor.quoted:
        if "STRING" in expected.terminals:
            kind, words = _string_choices(expected, names, path)
            found.extend(_item(w, kind, detail, cursor, quoted=True) for w, detail in words)
        return found
    found.extend(_item(w, "keyword", "keyword", cursor) for w in expected.words())
    if "FIELD" in expected.terminals:
        found.extend(_fields(names, cursor))
    if "NAME" in expected.terminals:
        kind, words = _name_choices(expected, names, path, line + 1)
        found.extend(_item(w, kind, detail, cursor) for w, detail in words)
    if "STRING" in expected.terminals:
        kind, words = _string_choices(expected, names, path)
        found.extend(_item(w, kind, detail, cursor, quoted=True) for w, detail in words)
    return found


def _cursor(line: str, column: int) -> _Cursor:
    column = min(column, len(line))
    head = line[:column]
    quote = _open_quote(head)
    if quote is not None:
        rest = _REST_OF_STRING.match(line, column)
        return _Cursor(True, head[:quote], quote, rest.end() if rest else column)
    match = _PARTIAL.search(head)
    start = match.start() if match else column
    rest = re.match(r"\w*", line[column:])
    return _Cursor(False, head[:start], start, column + (rest.end() if rest else 0))


def _in_template_code(string: str) -> bool:
    """Whether a text typed so far (from its quote) is inside `{{ ... }}` or `{% ... %}`."""
    opened = max(string.rfind("{{"), string.rfind("{%"))
    return opened >= 0 and opened > max(string.rfind("}}"), string.rfind("%}"))


def _open_quote(head: str) -> int | None:
    """Where the string the cursor is in starts, if it is in one."""
    inside, start, i = False, 0, 0
    while i < len(head):
        char = head[i]
        if char == "\\" and inside:
            i += 2
            continue
        if char == '"':
            inside, start = not inside, i
        elif char == "#" and not inside:
            return None
        i += 1
    return start if inside else None


def _expected(lines: list[str], line: int, before: str) -> Expected | None:
    """What the grammar expects: after the whole item so far, else after the lines around."""
    if _ITEM_START.match(before) or (not before.strip() and not lines[line][:1].isspace()):
        start = line
    else:
        start = next((i for i in range(line - 1, -1, -1) if _ITEM_START.match(lines[i])), 0)
    if start == line:
        return grammar().expected(before)
    found = grammar().expected("\n".join([*lines[start:line], before]))
    if found is not None:
        return found
    return grammar().expected("\n".join([*_ancestors(lines, line, before), before]))


def _ancestors(lines: list[str], line: int, before: str) -> list[str]:
    """The lines that open the blocks the cursor is in: a broken line above is left out."""
    indent = len(before) - len(before.lstrip())
    found: list[str] = []
    for i in range(line - 1, -1, -1):
        text = lines[i]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        depth = len(text) - len(text.lstrip())
        if depth < indent:
            found.append(text)
            indent = depth
        if depth == 0:
            break
    return found[::-1]


def _item(word: str, kind: str, detail: str, cursor: _Cursor, quoted: bool = False) -> Completion:
    insert = f'"{_escape(word)}"' if quoted else word
    return Completion(word, kind, detail, insert, cursor.start, cursor.end)


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace('"', '\\"')


def _fields(names: folder.Names, cursor: _Cursor) -> list[Completion]:
    declared = {name: word for name, word in names.defined("field").items()}
    found = [
        _item(f"lead.{f}", "field", f"{t} (standard)", cursor) for f, t in voc.LEAD_FIELDS.items()
    ]
    found += [_item(f"lead.{f}", "field", "declared field", cursor) for f in declared]
    return found


Choices = tuple[str, list[tuple[str, str]]]


def _each(words: Iterable[str], detail: str) -> list[tuple[str, str]]:
    return [(w, detail) for w in words]


def _line_types(expected: Expected) -> list[str]:
    """Token types on the cursor's line (empty at a line's start)."""
    if not expected.tokens:
        return []
    last_line = expected.tokens[-1].line
    return [t.type for t in expected.tokens if t.line == last_line]


def _name_choices(expected: Expected, names: folder.Names, path: str, line: int) -> Choices:
    last, on_line = expected.last(), _line_types(expected)
    first = on_line[0] if on_line else ""
    days = [*voc.WEEKDAYS, *voc.DAY_GROUPS]
    table: list[tuple[bool, Choices]] = [
        (last == "SEND", ("value", _each(voc.CHANNELS, "channel"))),
        (last == "INT", ("unit", _each(voc.UNITS, "unit"))),
        (last == "PER" and "CAP" in on_line, ("unit", _each(voc.CAP_PERIODS, "period"))),
        (last == "PER", ("value", _each(voc.INTEREST_ACTIVITIES, "activity"))),
        (last == "UNTIL", ("day", _each(voc.WEEKDAYS, "weekday"))),
        (first == "WINDOW", ("day", _each(days, "days"))),
        (last == "KIND", ("value", _each(voc.KINDS, "campaign kind"))),
        (first == "ACCEPT" and last == "ELSE", ("value", _each(voc.SLA_ACTIONS, "SLA action"))),
        (last == "THEN", ("value", [("escalate", "SLA action")])),
        (first == "NOTIFY", ("value", _each(voc.NOTIFY_CHANNELS, "channel"))),
        (first == "GRADE", ("value", _each(voc.GRADES, "grade"))),
        ("STAGE" in on_line, ("value", _each(voc.STAGES, "stage"))),
        ("GRADE" in on_line, ("value", _each(voc.GRADES, "grade"))),
        (
            on_line == ["NAME"] and expected.last(2) != "SEND",
            ("value", _each(voc.FIELD_TYPES, "type")),
        ),
        (_engagement(last, expected), ("value", _each(names.aliases(path, line), "message"))),
        (True, ("value", _each(voc.NAMED_LISTS, "list"))),
    ]
    return next(choice for wanted, choice in table if wanted)


def _engagement(last: str, expected: Expected) -> bool:
    after = ("OPENED", "CLICKED", "REPLIED", "BOUNCED")
    return last in after or (last == "STRING" and expected.last(2) == "CLICKED")


def _string_choices(expected: Expected, names: folder.Names, path: str) -> Choices:
    last, before = expected.last(), expected.last(2)
    on_line = _line_types(expected)
    first = on_line[0] if on_line else ""
    if last == "NAME" and before in ("SEND", "BY", "AND"):
        channel = str(expected.tokens[-1])
        return "template", _each(
            folder.template_names(path, channel, names.roots), f"{channel} template"
        )
    if last == "SALES":
        return "template", _each(
            folder.template_names(path, "email", names.roots), "email template"
        )
    if last == "ENROLL":
        return "campaign", _each(names.defined("campaign"), "campaign")
    if last == "SEGMENT" and before == "WHEN":
        return "segment", _each(names.defined("segment"), "segment")
    if last == "TEAM" and first in ("ASSIGN",):
        return "team", _each(names.defined("team"), "team")
    if last == "TAGGED":
        return "value", _each(names.quoted("tag"), "tag")
    if last == "EVENT":
        return "value", _each(names.quoted("event name"), "event")
    return "value", []
