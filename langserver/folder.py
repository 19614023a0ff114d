"""A campaign file with its folder: the sources checked together and the names they define.

An open file is checked with the other `.nurture` files of its folder, as
`nurture check <folder>` would, with the editor's unsaved text winning over
the disk. A neighbour that does not parse is left out rather than hiding
every check of the file being edited; a file outside any folder (an unsaved
buffer) is checked alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dsl import Analysis, Diagnostic, FileTemplates, analyze, ast
from dsl.templates import template_filename
from langserver import outline

SUFFIX = ".nurture"


def sources(path: str, text: str, open_docs: Mapping[str, str]) -> dict[str, str]:
    """The file's text and its folder's other `.nurture` files (open ones as edited)."""
    found = {path: text}
    folder = Path(path).parent
    if not Path(path).is_absolute() or not folder.is_dir():
        return found
    try:
        neighbours = sorted(p for p in folder.glob(f"*{SUFFIX}") if p.is_file())
    except OSError:
        return found
    for file in neighbours:
        name = str(file)
        if name == path:
            continue
        if name in open_docs:
            found[name] = open_docs[name]
            continue
        try:
            found[name] = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            continue  # a neighbour we cannot read is not this file's problem
    return found


def check(path: str, files: Mapping[str, str], roots: tuple[Path, ...] = ()) -> Analysis:
    """`nurture check` of the folder, with neighbours that do not parse left out.

    Templates are looked for beside the file, then in `roots` (as `--templates`);
    a buffer never saved has no folder, so its templates are not checked.
    """
    templates = FileTemplates(roots) if Path(path).is_absolute() else None
    analysis = analyze(files, templates)
    if analysis.program is not None:
        return analysis
    broken = {d.span.path for d in analysis.errors} - {path}
    if not broken:
        return analysis
    return analyze({p: t for p, t in files.items() if p not in broken}, templates)


def diagnostics_for(analysis: Analysis, path: str) -> tuple[Diagnostic, ...]:
    return tuple(d for d in analysis.diagnostics if d.span.path == path)


@dataclass(frozen=True, slots=True)
class Names:
    """What the folder defines and uses, for completion and go to definition."""

    items: Mapping[str, tuple[ast.Item, ...]]
    """Each file's top-level items that parse."""
    roots: tuple[Path, ...] = ()
    """More template folders, searched after `templates/` beside the file (`--templates`)."""

    def defined(self, kind: str) -> dict[str, ast.Word]:
        """Names of one kind (campaign, segment, team, scoring, field), first definition wins."""
        found: dict[str, ast.Word] = {}
        for items in self.items.values():
            for what, word in outline.definitions(items):
                if what == kind:
                    found.setdefault(word.value, word)
        return found

    def quoted(self, what: str) -> list[str]:
        """Quoted words used across the folder: "tag", "event name", ..."""
        found: set[str] = set()
        for items in self.items.values():
            for item in items:
                found.update(w.value for k, w in outline.walk.quoted_names(item) if k == what)
        return sorted(v for v in found if v)

    def aliases(self, path: str, line: int) -> list[str]:
        """Message names (`as x`) of the campaign around a line."""
        for item in self.items.get(path, ()):
            if isinstance(item, ast.Campaign) and item.span.line <= line <= item.span.end_line:
                sends = outline.walk.statements(item.body)
                return sorted({s.alias.value for s in sends if isinstance(s, ast.Send) and s.alias})
        return []


def names(files: Mapping[str, str], roots: tuple[Path, ...] = ()) -> Names:
    return Names({path: outline.items(text, path) for path, text in files.items()}, roots)


def template_names(path: str, channel: str, roots: tuple[Path, ...] = ()) -> list[str]:
    """Templates for `channel` in `templates/` beside the campaign file, then in `roots`."""
    suffix = template_filename(channel, "")
    found: set[str] = set()
    for root in _roots(path, roots):
        try:
            files = [p for p in root.rglob(f"*{suffix}") if p.is_file()]
        except OSError:
            continue
        found.update(p.relative_to(root).as_posix()[: -len(suffix)] for p in files)
    return sorted(found)


def template_file(path: str, channel: str, name: str, roots: tuple[Path, ...] = ()) -> Path | None:
    """The file a template name stands for, where `nurture check` would find it."""
    if ".." in Path(name).parts or Path(name).is_absolute():
        return None
    for root in _roots(path, roots):
        file = root / template_filename(channel, name)
        if file.is_file():
            return file
    return None


def _roots(path: str, roots: tuple[Path, ...]) -> list[Path]:
    beside = [Path(path).parent / "templates"] if Path(path).is_absolute() else []
    return [root for root in (*beside, *roots) if root.is_dir()]
