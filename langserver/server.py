"""The language server: a thin LSP wire (pygls) over the plain functions of this package.

Campaign test files (`*.nurture-test`) get their own diagnostics, outline and
keyword completion (`langserver.testfiles`); the other features are the
campaigns'.

Formatting is `langserver.layout`'s: indentation only, and only when provably
the same program. Each open file is checked with its folder a short moment after the last
edit (`DEBOUNCE`), in a worker thread so that completion and hover answer
while a large file is checked; a result for text that has since changed is
dropped. Every feature catches its own failure and answers nothing rather
than letting the server die on a half-typed line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from dsl import Analysis, Diagnostic, Span, ast
from langserver import docs, folder, outline, testfiles
from langserver.complete import Completion, complete
from langserver.grammar import grammar
from langserver.layout import format_text
from langserver.navigate import definition, hover

DEBOUNCE = 0.15
"""Seconds of quiet after an edit before the file is checked again."""

log = logging.getLogger(__name__)
T = TypeVar("T")

_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}
_SYMBOL = {
    "campaign": lsp.SymbolKind.Module,
    "scoring": lsp.SymbolKind.Class,
    "routing": lsp.SymbolKind.Namespace,
    "team": lsp.SymbolKind.Struct,
    "member": lsp.SymbolKind.Field,
    "segment": lsp.SymbolKind.Interface,
    "fields": lsp.SymbolKind.Namespace,
    "field": lsp.SymbolKind.Field,
    "test": lsp.SymbolKind.Method,
    "lead": lsp.SymbolKind.Variable,
}
_COMPLETION = {
    "keyword": lsp.CompletionItemKind.Keyword,
    "field": lsp.CompletionItemKind.Field,
    "template": lsp.CompletionItemKind.File,
    "campaign": lsp.CompletionItemKind.Module,
    "segment": lsp.CompletionItemKind.Interface,
    "team": lsp.CompletionItemKind.Struct,
    "unit": lsp.CompletionItemKind.Unit,
    "day": lsp.CompletionItemKind.EnumMember,
    "value": lsp.CompletionItemKind.Value,
}


class NurtureServer(LanguageServer):
    """pygls's server with the checks in flight and the diagnostics last published."""

    def __init__(self, debounce: float = DEBOUNCE) -> None:
        try:
            installed = version("nurture")
        except PackageNotFoundError:  # a source tree never installed
            installed = "0.0.0"
        super().__init__("nurture", installed)
        self.debounce = debounce
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.published: dict[str, tuple[Diagnostic, ...]] = {}
        self.template_roots: tuple[Path, ...] = ()
        """Template folders from the editor's `templates` option, as `nurture check --templates`."""
        self.checked_items: dict[str, tuple[ast.Item, ...]] = {}
        """Each file's items as of its last check: names for completion while typing."""


def path_of(uri: str) -> str:
    """The file a URI names, or the URI itself for an unsaved buffer (then checked alone)."""
    return (to_fs_path(uri) if uri.startswith("file:") else None) or uri


def open_texts(server: NurtureServer) -> dict[str, str]:
    return {path_of(uri): doc.source for uri, doc in server.workspace.text_documents.items()}


def to_range(doc: TextDocument, span: Span) -> lsp.Range:
    start = ServerTextPosition(max(span.line - 1, 0), max(span.column - 1, 0))
    end = ServerTextPosition(max(span.end_line - 1, 0), max(span.end_column - 1, 0))
    return doc.range_to_client_units(ServerTextRange(start, max(start, end)))


def to_lsp(doc: TextDocument, d: Diagnostic) -> lsp.Diagnostic:
    section = docs.code_section(d.code)
    href = lsp.CodeDescription(href=section.link()) if section else None
    return lsp.Diagnostic(
        range=to_range(doc, d.span),
        message=d.message,
        severity=_SEVERITY.get(d.severity, lsp.DiagnosticSeverity.Error),
        code=d.code,
        code_description=href,
        source="nurture",
        data={"hint": d.hint} if d.hint else None,
    )


