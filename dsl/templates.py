"""Where templates live: `welcome/cxo` sent by email is `templates/welcome/cxo.email.j2`.

The checker asks a `TemplateSource` so that tests and the engine can supply
templates from anywhere; `FileTemplates` looks beside the campaign file first,
then in the folders given with `--templates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TemplateFile:
    path: str
    text: str


class TemplateSource(Protocol):
    def find(self, channel: str, name: str, near: str) -> TemplateFile | None:
        """The template `name` for `channel`, for a campaign in the file `near`."""
        ...


def template_filename(channel: str, name: str) -> str:
    return f"{name}.{channel}.j2"


class FileTemplates:
    """Templates on disk: `<campaign dir>/templates/` first, then each extra root."""

    def __init__(self, roots: tuple[Path, ...] = ()) -> None:
        self.roots = roots

    def find(self, channel: str, name: str, near: str) -> TemplateFile | None:
        if ".." in Path(name).parts or Path(name).is_absolute():
            return None
        relative = template_filename(channel, name)
        for root in (Path(near).parent / "templates", *self.roots):
            candidate = root / relative
            if candidate.is_file():
                return TemplateFile(str(candidate), candidate.read_text(encoding="utf-8"))
        return None


class DictTemplates:
    """Templates held in memory, keyed by `name.channel`: for tests and simulations."""

    def __init__(self, templates: dict[str, str]) -> None:
        self.templates = templates

    def find(self, channel: str, name: str, near: str) -> TemplateFile | None:
        key = f"{name}.{channel}"
        text = self.templates.get(key)
        return None if text is None else TemplateFile(f"<{key}>", text)
