"""Language server latency: an edit of a 2,000-line file to its diagnostics, vs `nurture check`.

    python bench/lsp_latency.py [--lines 2000] [--edits 20]

Writes a generated campaign file (bench/corpus.py) and the templates it
names into a temporary folder, then, in the same run, times `nurture check`
on that file (the process a user starts, wall time) and `nurture lsp` (a
real server over a pipe, driven by pygls's client): from sending one
`didChange` (a line's wait changed) to receiving its `publishDiagnostics`,
the debounce included; and a completion asked while such a check runs (the
editor must not stall). Prints medians and the ratio; the goal is <= 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from corpus import corpus

from dsl import FileTemplates, analyze

NURTURE = str(Path(sys.executable).with_name("nurture"))
SEND = re.compile(r'(?:send (\w+)|notify sales) "([^"]+)"')


def write_folder(root: Path, lines: int) -> Path:
    """The campaign file and a template for every name it sends (loop names expanded)."""
    text = corpus(lines)
    file = root / "campaigns.nurture"
    file.write_text(text, encoding="utf-8")
    for channel, name in set(SEND.findall(text)):
        for index in range(1, 7):
            template = (
                root
                / "templates"
                / f"{name.replace('{{ loop.index }}', str(index))}.{channel or 'email'}.j2"
            )
            template.parent.mkdir(parents=True, exist_ok=True)
            body = (
                '{"title": "Hi"}'
                if channel in ("wechat", "webhook")
                else "Hello {{ lead.first_name }}"
            )
            subject = "{% block subject %}Hi{% endblock %}\n" if channel in ("email", "") else ""
            template.write_text(subject + body, encoding="utf-8")
    return file


def time_check(file: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([NURTURE, "check", str(file)], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def time_analyze(file: Path, runs: int) -> list[float]:
    sources = {str(file): file.read_text(encoding="utf-8")}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        analyze(sources, FileTemplates(()))
        times.append(time.perf_counter() - start)
    return times


async def time_lsp(file: Path, edits: int) -> tuple[list[float], list[float]]:
    client = LanguageClient("bench", "1")
    arrived: asyncio.Queue[float] = asyncio.Queue()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        arrived.put_nowait(time.perf_counter())

    await client.start_io(NURTURE, "lsp")
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    text = file.read_text(encoding="utf-8")
    uri = file.as_uri()
    item = lsp.TextDocumentItem(uri=uri, language_id="nurture", version=1, text=text)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))
    await arrived.get()
    line = next(i for i, s in enumerate(text.split("\n")) if s == "  wait 1 week")
    times = []
    for version in range(2, edits + 2):
        where = lsp.Range(start=lsp.Position(line, 7), end=lsp.Position(line, 8))
        change = lsp.TextDocumentContentChangePartial(range=where, text=str(version % 9 + 1))
        doc = lsp.VersionedTextDocumentIdentifier(uri=uri, version=version)
        start = time.perf_counter()
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(text_document=doc, content_changes=[change])
        )
        times.append(await arrived.get() - start)
    typing = []
    for version in range(edits + 2, 2 * edits + 2):
        where = lsp.Range(start=lsp.Position(line, 7), end=lsp.Position(line, 8))
        change = lsp.TextDocumentContentChangePartial(range=where, text=str(version % 9 + 1))
        doc = lsp.VersionedTextDocumentIdentifier(uri=uri, version=version)
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(text_document=doc, content_changes=[change])
        )
        await asyncio.sleep(0.3)  # the check of this edit is running in the server now
        at = lsp.TextDocumentPositionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line, 7)
        )
        start = time.perf_counter()
        await client.text_document_completion_async(
            lsp.CompletionParams(text_document=at.text_document, position=at.position)
        )
        typing.append(time.perf_counter() - start)
        await arrived.get()
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return times, typing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--checks", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        file = write_folder(Path(folder), args.lines)
        size = file.read_text(encoding="utf-8").count("\n")
        check = time_check(file, args.checks)
        inside = time_analyze(file, args.checks)
        edit, typing = asyncio.run(time_lsp(file, args.edits))
    table = Table(
        "measure", "runs", "median ms", "max ms", title=f"nurture lsp, a {size}-line file"
    )
    for name, times in [
        ("nurture check FILE (process)", check),
        ("analyze() in process (what a check costs inside)", inside),
        ("nurture lsp: didChange -> publishDiagnostics", edit),
        ("nurture lsp: completion while that check runs", typing),
    ]:
        table.add_row(
            name,
            str(len(times)),
            f"{statistics.median(times) * 1000:.0f}",
            f"{max(times) * 1000:.0f}",
        )
    console = Console(width=120)
    console.print(table)
    ratio = statistics.median(edit) / statistics.median(check)
    console.print(f"lsp / check: {ratio:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
