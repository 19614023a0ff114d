"""A real `nurture lsp` process and pygls's own client talking to it over a pipe."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

NURTURE = str(Path(sys.executable).with_name("nurture"))
WAIT = 60.0
"""Seconds to wait for an answer before calling the server hung (a guard, not a timing test)."""

OTHER = """\
campaign "Product drip"
  kind drip
  enroll when segment "Big SaaS"
  send email "drip/tip" subject "A tip"

segment "Big SaaS"
  lead.industry == "saas"

team "east"
  member "li@example.com"

routing
  assign to team "east" when lead.region == "Shanghai"
  assign round robin team "east" otherwise
  accept within 24 hours else reassign

fields
  budget number
"""

TEMPLATES = {
    "welcome/hello.email.j2": "{% block subject %}Hello {{ lead.first_name }}{% endblock %}\nHi",
    "drip/tip.email.j2": "{% block subject %}A tip{% endblock %}\nTip",
    "welcome/card.wechat.j2": '{"title": "Hi"}',
    "welcome/broken.email.j2": "{% block subject %}Oops{% endblock %}\n{{ lead.first_name ",
}


class Client(LanguageClient):
    """pygls's client that keeps every diagnostics notification, per URI, in arrival order."""

    def __init__(self) -> None:
        super().__init__("nurture-tests", "1")
        self.diagnostics: dict[str, asyncio.Queue[lsp.PublishDiagnosticsParams]] = {}

    def queue(self, uri: str) -> asyncio.Queue[lsp.PublishDiagnosticsParams]:
        return self.diagnostics.setdefault(uri, asyncio.Queue())

    async def next_diagnostics(self, uri: str) -> list[lsp.Diagnostic]:
        params = await asyncio.wait_for(self.queue(uri).get(), WAIT)
        return list(params.diagnostics)

    def open(self, path: Path, text: str | None = None, version: int = 1) -> str:
        uri = path.as_uri()
        body = path.read_text(encoding="utf-8") if text is None else text
        item = lsp.TextDocumentItem(uri=uri, language_id="nurture", version=version, text=body)
        self.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))
        return uri

    def replace(self, uri: str, version: int, text: str) -> None:
        """The whole text replaced, as one change."""
        change = lsp.TextDocumentContentChangeWholeDocument(text=text)
        doc = lsp.VersionedTextDocumentIdentifier(uri=uri, version=version)
        params = lsp.DidChangeTextDocumentParams(text_document=doc, content_changes=[change])
        self.text_document_did_change(params)

    def edit(
        self, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str
    ) -> None:
        """One incremental change of a range, as an editor sends while typing."""
        where = lsp.Range(start=lsp.Position(*start), end=lsp.Position(*end))
        change = lsp.TextDocumentContentChangePartial(range=where, text=text)
        doc = lsp.VersionedTextDocumentIdentifier(uri=uri, version=version)
        params = lsp.DidChangeTextDocumentParams(text_document=doc, content_changes=[change])
        self.text_document_did_change(params)

    async def complete(self, uri: str, line: int, character: int) -> list[lsp.CompletionItem]:
        params = lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line, character),
        )
        found = await asyncio.wait_for(self.text_document_completion_async(params), WAIT)
        assert isinstance(found, lsp.CompletionList)
        return list(found.items)

    async def hover(self, uri: str, line: int, character: int) -> str | None:
        params = lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line, character),
        )
        found = await asyncio.wait_for(self.text_document_hover_async(params), WAIT)
        if found is None:
            return None
        assert isinstance(found.contents, lsp.MarkupContent)
        return found.contents.value

    async def definition(self, uri: str, line: int, character: int) -> lsp.Location | None:
        params = lsp.DefinitionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line, character),
        )
        found = await asyncio.wait_for(self.text_document_definition_async(params), WAIT)
        assert found is None or isinstance(found, lsp.Location)
        return found

    async def symbols(self, uri: str) -> list[lsp.DocumentSymbol]:
        params = lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
        found = await asyncio.wait_for(self.text_document_document_symbol_async(params), WAIT)
        return [s for s in found or [] if isinstance(s, lsp.DocumentSymbol)]


@pytest.fixture
def campaigns(tmp_path: Path) -> Path:
    """A campaigns folder: a neighbour file with a drip, a segment, a team, routing and fields."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "other.nurture").write_text(OTHER, encoding="utf-8")
    for name, text in TEMPLATES.items():
        file = folder / "templates" / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    return folder


async def start(campaigns: Path, options: object = None) -> Client:
    """`nurture lsp` started and initialized on the campaigns folder."""
    found = Client()

    @found.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        found.queue(params.uri).put_nowait(params)

    await found.start_io(NURTURE, "lsp")
    params = lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(),
        root_uri=campaigns.as_uri(),
        workspace_folders=[lsp.WorkspaceFolder(uri=campaigns.as_uri(), name="campaigns")],
        initialization_options=options,
    )
    await asyncio.wait_for(found.initialize_async(params), WAIT)
    found.initialized(lsp.InitializedParams())
    return found


async def stop(found: Client) -> None:
    await asyncio.wait_for(found.shutdown_async(None), WAIT)
    found.exit(None)
    await found.stop()


@pytest_asyncio.fixture
async def client(campaigns: Path) -> AsyncIterator[Client]:
    """`nurture lsp` on the campaigns folder; shut down afterwards."""
    found = await start(campaigns)
    yield found
    await stop(found)
