"""The fast parser gives exactly the AST, spans and syntax errors of the reference one.

Fast: `dsl.lexer` and Lark's LALR parser with the `dsl.builder` callbacks, the way
`parse_module` reads a file. Reference: a plain
`Lark(grammar, parser="lalr", propagate_positions=True, postlex=_Indenter())` parse
tree walked by the tree-walking `syntax._Builder`, the way the parser worked before.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark

from dsl import ast, lexer, syntax
from dsl.errors import Diagnostic, DslSyntaxError
from dsl.lexer import NotLexed
from dsl.syntax import _Builder, _get_parser, _Indenter, parse_module

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from corpus import corpus  # noqa: E402

GRAMMAR = (ROOT / "dsl" / "nurture.lark").read_text(encoding="utf-8")
SOURCES = sorted(
    [*(ROOT / "tests" / "fixtures").glob("**/*.nurture"), *(ROOT / "campaigns").glob("*.nurture")]
)
CORPUS = corpus(3000)
CORPUS_LINES = CORPUS.splitlines(keepends=True)


# ---------------------------------------------------------------- the two ways


@cache
def reference_lark() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, postlex=_Indenter())


@cache
def basic_lexer() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="basic", postlex=_Indenter())


def source(text: str) -> str:
    """What `parse_module` hands the parser."""
    return text if text.endswith("\n") else text + "\n"


def reference(text: str, path: str = "t.nurture") -> tuple[ast.Item, ...]:
    builder = _Builder()
    builder.path = path
    items: tuple[ast.Item, ...] = builder.transform(reference_lark().parse(source(text)))
    return items


def fast(text: str, path: str = "t.nurture") -> tuple[ast.Item, ...]:
    parser = _get_parser()
    with parser.lock:
        return parser.parse_fast(source(text), path)


def outcome(parse: Any, text: str) -> tuple[ast.Item, ...] | None:
    """The items, or None when this way cannot read the text."""
    try:
        items: tuple[ast.Item, ...] = parse(text)
    except Exception:
        return None
    return items


def module(text: str) -> tuple[ast.Item, ...] | tuple[Diagnostic, ...]:
    """`parse_module`'s answer: the items, or the diagnostics of its `DslSyntaxError`."""
    try:
        return parse_module(text, "t.nurture").items
    except DslSyntaxError as e:
        assert e.diagnostics, "a syntax error always carries a diagnostic"
        return e.diagnostics


@contextmanager
def reference_only() -> Iterator[None]:
    """`parse_module` as it was before the fast way: every parse by the reference way."""
    parser = _get_parser()

    def refuse(text: str, path: str) -> tuple[ast.Item, ...]:
        raise NotLexed(text)

    parser.parse_fast = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        del parser.parse_fast


def assert_lexers_agree(text: str) -> None:
    """Where the fast lexer reads a text, Lark's lexer and `_Indenter` give the same tokens."""
    try:
        mine = _get_parser().lexer.tokens(text)
    except NotLexed:
        return  # text Lark's lexer reports on; the reference way does that
    theirs = [
        (t.line, t.column, t.end_line, t.end_column, t.type, str(t))
        for t in basic_lexer().lex(text)
    ]
    assert [(*t[:4], t.type, t[4]) for t in mine] == theirs


def assert_same_outcome(text: str) -> None:
    """Same AST from both ways, or both fail, with the same diagnostics."""
    assert_lexers_agree(source(text))
    want = outcome(reference, text)
    got = outcome(fast, text)
    if got is not None:  # the fast way never reads what the reference way would not
        assert got == want
    answer = module(text)
    with reference_only():
        assert answer == module(text)
    if want is not None:
        assert answer == want
    else:
        assert answer and all(isinstance(d, Diagnostic) for d in answer)


# ---------------------------------------------------------------- known sources


def test_the_lexer_gives_larks_tokens_and_indentation() -> None:
    assert _get_parser().lexer.tokens(CORPUS)
    for text in [CORPUS, *(source(p.read_text(encoding="utf-8")) for p in SOURCES)]:
        assert_lexers_agree(text)


