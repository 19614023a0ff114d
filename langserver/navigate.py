"""Hover and go to definition: what the word under the cursor is, and where it comes from.

Positions are 0-based (line, column) in characters, as in LSP; spans from the
parser are 1-based and end after their last character.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dsl import Diagnostic, Span
from dsl import vocabulary as voc
from langserver import docs, folder, outline
from langserver.grammar import grammar

_WORD_AT = re.compile(r"(lead\.)?\w+")
_SUBJECT = re.compile(r"{%-?\s*block\s+subject\s*-?%}(.*?){%-?\s*endblock", re.S)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a name is defined: a file and a span in it (the first line for a template)."""

    path: str
    span: Span


def hover(
    path: str,
    text: str,
    line: int,
    column: int,
    names: folder.Names,
    diagnostics: Sequence[Diagnostic] = (),
) -> str | None:
    """Markdown for the hover at (line, column): diagnostics' hints, then what the word is."""
    parts = [_diagnostic(d) for d in diagnostics if outline.contains(d.span, line + 1, column + 1)]
    reference = _reference_at(path, text, line, column)
    if reference is not None:
        parts.append(_about_reference(path, reference, names))
    else:
        parts.extend(_about_word(text, line, column, names))
    return "\n\n---\n\n".join(p for p in parts if p) or None


def definition(path: str, text: str, line: int, column: int, names: folder.Names) -> Target | None:
    """Where the template, campaign, segment, team or field under the cursor is defined."""
    reference = _reference_at(path, text, line, column)
    if reference is not None and reference.kind == "template":
        file = folder.template_file(
            path, reference.channel or "", reference.word.value, names.roots
        )
        return Target(str(file), Span(str(file), 1, 1, 1, 1)) if file else None
    if reference is not None:
        word = names.defined(reference.kind).get(reference.word.value)
        return Target(word.span.path, word.span) if word else None
    field = _word_at(text, line, column)
    if field and field.startswith("lead."):
        word = names.defined("field").get(field.removeprefix("lead."))
        return Target(word.span.path, word.span) if word else None
    return None


def _reference_at(path: str, text: str, line: int, column: int) -> outline.Reference | None:
    for reference in outline.references(outline.items(text, path)):
        if outline.contains(reference.word.span, line + 1, column + 1):
            return reference
    return None


def _word_at(text: str, line: int, column: int) -> str | None:
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return None
    for match in _WORD_AT.finditer(lines[line]):
        if match.start() <= column <= match.end():
            return match.group(0)
    return None


def _diagnostic(d: Diagnostic) -> str:
    text = f"**{d.severity}** `{d.code}`: {d.message}"
    if d.hint:
        text += f"\n\nhint: {d.hint}"
    section = docs.code_section(d.code)
    return text + (f"\n\n[{d.code} in the language guide]({section.link()})" if section else "")


def _about_reference(path: str, reference: outline.Reference, names: folder.Names) -> str:
    name = reference.word.value
    if reference.kind == "template":
        return _about_template(path, reference.channel or "", name, names.roots)
    word = names.defined(reference.kind).get(name)
    if word is None:
        return f"{reference.kind} `{name}`: not defined in this folder"
    return f"{reference.kind} `{name}`, defined in {_where(word.span)}"


def _about_template(path: str, channel: str, name: str, roots: tuple[Path, ...]) -> str:
    file = folder.template_file(path, channel, name, roots)
    if file is None:
        return f"{channel} template `{name}`: no file {Path('templates', name)}.{channel}.j2"
    head = f"{channel} template `{name}`: [{file.name}]({file.as_uri()})"
    try:
        match = _SUBJECT.search(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return head
    return head + (f"\n\nsubject: {match.group(1).strip()}" if match else "")


def _about_word(text: str, line: int, column: int, names: folder.Names) -> list[str]:
    word = _word_at(text, line, column)
    if word is None:
        return []
    if word.startswith("lead."):
        return [_about_field(word.removeprefix("lead."), names)]
    if word not in grammar().words:
        return []
    line_words = re.findall(r"\w+", text.split("\n")[line].lower())
    section = docs.keyword_section(word, line_words)
    if section is None:
        return [f"`{word}`: a keyword of the language"]
    return [f"`{word}`: {section.paragraph}\n\n[{section.title}]({section.link()})"]


def _about_field(field: str, names: folder.Names) -> str:
    declared = names.defined("field").get(field)
    if declared is not None:
        return f"`lead.{field}`: a field declared in {_where(declared.span)}"
    kind = voc.LEAD_FIELDS.get(field)
    if kind is None:
        return f"`lead.{field}`: not a standard field, and no `fields` block declares it"
    notes = docs.field_notes(field)
    return "\n\n".join([f"`lead.{field}`: a standard lead field ({kind})", *notes[:1]])


def _where(span: Span) -> str:
    return f"{Path(span.path).name}:{span.line}"
