"""`nurture lsp` end to end: pygls's client speaks LSP to the real server over a pipe."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp

from dsl import FileTemplates, analyze
from langserver import docs
from tests.langserver.conftest import Client, start, stop

pytestmark = pytest.mark.asyncio

WELCOME = """\
campaign "Welcome"
  kind welcome
  enroll when lead created
  send email "welcome/hello"
  wait 3 days
  if opened within 3 days:
    send wechat "welcome/card"
  enroll "Product drip"
"""


def expected(folder: Path, path: Path) -> list[tuple[str, str, tuple[int, int, int, int]]]:
    """What `nurture check <folder>` says about `path`: code, message, 0-based range."""
    sources = {str(p): p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.nurture"))}
    analysis = analyze(sources, FileTemplates(()))
    return [
        (
            d.code,
            d.message,
            (d.span.line - 1, d.span.column - 1, d.span.end_line - 1, d.span.end_column - 1),
        )
        for d in analysis.diagnostics
        if d.span.path == str(path)
    ]


def seen(diagnostics: list[lsp.Diagnostic]) -> list[tuple[str, str, tuple[int, int, int, int]]]:
    return [
        (
            str(d.code),
            d.message,
            (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character),
        )
        for d in diagnostics
    ]


async def test_diagnostics_are_the_checkers_own_with_the_folder(
    client: Client, campaigns: Path
) -> None:
    # Given a file with an unknown unit and a campaign that exists only in its neighbour
    path = campaigns / "welcome.nurture"
    text = WELCOME.replace("wait 3 days", "wait 3 dayz")
    path.write_text(text, encoding="utf-8")
    # When it is opened
    uri = client.open(path)
    found = await client.next_diagnostics(uri)
    # Then the server says what `nurture check` of the folder says, with the same ranges
    assert seen(found) == expected(campaigns, path)
    assert [str(d.code) for d in found] == ["unknown-unit"]
    assert found[0].range.start == lsp.Position(4, 9)


async def test_an_edit_brings_new_diagnostics_and_a_fix_clears_them(
    client: Client, campaigns: Path
) -> None:
    path = campaigns / "welcome.nurture"
    path.write_text(WELCOME, encoding="utf-8")
    uri = client.open(path)
    assert await client.next_diagnostics(uri) == []
    # When the user types a campaign name that does not exist
    client.edit(uri, 2, (7, 10), (7, 22), "Nope")
    found = await client.next_diagnostics(uri)
    # Then unknown-campaign points at the name on line 8
    assert [str(d.code) for d in found] == ["unknown-campaign"]
    assert found[0].range.start.line == 7
    assert found[0].source == "nurture"
    href = found[0].code_description
    assert href is not None and href.href.endswith("#unknown-campaign")
    # And when they fix it, the diagnostics go away
    client.edit(uri, 3, (7, 10), (7, 14), "Product drip")
    assert await client.next_diagnostics(uri) == []


async def test_a_syntax_error_is_reported_where_it_is(client: Client, campaigns: Path) -> None:
    path = campaigns / "welcome.nurture"
    path.write_text(WELCOME.replace("  wait 3 days\n", "  wait 3 days (\n"), encoding="utf-8")
    uri = client.open(path)
    found = await client.next_diagnostics(uri)
    assert seen(found) == expected(campaigns, path)
    assert [str(d.code) for d in found] == ["syntax"]
    assert found[0].range.start.line == 4


async def test_template_problems_are_on_the_line_naming_the_template(
    client: Client, campaigns: Path
) -> None:
    path = campaigns / "welcome.nurture"
    path.write_text(WELCOME.replace("welcome/hello", "welcome/broken"), encoding="utf-8")
    uri = client.open(path)
    found = await client.next_diagnostics(uri)
    assert [str(d.code) for d in found] == ["template-error"]
    assert found[0].range.start == lsp.Position(3, 13)
    assert "welcome/broken.email.j2" in found[0].message


async def test_a_neighbour_that_does_not_parse_does_not_hide_this_files_checks(
    client: Client, campaigns: Path
) -> None:
    (campaigns / "broken.nurture").write_text('campaign "B"\n  send (((\n', encoding="utf-8")
    (campaigns / "latin1.nurture").write_bytes(b'campaign "\xe9"\n')
    path = campaigns / "welcome.nurture"
    path.write_text(WELCOME.replace("wait 3 days", "wait 3 dayz"), encoding="utf-8")
    uri = client.open(path)
    assert [str(d.code) for d in await client.next_diagnostics(uri)] == ["unknown-unit"]


async def test_a_file_outside_any_folder_is_checked_alone(client: Client) -> None:
    uri = "untitled:Untitled-1"
    item = lsp.TextDocumentItem(uri=uri, language_id="nurture", version=1, text=WELCOME)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))
    found = await client.next_diagnostics(uri)
    assert [str(d.code) for d in found] == ["unknown-campaign"]


async def test_hover_keyword_field_template_and_hint(client: Client, campaigns: Path) -> None:
    path = campaigns / "welcome.nurture"
    text = WELCOME + '  if lead.budget >= 10 and lead.industry == "saas":\n    wait 2 dayz\n'
    path.write_text(text, encoding="utf-8")
    uri = client.open(path)
    await client.next_diagnostics(uri)
    # a keyword: the first paragraph of its section in the language guide, and a link to it
    send = next(s for s in docs.sections() if s.title == "send")
    about_send = await client.hover(uri, 3, 3)
    assert about_send is not None
    assert send.paragraph in about_send and "language.md#send" in about_send
    # a declared field and a standard one
    budget = await client.hover(uri, 8, 8)
    assert budget is not None and "declared in other.nurture:18" in budget
    industry = await client.hover(uri, 8, 30)
    assert industry is not None and "standard lead field (text)" in industry
    # a template: its file and subject
    hello = await client.hover(uri, 3, 16)
    assert hello is not None and "subject: Hello {{ lead.first_name }}" in hello
    # a diagnostic: its hint
    unit = await client.hover(uri, 9, 12)
    assert unit is not None and "hint:" in unit and "unknown-unit" in unit


async def test_completion_offers_what_fits_there(client: Client, campaigns: Path) -> None:
    path = campaigns / "welcome.nurture"
    text = WELCOME + '  send \n  send email "\n  if lead.\n  wait 3 \n  enroll "\n  \n'
    path.write_text(text, encoding="utf-8")
    uri = client.open(path)

    async def labels(line: int, character: int) -> set[str]:
        return {item.label for item in await client.complete(uri, line, character)}

    assert {"email", "sms", "wechat", "webhook"} <= await labels(8, 7)
    assert await labels(9, 14) == {"welcome/hello", "drip/tip", "welcome/broken"}
    fields = await labels(10, 10)
    assert {"lead.industry", "lead.budget"} <= fields
    assert {"days", "weeks", "hours"} <= await labels(11, 9)
    assert {"Product drip", "Welcome"} <= await labels(12, 10)
    body = await labels(13, 2)
    assert {"send", "wait", "if", "tag", "split", "repeat"} <= body
    assert "campaign" not in body
    # a template is inserted with its quotes, over what was typed
    item = next(i for i in await client.complete(uri, 9, 14) if i.label == "drip/tip")
    assert isinstance(item.text_edit, lsp.TextEdit)
    assert item.text_edit.new_text == '"drip/tip"'
    assert item.text_edit.range.start == lsp.Position(9, 13)


async def test_a_syntax_error_in_the_middle_leaves_completion_and_symbols(
    client: Client, campaigns: Path
) -> None:
    path = campaigns / "welcome.nurture"
    text = (
        WELCOME
        + '\ncampaign "Half typed"\n  enroll when lead created\n  send email (((\n  wait \n\n'
        + 'segment "After"\n  tagged "x"\n'
    )
    path.write_text(text, encoding="utf-8")
    uri = client.open(path)
    assert "syntax" in {str(d.code) for d in await client.next_diagnostics(uri)}
    names = [(s.name, s.kind) for s in await client.symbols(uri)]
    assert names == [
        ("Welcome", lsp.SymbolKind.Module),
        ("Half typed", lsp.SymbolKind.Module),
        ("After", lsp.SymbolKind.Interface),
    ]
    units = {item.label for item in await client.complete(uri, 12, 7)}
    assert {"days", "weeks"} <= units or {"until"} <= units
    body = {item.label for item in await client.complete(uri, 13, 0)}
    assert {"campaign", "segment"} <= body


async def test_go_to_definition(client: Client, campaigns: Path) -> None:
    path = campaigns / "welcome.nurture"
    path.write_text(WELCOME + "  if lead.budget >= 10:\n    mql\n", encoding="utf-8")
    uri = client.open(path)
    other = (campaigns / "other.nurture").as_uri()
    template = await client.definition(uri, 3, 16)
    assert template is not None
    assert template.uri == (campaigns / "templates/welcome/hello.email.j2").as_uri()
    campaign = await client.definition(uri, 7, 12)
    assert campaign is not None and campaign.uri == other
    assert campaign.range.start == lsp.Position(0, 9)
    field = await client.definition(uri, 8, 8)
    assert field is not None and field.range.start == lsp.Position(17, 2)
    other_uri = client.open(campaigns / "other.nurture")
    segment = await client.definition(other_uri, 2, 24)
    assert segment is not None and segment.range.start == lsp.Position(5, 8)
    team = await client.definition(other_uri, 12, 20)
    assert team is not None and team.range.start == lsp.Position(8, 5)


async def test_the_outline(client: Client, campaigns: Path) -> None:
    uri = client.open(campaigns / "other.nurture")
    found = await client.symbols(uri)
    assert [(s.name, s.detail) for s in found] == [
        ("Product drip", "campaign"),
        ("Big SaaS", "segment"),
        ("east", "team"),
        ("routing", "routing"),
        ("fields", "fields"),
    ]
    assert [c.name for c in found[2].children or []] == ["li@example.com"]


async def test_formatting_reindents_and_keeps_comments(client: Client, campaigns: Path) -> None:
    path = campaigns / "welcome.nurture"
    messy = WELCOME.replace("\n  ", "\n    ").replace("  if opened", "# why\n    if opened")
    path.write_text(messy, encoding="utf-8")
    uri = client.open(path)
    params = lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        options=lsp.FormattingOptions(tab_size=2, insert_spaces=True),
    )
    edits = await client.text_document_formatting_async(params)
    assert edits is not None and len(edits) == 1
    assert edits[0].new_text == WELCOME.replace("  if opened", "  # why\n  if opened")
    client.replace(uri, 2, edits[0].new_text)
    again = await client.text_document_formatting_async(params)
    assert not again


async def test_more_template_folders_from_the_editors_options(
    campaigns: Path, tmp_path: Path
) -> None:
    # Given shared templates outside the campaigns folder, named in the initialization options
    shared = tmp_path / "shared"
    (shared / "brand").mkdir(parents=True)
    (shared / "brand" / "news.email.j2").write_text(
        "{% block subject %}News{% endblock %}\nHi", encoding="utf-8"
    )
    path = campaigns / "welcome.nurture"
    path.write_text(WELCOME.replace("welcome/hello", "brand/news"), encoding="utf-8")
    client = await start(campaigns, {"templates": [str(shared)]})
    try:
        uri = client.open(path)
        # Then the template is found there, as `nurture check --templates` finds it
        assert await client.next_diagnostics(uri) == []
        found = await client.definition(uri, 3, 16)
        assert found is not None and found.uri == (shared / "brand/news.email.j2").as_uri()
        client.replace(uri, 2, WELCOME + '  send email "')
        labels = {i.label for i in await client.complete(uri, 8, 14)}
        assert {"brand/news", "welcome/hello"} <= labels
    finally:
        await stop(client)


async def test_an_edit_in_one_file_rechecks_the_open_files_of_its_folder(
    client: Client, campaigns: Path
) -> None:
    # Given the welcome campaign enrolling into "Product drip", defined in the other open file
    path = campaigns / "welcome.nurture"
    path.write_text(WELCOME, encoding="utf-8")
    welcome = client.open(path)
    assert await client.next_diagnostics(welcome) == []
    other = client.open(campaigns / "other.nurture")
    assert await client.next_diagnostics(other) == []
    # When the drip is renamed in the other file (not saved)
    client.edit(other, 2, (0, 10), (0, 22), "Product tips")
    # Then the welcome file hears that its enroll names no campaign now
    found = await client.next_diagnostics(welcome)
    while found == []:  # the welcome file's own first check may still be arriving
        found = await client.next_diagnostics(welcome)
    assert [str(d.code) for d in found] == ["unknown-campaign"]
    assert found[0].range.start == lsp.Position(7, 9)
