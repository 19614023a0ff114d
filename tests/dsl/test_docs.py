"""The language reference's examples say what `nurture check` does.

docs/language.md marks its examples: a ```nurture valid``` block checks clean,
a ```nurture expect=CODE``` block gives that diagnostic, and the ```text```
block right after it is exactly what `nurture check` prints for it. Each runs
as `campaigns/example.nurture`, with the example campaigns' templates and any
template a ```jinja``` block above it shows (its first line names the file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from dsl import CODES, FileTemplates, TemplateFile, analyze
from dsl.errors import sort_key

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "language.md"
EXAMPLE = "campaigns/example.nurture"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\n", re.S | re.M)
JINJA_NAME = re.compile(r"\{# templates/(\S+)\.(\w+)\.j2 #\}")


@dataclass(frozen=True)
class Example:
    line: int
    kind: str  # valid | expect=CODE
    text: str
    templates: dict[str, str]
    printed: str | None


def examples() -> list[Example]:
    doc = DOC.read_text(encoding="utf-8")
    blocks = list(FENCE.finditer(doc))
    templates: dict[str, str] = {}
    found = []
    for i, block in enumerate(blocks):
        lang, info, body = block.group(1), block.group(2).strip(), block.group(3)
        named = JINJA_NAME.match(body) if lang == "jinja" else None
        if named:
            templates[f"{named.group(1)}.{named.group(2)}"] = body
        if lang != "nurture" or not info:
            continue
        after = blocks[i + 1] if i + 1 < len(blocks) else None
        printed = None
        if after is not None and after.group(1) == "text" and info.startswith("expect="):
            printed = after.group(3)
        line = doc.count("\n", 0, block.start()) + 1
        found.append(Example(line, info, body, dict(templates), printed))
    return found


class _DocTemplates:
    """Templates shown in the doc above the example, then the example campaigns' own."""

    def __init__(self, shown: dict[str, str]) -> None:
        self.shown = shown
        self.files = FileTemplates()

    def find(self, channel: str, name: str, near: str) -> TemplateFile | None:
        text = self.shown.get(f"{name}.{channel}")
        if text is not None:
            return TemplateFile(f"campaigns/templates/{name}.{channel}.j2", text)
        return self.files.find(channel, name, near)


EXAMPLES = examples()


@pytest.fixture(autouse=True)
def in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e.line}" for e in EXAMPLES])
def test_doc_example_checks_as_marked(example: Example) -> None:
    # Given an example from the language reference, checked as a campaign file
    analysis = analyze({EXAMPLE: example.text}, _DocTemplates(example.templates))
    found = sorted(analysis.diagnostics, key=lambda d: (*sort_key(d), d.message))

    # Then a valid one has no problem, and an expect= one has its code and prints as shown
    if example.kind == "valid":
        assert not found, "\n".join(d.render() for d in found)
        return
    code = example.kind.removeprefix("expect=")
    assert code in {d.code for d in found}, "\n".join(d.render() for d in found)
    if example.printed is not None:
        assert "\n\n".join(d.render() for d in found) + "\n" == example.printed


def test_every_code_has_a_doc_entry_with_an_example() -> None:
    doc = DOC.read_text(encoding="utf-8")
    expected = {e.kind.removeprefix("expect=") for e in EXAMPLES if e.kind != "valid"}
    for code in CODES:
        assert f"\n### {code}\n" in doc, f"no docs entry for {code}"
        row = re.search(rf"^\| \[`{code}`\]\(#{code}\) \| \w+ \| (.*) \|$", doc, re.M)
        assert row is not None, f"{code} is not in the table of codes"
        said = row.group(1).replace("\\|", "|")  # a | inside a table cell is written \|
        assert said == CODES[code], f"the table describes {code} otherwise than CODES"
        assert code in expected, f"no ```nurture expect={code}``` example"