def test_the_corpus_gives_the_reference_ast() -> None:
    want = reference(CORPUS, "corpus.nurture")
    assert fast(CORPUS, "corpus.nurture") == want
    assert parse_module(CORPUS, "corpus.nurture").items == want


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_each_source_gives_the_reference_answer(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    want = outcome(reference, text)
    if want is not None:
        # every file that parses is read by the fast way, not handed back to Lark
        assert fast(text) == want
        assert parse_module(text, "t.nurture").items == want
    else:
        assert outcome(fast, text) is None
        diagnostics = module(text)
        with reference_only():
            assert diagnostics == module(text)


@pytest.mark.parametrize(
    "text",
    [
        'segment "s"\n  stage >= mql and lead.x in [mql, sql]\n',  # keywords read as names
        'campaign "c"\n  enroll when returned\n  exit\nsegment "s"\n  stage == returned\n',
        'campaign "c"\n  send email "a" as exit\n  if opened exit within 2 days:\n    mql\n',
        'campaign "c"\n  window mon-fri 09:00-18:00 in "Asia/Shanghai"\n  mql\n',
        'segment "s"\n  score index\n',  # Lark splits "index" into `in dex` here
        'campaign "c"\n  send email "a" as 5\n',  # a number is no name
        'campaign "c"\n  send email "a" as "b"\n',
        'campaign "c"\n  wait 3 lead.days\n',
        'segment "s"\n  lead.region inbound\n',
        'segment "s"\n  (lead.a == 1\n  or lead.b in ["x",\n\t"y"])  # over lines\n',
        'routing\n  assign to team "east" when lead.region == "华东"\n  assign to owner otherwise',
        'team "east"\n  member "li.na@x.io" name "李娜" wecom "lina" phone "+86" weight 2 cap 3'
        " per day\n",
        'team "empty"\nteam "last"',  # teams with no members, one at the end of the file
        'team "t"\n  member "a" name name weight\n',  # an option without its value
        'team "t"\n  member "a" cap 3 per name\n  member "b" weight 2 weight 3\n',
        "fields\n  name text\n  weight number\n  phone text\n",  # new keywords read as names
        'routing\n  accept within 1 day else reassign, then escalate to user "h"\n'
        "  remind 4 hours before\n",
        'routing\n  accept within 1 day else escalate to user "h"\n'
        "  accept within 1 day else notify\n",
        'routing\n  accept within 1 day else reassign, then notify to user "h"\n',
        'routing\n  notify by email "a" and webhook "b"\n  notify by wecom "c"\n',
        'routing\n  notify by email "a" and\n',
        'routing\n  return reasons: "a", "b",\n  "c"\n',
        'routing\n  return reasons: "a", "b"\n  return reasons:\n',
        "fields\n  plan text\r\n  seats number\r\n",
        'campaign "c"\n  mql\n\n  # trailing comment\n   \n',
        'campaign "c"\n    mql\n  exit\n',  # dedent to no open block
        'campaign "c"\n  send email "no end\n',
        'campaign "c"\n  tag "two\n  lines"\n',
        'campaign "c"\n  tag "a\\\\" b"\n  tag "\\"\n',
        'campaign "c"\n  tag "x" $\n',
        'segment "s"\n  lead.a in [1, 2\n',
        "",
        "\n\n# only a comment\n",
    ],
)
def test_edge_cases_give_the_reference_answer(text: str) -> None:
    assert_same_outcome(text)


def test_a_grammar_the_fast_way_does_not_know_still_parses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(lexer._TERMINALS, "INT", (r"[0-9]+", r"[0-9]+"))
    with pytest.warns(RuntimeWarning, match="slow way"):
        parser = syntax._Parser()
    assert not parser.fast
    assert parser.parse(source(CORPUS), "t.nurture") == reference(CORPUS)


def test_threads_each_get_their_own_paths() -> None:
    texts = {f"f{i}.nurture": p.read_text(encoding="utf-8") for i, p in enumerate(SOURCES)}
    texts = {path: text for path, text in texts.items() if outcome(reference, text) is not None}
    serial = {path: parse_module(text, path) for path, text in texts.items()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            parallel = dict(
                zip(texts, pool.map(parse_module, texts.values(), texts.keys()), strict=True)
            )
            assert parallel == serial


# ---------------------------------------------------------------- generated sources

_NAMES = """
    campaign scoring routing segment fields kind enroll when exit reenter after never window
    cap per end lead created tagged event inactive for send wait until tag untag score notify
    sales mql sql if elif else split repeat times opened clicked replied bounced within and or
    not in matches fit grade interest stage decay every assign accept to owner team user round
    robin otherwise as subject time email sms days weeks tuesday weekdays index inbound welcome
    member name weight wecom phone remind before by return reasons then escalate reassign day
    客户 行业 _x x1
"""
_OTHERS = """
    mon-fri lead.persona lead.time lead. lead.9 ١٢ 3 12 50% 2.5% 09:00 9:30 123:45 2026-12-01
    2026-12-012 1.5 1.5.3 +10 -5 >= == != <= < > = ! : ( ) [ ] , - + # #x \\ ; $ .
    "x" "welcome/cxo" "a\\"b" "{{ lead.company }}" "行业:saas" "open close"
"""
NAMES = _NAMES.split()
WORDS = (*NAMES, *_OTHERS.split(), "\t", "\x0c", "\r")


@st.composite
def token_soups(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(WORDS),
                st.sampled_from(["\n", "\n  ", "\n    ", "\n      ", "\n\t", "\r\n  ", " "]),
                st.text(max_size=3),
            ),
            max_size=60,
        )
    )
    return " ".join(parts)


