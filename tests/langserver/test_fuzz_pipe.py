"""The server survives fuzzed edit sequences: hypothesis drives one `nurture lsp` over a pipe.

The client runs on an event loop in a thread of its own, so that each
hypothesis example (synchronous) can send edits and requests and wait for
the answers.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types as lsp

from tests.langserver.conftest import NURTURE, OTHER, WAIT, Client
from tests.langserver.test_fuzz import PIECES, texts

T = TypeVar("T")


class Background:
    """A `Client` talking to `nurture lsp` from an event loop in another thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = Client()
        self.run(self._start())

    def run(self, work: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(WAIT * 2)

    async def _start(self) -> None:
        client = self.client

        @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            client.queue(params.uri).put_nowait(params)

        await client.start_io(NURTURE, "lsp")
        params = lsp.InitializeParams(capabilities=lsp.ClientCapabilities())
        await asyncio.wait_for(client.initialize_async(params), WAIT)
        client.initialized(lsp.InitializedParams())

    async def until_version(self, uri: str, version: int) -> list[lsp.Diagnostic]:
        while True:
            params = await asyncio.wait_for(self.client.queue(uri).get(), WAIT)
            if params.version == version:
                return list(params.diagnostics)

    def alive(self) -> bool:
        server = self.client._server
        return server is not None and server.returncode is None

    async def _stop(self) -> None:
        await asyncio.wait_for(self.client.shutdown_async(None), WAIT)
        self.client.exit(None)
        await self.client.stop()

    def stop(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Background, Path]]:
    folder = tmp_path_factory.mktemp("fuzz") / "campaigns"
    folder.mkdir()
    (folder / "other.nurture").write_text(OTHER, encoding="utf-8")
    background = Background()
    yield background, folder
    background.stop()


def position(text: str, offset: int) -> lsp.Position:
    """The LSP position (UTF-16 columns) of a character offset."""
    before = text[:offset]
    line = before.count("\n")
    column = before.rsplit("\n", 1)[-1]
    return lsp.Position(line, len(column.encode("utf-16-le")) // 2)


edits = st.lists(
    st.tuples(st.integers(0, 2000), st.integers(0, 30), st.sampled_from(PIECES)), max_size=10
)
numbers = itertools.count()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(base=texts, changes=edits)
def test_fuzzed_edits_never_take_the_server_down(
    server: tuple[Background, Path], base: str, changes: list[tuple[int, int, str]]
) -> None:
    background, folder = server
    client = background.client
    uri = (folder / f"fuzz{next(numbers)}.nurture").as_uri()
    text, version = base, 1

    async def open_it() -> None:
        item = lsp.TextDocumentItem(uri=uri, language_id="nurture", version=1, text=text)
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))

    background.run(open_it())
    for at, cut, typed in changes:
        at = min(at, len(text))
        end = min(at + cut, len(text))
        start_pos, end_pos = position(text, at), position(text, end)
        text = text[:at] + typed + text[end:]
        version += 1

        async def edit(
            v: int = version, a: lsp.Position = start_pos, b: lsp.Position = end_pos, t: str = typed
        ) -> None:
            client.edit(uri, v, (a.line, a.character), (b.line, b.character), t)

        background.run(edit())
        here = position(text, at + len(typed))
        background.run(client.complete(uri, here.line, here.character))
        background.run(client.hover(uri, here.line, max(here.character - 1, 0)))
        background.run(client.definition(uri, here.line, here.character))
    background.run(client.symbols(uri))
    background.run(background.until_version(uri, version))

    async def close_it() -> None:
        doc = lsp.TextDocumentIdentifier(uri=uri)
        client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=doc))

    background.run(close_it())
    assert background.alive()
