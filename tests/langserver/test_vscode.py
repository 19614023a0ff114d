"""The VS Code grammar follows the language: its keywords are the Lark grammar's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from langserver.grammar import grammar
from langserver.testfiles import every_keyword

VSCODE = Path(__file__).parents[2] / "editors" / "vscode"


def make_grammar() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_grammar", VSCODE / "make_grammar.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_textmate_grammar_is_the_one_the_language_makes() -> None:
    # a new keyword in dsl/nurture.lark: run `python editors/vscode/make_grammar.py`
    committed = (VSCODE / "syntaxes" / "nurture.tmLanguage.json").read_text(encoding="utf-8")
    assert committed == make_grammar().render()


def test_every_keyword_of_the_grammar_is_coloured() -> None:
    data = json.loads((VSCODE / "syntaxes" / "nurture.tmLanguage.json").read_text(encoding="utf-8"))
    patterns = json.dumps(data["repository"]["keyword"]) + json.dumps(data["repository"]["item"])
    assert all(word in patterns for word in grammar().words)


def test_the_extension_contributes_the_language_grammar_and_server_path() -> None:
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    contributes = package["contributes"]
    assert contributes["languages"][0]["extensions"] == [".nurture"]
    assert contributes["grammars"][0]["scopeName"] == "source.nurture"
    assert contributes["configuration"]["properties"]["nurture.server.path"]["default"] == "nurture"


def test_the_committed_test_file_grammar_is_the_one_the_test_language_makes() -> None:
    # a new keyword in dsl/nurture_test.lark: run `python editors/vscode/make_grammar.py`
    committed = (VSCODE / "syntaxes" / "nurture-test.tmLanguage.json").read_text(encoding="utf-8")
    assert committed == make_grammar().render_tests()


def test_every_keyword_of_the_test_grammar_is_coloured() -> None:
    path = VSCODE / "syntaxes" / "nurture-test.tmLanguage.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    patterns = json.dumps(data["repository"]["keyword"]) + json.dumps(data["repository"]["block"])
    words = every_keyword()
    assert {"settings", "test", "lead", "expect", "sla", "fit_grade"} <= words
    assert all(word in patterns for word in words)


def test_the_extension_contributes_the_test_file_language_to_the_server() -> None:
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    contributes = package["contributes"]
    assert contributes["languages"][1]["extensions"] == [".nurture-test"]
    assert contributes["grammars"][1]["scopeName"] == "source.nurture-test"
    assert "tests/*.nurture-test" in package["scripts"]["test"]
    client = (VSCODE / "extension.js").read_text(encoding="utf-8")
    assert '{ language: "nurture-test" }' in client
