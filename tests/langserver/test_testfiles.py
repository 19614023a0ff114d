"""Campaign test files in the editor: `nurture lsp` checks them as `nurture test` does.

The real server over a pipe (pygls's client), on the conftest's campaigns
folder with a `tests/` folder beside them, as `campaigns/tests/` is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp

from dsl import build
from dsl.testcheck import check_tests
from dsl.testfile import parse_tests
from tests.langserver.conftest import Client

pytestmark = pytest.mark.asyncio

WELCOME = """\
campaign "Welcome"
  enroll when lead created
  send email "welcome/hello"
  wait 3 days
  send wechat "welcome/card"
"""
TEST = """\
settings
  run 30 days

test "two leads"
  lead "ana" persona = "cxo"
  lead "bo" persona = "marketer"
  on day 1 "anna" opens "welcome/hello"
  expect "bo" send email "welcome/hi"
  expect no mql
"""


def _test_file(campaigns: Path, text: str = TEST) -> Path:
    (campaigns / "welcome.nurture").write_text(WELCOME, encoding="utf-8")
    (campaigns / "tests").mkdir()
    path = campaigns / "tests" / "welcome.nurture-test"
    path.write_text(text, encoding="utf-8")
    return path


async def test_a_test_file_gets_the_diagnostics_nurture_test_prints(
    client: Client, campaigns: Path
) -> None:
    # Given a test file naming a lead, a message and no lead it does not have
    path = _test_file(campaigns)
    # When it is opened
    uri = client.open(path)
    found = await client.next_diagnostics(uri)
    # Then the server says what `nurture test` says first, with the same places
    sources = {str(p): p.read_text(encoding="utf-8") for p in sorted(campaigns.glob("*.nurture"))}
    wanted = check_tests(parse_tests(TEST, str(path)), build(sources), TEST)
    assert [(str(d.code), d.message) for d in found] == [(d.code, d.message) for d in wanted]
    assert [str(d.code) for d in found] == [
        "test-unknown-lead",
        "test-unknown-message",
        "test-lead-missing",
    ]
    assert (found[0].range.start.line, found[0].range.start.character) == (6, 11)
    assert found[1].data == {"hint": "check the channel and the template name"}
    assert found[0].code_description is not None
    assert found[0].code_description.href.endswith("language.md#test-unknown-lead")

    # And the outline lists the test and its leads
    (test,) = await client.symbols(uri)
    assert (test.name, test.kind) == ("two leads", lsp.SymbolKind.Method)
    assert test.selection_range.start.line == 3
    assert [(c.name, c.kind, c.range.start.line) for c in test.children or []] == [
        ("ana", lsp.SymbolKind.Variable, 4),
        ("bo", lsp.SymbolKind.Variable, 5),
    ]


async def test_a_syntax_error_is_shown_and_a_fix_clears_it(client: Client, campaigns: Path) -> None:
    path = _test_file(campaigns, 'test "x"\n  expect exit "Welcome" becuse "x"\n')
    uri = client.open(path)
    found = await client.next_diagnostics(uri)
    assert [str(d.code) for d in found] == ["test-syntax"]
    assert (found[0].range.start.line, found[0].range.start.character) == (1, 24)
    client.replace(uri, 2, 'test "x"\n  expect send email "welcome/hello" on day 0\n')
    assert await client.next_diagnostics(uri) == []


async def test_an_edited_campaign_checks_its_open_tests_again(
    client: Client, campaigns: Path
) -> None:
    # Given a clean test file and its campaign, both open
    path = _test_file(campaigns, 'test "x"\n  expect send wechat "welcome/card"\n')
    test_uri = client.open(path)
    assert await client.next_diagnostics(test_uri) == []
    campaign_uri = client.open(campaigns / "welcome.nurture")
    await client.next_diagnostics(campaign_uri)
    assert await client.next_diagnostics(test_uri) == []
    # When the campaign stops sending the card (not saved)
    client.replace(campaign_uri, 2, WELCOME.replace('  send wechat "welcome/card"\n', ""))
    await client.next_diagnostics(campaign_uri)
    # Then the test file says it expects a message nobody sends
    found = await client.next_diagnostics(test_uri)
    assert [str(d.code) for d in found] == ["test-unknown-message"]


async def test_completion_offers_the_test_grammars_keywords(
    client: Client, campaigns: Path
) -> None:
    text = 'settings\n  \ntest "x"\n  \n  expect "ana" \n  on day 3 at 10:00 \n  expect sl\n'
    uri = client.open(_test_file(campaigns, text))

    async def labels(line: int, character: int) -> set[str]:
        return {item.label for item in await client.complete(uri, line, character)}

    assert await labels(1, 2) == {"cap", "run", "sales", "start", "settings", "test"}
    body = await labels(3, 2)
    assert {"lead", "tags", "enters", "on", "expect", "cap", "test"} <= body
    assert "settings" not in body
    assert {"send", "mql", "owner", "sla", "score", "grade", "tagged"} <= await labels(4, 15)
    assert {"opens", "clicks", "event", "returned"} <= await labels(5, 20)
    item = next(i for i in await client.complete(uri, 6, 11) if i.label == "sla")
    assert item.text_edit is not None and item.text_edit.range.start.character == 9
    # campaign features stay out of test files; a file that does not parse has no outline
    assert await client.hover(uri, 3, 3) is None
    assert await client.symbols(uri) == []