def names() -> st.SearchStrategy[str]:
    """Mostly names and keywords; now and then any other word, where a name should be."""
    return st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(WORDS))


@st.composite
def conditions(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(names())
    text = draw(st.sampled_from(['"x"', '"welcome/cxo"', '"a\\"b"', '"行业:saas"']))
    number = draw(st.sampled_from(["3", "12", "-1.5", "2.5", "400"]))
    simple = [
        f"opened {name} within {number} days",
        f"clicked {text} {name}",
        "replied",
        f"bounced within {number} {name}",
        f"tagged {text}",
        f"event {text} within 7 days",
        f"stage >= {name}",
        f"score >= {number}",
        f"fit grade in [{name}, {name}]",
        f"lead.{name} in [{text},\n      {text}]",
        f"lead.{name} not in {name}",
        f"lead.{name} matches {text}",
        f"lead.{name}",
        f"interest != {number}",
    ]
    cond = draw(st.sampled_from(simple))
    if depth < 2 and draw(st.booleans()):
        other = draw(conditions(depth + 1))
        joint = draw(st.sampled_from(["and", "or", "and not"]))
        cond = draw(st.sampled_from([f"{cond} {joint} {other}", f"not ({cond} {joint} {other})"]))
    return cond


@st.composite
def statements(draw: st.DrawFn, depth: int) -> list[str]:
    pad = "  " * depth
    name = draw(names())
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        choice = draw(st.integers(0, 9)) if depth < 4 else 0
        if choice <= 5:
            lines.append(
                pad
                + draw(
                    st.sampled_from(
                        [
                            f'send email "t/{name}" subject "hi" as {name}',
                            f'send {name} "t"',
                            f"wait {draw(st.integers(0, 30))} {name}",
                            f"wait until {name} 10:00",
                            "wait until 2026-12-01 09:00",
                            f'tag "{name}"',
                            'untag "x"',
                            f"score {draw(st.sampled_from(['+', '-']))}{draw(st.integers(0, 50))}",
                            f'enroll "{name}"',
                            'notify sales "mql/handoff"',
                            "mql",
                            "exit",
                        ]
                    )
                )
            )
        elif choice <= 7:
            lines.append(f"{pad}if {draw(conditions())}:")
            lines += draw(statements(depth + 1))
            if draw(st.booleans()):
                lines.append(f"{pad}elif {draw(conditions())}:")
                lines += draw(statements(depth + 1))
            if draw(st.booleans()):
                lines.append(f"{pad}else:")
                lines += draw(statements(depth + 1))
        elif choice == 8:
            lines.append(f"{pad}split:")
            for label in draw(st.lists(st.sampled_from(['"a" ', '"b" ', ""]), min_size=1)):
                lines.append(f"{pad}  {draw(st.integers(0, 100))}% {label}:")
                lines += draw(statements(depth + 2))
        else:
            lines.append(f"{pad}repeat {draw(st.integers(1, 9))} times:")
            lines += draw(statements(depth + 1))
    return lines


@st.composite
def programs(draw: st.DrawFn) -> str:
    """Mostly valid files: nested blocks, lines over brackets, keywords where names go."""
    lines: list[str] = []
    for i in range(draw(st.integers(1, 3))):
        name = draw(names())
        kind = draw(
            st.sampled_from(["campaign", "campaign", "segment", "scoring", "routing", "team"])
        )
        if kind == "campaign":
            lines.append(f'campaign "c{i}"')
            settings_ = [
                f"kind {name}",
                f'enroll when tagged "{name}"',
                f"exit when {draw(conditions())}",
                "reenter never",
                f"window mon-{name} 09:00-18:00 lead time",
                f"cap 3 per {name}",
                "end after 13 weeks",
            ]
            lines += ["  " + x for x in draw(st.lists(st.sampled_from(settings_), max_size=3))]
            lines += draw(statements(1))
        elif kind == "segment":
            lines += [f'segment "s{i}"', f"  {draw(conditions())}"]
        elif kind == "scoring":
            lines += [f'scoring "s{i}"', "  fit:", f"    +20 when {draw(conditions())}"]
            lines += ["  interest:", f"    +5 per {name}", '    -2 per event "x"']
            lines += [f"  grade fit: A >= 40, {name} >= 2.5, else D", "  mql when fit >= 3"]
        elif kind == "team":
            lines.append(f'team "{name}"')
            options = [f'name "{name}"', "weight 2", f'wecom "{name}"', 'phone "+86"']
            options += [f"cap 3 per {name}", f"weight {draw(st.integers(0, 9))}"]
            for _ in range(draw(st.integers(0, 3))):
                chosen = draw(st.lists(st.sampled_from(options), max_size=3))
                lines.append(f'  member "{name}@x.io" ' + " ".join(chosen))
        else:
            lines += ["routing", f'  assign to team "{name}" when {draw(conditions())}']
            lines += ["  assign to owner otherwise", f"  accept within 4 hours else {name}"]
            extra = [
                f'  notify by email "{name}" and {name} "t"',
                "  remind 2 hours before",
                '  return reasons: "a", "b"',
                f'  accept within 1 day else {name}, then escalate to user "{name}"',
                f'  accept within 1 day else {name} to user "h"',
            ]
            lines += draw(st.lists(st.sampled_from(extra), max_size=3))
    for _ in range(draw(st.integers(0, 2))):  # a slip or a comment here and there
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = draw(
            st.sampled_from(
                [" " + lines[i], lines[i][1:], lines[i] + "  # note", "  # a comment", ""]
            )
        )
    ending = draw(st.sampled_from(["\n", "\n", "\r\n", "  \n"]))
    return ending.join(lines) + draw(st.sampled_from(["", "\n", "\n\n# end\n"]))


@st.composite
def mutated_corpus(draw: st.DrawFn) -> str:
    """A slice of the corpus with lines dropped, duplicated, re-indented, cut or replaced."""
    start = draw(st.integers(0, len(CORPUS_LINES) - 1))
    lines = list(CORPUS_LINES[start : start + draw(st.integers(1, 60))])
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "dup", "indent", "dedent", "cut", "word"]))
        if action == "drop" and len(lines) > 1:
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "indent":
            lines[i] = "  " + lines[i]
        elif action == "dedent":
            lines[i] = lines[i][2:]
        elif action == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        else:
            words = lines[i].split(" ")
            words[draw(st.integers(0, len(words) - 1))] = draw(st.sampled_from(WORDS))
            lines[i] = " ".join(words)
    return "".join(lines)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(token_soups())
def test_token_soups_give_the_same_outcome(text: str) -> None:
    assert_same_outcome(text)


@SETTINGS
@given(programs())
def test_generated_programs_give_the_same_outcome(text: str) -> None:
    assert_same_outcome(text)


@SETTINGS
@given(mutated_corpus())
def test_mutated_corpus_slices_give_the_same_outcome(text: str) -> None:
    assert_same_outcome(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=120))
def test_any_text_gives_the_same_outcome(text: str) -> None:
    assert_same_outcome(text)