def schedule(server: NurtureServer, uri: str) -> None:
    """Check the file after the debounce; a newer edit cancels the check not yet started."""
    running = server.pending.pop(uri, None)
    if running is not None:
        running.cancel()
    server.pending[uri] = asyncio.get_running_loop().create_task(_check_later(server, uri))


async def _check_later(server: NurtureServer, uri: str) -> None:
    await asyncio.sleep(server.debounce)
    doc = server.workspace.get_text_document(uri)
    text, version, path = doc.source, doc.version, path_of(uri)
    if testfiles.is_test_file(path):
        await _check_test_file(server, uri)
        return
    files = folder.sources(path, text, open_texts(server))
    try:
        analysis = await asyncio.to_thread(_check_and_read, path, files, server.template_roots)
    except Exception:  # the checker failing must not take the editor's server down
        log.exception("checking %s failed", path)
        return
    server.checked_items[path] = await asyncio.to_thread(outline.items, text, path)
    if server.workspace.get_text_document(uri).version != version:
        return  # edited meanwhile: that edit's check publishes
    _recheck_tests(server, path)
    for other_uri, other in list(server.workspace.text_documents.items()):
        other_path = path_of(other_uri)
        if other_path == path or (other_path in files and files[other_path] == other.source):
            found = folder.diagnostics_for(analysis, other_path)
            server.published[other_uri] = found
            server.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(
                    uri=other_uri,
                    version=other.version,
                    diagnostics=[to_lsp(other, d) for d in found],
                )
            )


async def _check_test_file(server: NurtureServer, uri: str) -> None:
    """A campaign test file, checked against its campaigns as `nurture test` checks it."""
    doc = server.workspace.get_text_document(uri)
    text, version, path = doc.source, doc.version, path_of(uri)
    try:
        found = await asyncio.to_thread(
            testfiles.diagnose, path, text, open_texts(server), server.template_roots
        )
    except Exception:  # the checker failing must not take the editor's server down
        log.exception("checking %s failed", path)
        return
    if server.workspace.get_text_document(uri).version != version:
        return
    server.published[uri] = found
    server.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=[to_lsp(doc, d) for d in found]
        )
    )


def _recheck_tests(server: NurtureServer, path: str) -> None:
    """A campaign file was checked: the open test files that run against it check again."""
    folder_of = Path(path).parent
    for uri in list(server.workspace.text_documents):
        test = Path(path_of(uri))
        if testfiles.is_test_file(str(test)) and folder_of in (test.parent, test.parent.parent):
            schedule(server, uri)


def _check_and_read(path: str, files: dict[str, str], roots: tuple[Path, ...]) -> Analysis:
    """The folder's check; the items it parsed are remembered for the other features."""
    analysis = folder.check(path, files, roots)
    if analysis.program is not None:
        for module in analysis.program.modules:
            outline.remember(files[module.path], module.path, module.items)
    return analysis


def _test_keywords(text: str, line: int, column: int) -> list[Completion]:
    start, end, words = testfiles.keywords(text, line, column)
    return [Completion(w, "keyword", "keyword", w, start, end) for w in words]


def _safely(fn: Callable[..., T], *args: Any) -> T | None:
    try:
        return fn(*args)
    except Exception:  # a feature failing on odd text answers nothing, the server lives on
        log.exception("%s failed", getattr(fn, "__name__", fn))
        return None


def _names(server: NurtureServer, path: str, text: str, typing: bool = False) -> folder.Names:
    """The folder's names; while `typing`, this file's as of its last check (no parse now)."""
    files = folder.sources(path, text, open_texts(server))
    if typing and path in server.checked_items:
        others = {p: outline.items(t, p) for p, t in files.items() if p != path}
        return folder.Names({**others, path: server.checked_items[path]}, server.template_roots)
    return folder.names(files, server.template_roots)


def _position(doc: TextDocument, position: lsp.Position) -> tuple[int, int]:
    at = doc.position_from_client_units(position)
    return at.line, at.character


