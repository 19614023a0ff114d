"""The language guide, docs/language.md, read as sections: the source of every hover text.

Nothing here repeats the guide's words: a keyword's hover is the first
paragraph of the section about it, with a link to that section, so the
guide and the editor never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "language.md"
"""The guide in the source tree (the language server runs from it, as `nurture` does)."""

_HEADING = re.compile(r"^(#{2,4})\s+(.*)$")
_WORD = re.compile(r"[a-z_]+")


@dataclass(frozen=True, slots=True)
class Section:
    level: int
    title: str
    slug: str
    parent: str
    body: str

    @property
    def paragraph(self) -> str:
        """The first block of prose (a list counts), skipping code blocks and tables."""
        for block in _blocks(self.body):
            if not block.startswith(("```", "|")):
                return block
        return ""

    def link(self) -> str:
        return f"{GUIDE.as_uri()}#{self.slug}"


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    kept = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return kept.replace(" ", "-")


def _blocks(body: str) -> list[str]:
    blocks: list[str] = []
    current: list[str] = []
    fenced = False
    for line in body.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        if not line.strip() and not fenced:
            if current:
                blocks.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


@cache
def sections(path: Path = GUIDE) -> tuple[Section, ...]:
    """Every `##`-and-deeper section of the guide (none when the guide is not installed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ()
    found: list[Section] = []
    level, title, parent = 0, "", ""
    body: list[str] = []
    top = ""
    fenced = False
    seen: dict[str, int] = {}
    for line in [*text.split("\n"), "## "]:
        fenced = fenced != line.startswith("```")
        match = None if fenced else _HEADING.match(line)
        if match is None:
            body.append(line)
            continue
        if title:
            anchor = slug(title)
            seen[anchor] = seen.get(anchor, -1) + 1
            anchor += f"-{seen[anchor]}" if seen[anchor] else ""  # as GitHub numbers repeats
            found.append(Section(level, title, anchor, parent, "\n".join(body).strip()))
        level, title, body = len(match.group(1)), match.group(2).strip(), []
        top = title if level == 2 else top
        parent = "" if level == 2 else top
    return tuple(found)


_NOT_ABOUT_KEYWORDS = ("Keywords", "Diagnostics", "Checking your files")


def keyword_section(word: str, line_words: list[str]) -> Section | None:
    """The section about a keyword, preferring the one whose title shares most of the line's words.

    `enroll` on `enroll when tagged "x"` is "enroll when (triggers)"; on
    `enroll "Drip"` it is "enroll (hand over to another campaign)".
    """
    usable = [s for s in sections() if s.title not in _NOT_ABOUT_KEYWORDS]
    usable = [s for s in usable if s.parent not in _NOT_ABOUT_KEYWORDS]
    titled = [s for s in usable if word in _WORD.findall(s.title.lower())]
    if not titled:
        mention = re.compile(rf"`{re.escape(word)}\b")
        titled = [s for s in usable if mention.search(s.body)]
    if not titled:
        return None
    others = set(line_words) - {word}

    def score(s: Section) -> tuple[int, int]:
        title_words = _WORD.findall(s.title.lower().split("(")[0])
        extra = len(set(title_words) - {word} - others)
        return (-len(others & set(title_words)), extra)

    return min(titled, key=score)


def code_section(code: str) -> Section | None:
    """The guide's section about a diagnostic code (a test file's are under "Campaign tests")."""
    parent = "Campaign tests" if code.startswith("test-") else "Diagnostics"
    return next((s for s in sections() if s.parent == parent and s.title == code), None)


def field_notes(field: str) -> list[str]:
    """The guide's paragraphs about the standard lead fields that mention `lead.<field>`."""
    section = next((s for s in sections() if s.title == "Standard lead fields"), None)
    if section is None:
        return []
    mention = re.compile(rf"`lead\.{re.escape(field)}`")
    return [b for b in _blocks(section.body) if not b.startswith("|") and mention.search(b)]