def create(debounce: float = DEBOUNCE) -> NurtureServer:
    """A server with every feature registered."""
    server = NurtureServer(debounce)

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: NurtureServer, params: lsp.InitializeParams) -> None:
        """More template folders: `{"templates": ["/abs/dir", ...]}` in the options."""
        options = params.initialization_options
        wanted = options.get("templates") if isinstance(options, dict) else None
        if isinstance(wanted, list):
            ls.template_roots = tuple(Path(d) for d in wanted if isinstance(d, str) and d)

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: NurtureServer, params: lsp.InitializedParams) -> None:
        """Build the parse table completion uses now, not on the first completion."""
        asyncio.get_running_loop().run_in_executor(None, grammar)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: NurtureServer, params: lsp.DidOpenTextDocumentParams) -> None:
        schedule(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: NurtureServer, params: lsp.DidChangeTextDocumentParams) -> None:
        schedule(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: NurtureServer, params: lsp.DidSaveTextDocumentParams) -> None:
        schedule(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: NurtureServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        if (task := ls.pending.pop(uri, None)) is not None:
            task.cancel()
        ls.published.pop(uri, None)
        ls.checked_items.pop(path_of(uri), None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def files_changed(ls: NurtureServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        """A template or campaign changed on disk: check the open files again."""
        for uri in list(ls.workspace.text_documents):
            schedule(ls, uri)

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(trigger_characters=[" ", '"', "."]),
    )
    def completion(ls: NurtureServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        path = path_of(doc.uri)
        line, column = _position(doc, params.position)
        if testfiles.is_test_file(path):
            found = _safely(_test_keywords, doc.source, line, column) or []
        else:
            names = _names(ls, path, doc.source, typing=True)
            found = _safely(complete, path, doc.source, line, column, names) or []
        items = []
        for c in found:
            where = ServerTextRange(
                ServerTextPosition(line, c.start), ServerTextPosition(line, c.end)
            )
            edit = lsp.TextEdit(range=doc.range_to_client_units(where), new_text=c.insert)
            items.append(
                lsp.CompletionItem(
                    label=c.label,
                    kind=_COMPLETION.get(c.kind, lsp.CompletionItemKind.Text),
                    detail=c.detail,
                    text_edit=edit,
                    filter_text=c.insert,
                )
            )
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: NurtureServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        path = path_of(doc.uri)
        if testfiles.is_test_file(path):
            return None
        line, column = _position(doc, params.position)
        names = _names(ls, path, doc.source)
        diagnostics = ls.published.get(doc.uri, ())
        text = _safely(hover, path, doc.source, line, column, names, diagnostics)
        if not text:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: NurtureServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        path = path_of(doc.uri)
        if testfiles.is_test_file(path):
            return None
        line, column = _position(doc, params.position)
        target = _safely(definition, path, doc.source, line, column, _names(ls, path, doc.source))
        if target is None:
            return None
        uri = from_fs_path(target.path) if Path(target.path).is_absolute() else target.path
        target_doc = ls.workspace.get_text_document(uri or target.path)
        return lsp.Location(uri=uri or target.path, range=to_range(target_doc, target.span))

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def on_format(ls: NurtureServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        if testfiles.is_test_file(path_of(doc.uri)):
            return []
        formatted = _safely(format_text, doc.source)
        if formatted is None:
            return []
        lines = doc.lines
        end = ServerTextPosition(len(lines), 0)
        whole = doc.range_to_client_units(ServerTextRange(ServerTextPosition(0, 0), end))
        return [lsp.TextEdit(range=whole, new_text=formatted)]

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(ls: NurtureServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        if testfiles.is_test_file(path_of(doc.uri)):
            tests = _safely(testfiles.symbols, doc.source, path_of(doc.uri)) or []
            return [_symbol(doc, s) for s in tests]
        found = _safely(outline.items, doc.source, path_of(doc.uri)) or ()
        return [_symbol(doc, s) for s in outline.symbols(found)]

    return server


def _symbol(doc: TextDocument, symbol: outline.Symbol) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(
        name=symbol.name,
        kind=_SYMBOL.get(symbol.kind, lsp.SymbolKind.Object),
        detail=symbol.kind,
        range=to_range(doc, symbol.span),
        selection_range=to_range(doc, symbol.selection),
        children=[_symbol(doc, c) for c in symbol.children],
    )


def serve() -> None:
    """Speak LSP on stdin/stdout until the editor says exit."""
    create().start_io()
