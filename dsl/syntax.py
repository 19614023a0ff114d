"""Text to syntax tree: the Lark grammar, the AST builder and error translation.

This module (with `dsl.lexer` and `dsl.builder`) is the only one that touches
Lark. Its exceptions are turned into `Diagnostic`s here, with words a marketer
understands instead of token names. When a file does not parse, each top-level
item (campaign, scoring, ...) is parsed on its own so that one broken campaign
does not hide the next one's errors.

One LALR parser, two ways to feed it:

* fast: `dsl.lexer` tokenizes and indents with one regex, and Lark's parser
  builds the AST in its reduction callbacks (`dsl.builder`), with no parse tree;
* reference: Lark's contextual lexer, `_Indenter`, a parse tree with
  `propagate_positions`, then `_Builder`. It runs only when the fast way fails,
  so syntax errors are found, and worded, exactly as Lark reports them.

Whenever the fast way succeeds, the reference way gives the same AST, spans
included (tests/dsl/test_syntax_speed_equivalence.py holds the two together).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, cast

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import DedentError, Indenter
from lark.parsers.lalr_parser_state import ParserState

from dsl import ast
from dsl.builder import MAX_DIGITS, AstBuilder, NumberTooLong, parse_conf, routing_parts, whole
from dsl.builder import unquote as unquote
from dsl.errors import ERROR, Diagnostic, DslSyntaxError
from dsl.lexer import GrammarChanged, Lexer, tok_class

Meta = Any  # lark.tree.Meta; typed loosely because Lark fills it dynamically


class _IndentProblem(Exception):
    """Raised inside the token stream when a line dedents to no open block."""

    def __init__(self, line: int, column: int) -> None:
        self.line = line
        self.column = column


_Unreadable = (UnexpectedInput, _IndentProblem, NumberTooLong)
"""What makes a file or a top-level item unreadable, each turned into one diagnostic."""


def _int(tok: Token) -> int:
    return whole(str(tok), tok.line or 1, tok.column or 1)


class _Indenter(Indenter):
    """Python-style INDENT/DEDENT, remembering the last tokens for error messages."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]  # noqa: RUF012 - names fixed by Lark
    CLOSE_PAREN_types = ["RPAR", "RSQB"]  # noqa: RUF012
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def __init__(self) -> None:
        super().__init__()
        self.recent: list[Token] = []

    def handle_NL(self, token: Token) -> Iterator[Token]:
        try:
            yield from super().handle_NL(token)
        except DedentError:
            indent = token.rsplit("\n", 1)[1]
            raise _IndentProblem(token.end_line or 1, len(indent) + 1) from None

    def _process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.recent = []
        for tok in super()._process(stream):  # type: ignore[no-untyped-call]
            self.recent = [*self.recent[-2:], tok]
            yield tok


def _span(path: str, meta: Meta) -> ast.Span:
    if getattr(meta, "empty", True):
        return ast.Span(path, 1, 1, 1, 1)
    return ast.Span(path, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(path: str, tok: Token) -> ast.Span:
    return ast.Span(path, tok.line or 1, tok.column or 1, tok.end_line or 1, tok.end_column or 1)


@v_args(inline=True, meta=True)
class _Builder(Transformer[Token, Any]):
    """Builds `dsl.ast` nodes from Lark's parse tree, bottom-up."""

    path = "<string>"

    # -- helpers
    def _word(self, tok: Token) -> ast.Word:
        value = unquote(tok) if tok.type == "STRING" else str(tok)
        return ast.Word(value, _tok_span(self.path, tok))

    def _s(self, meta: Meta) -> ast.Span:
        return _span(self.path, meta)

    # -- top level
    def start(self, meta: Meta, *items: ast.Item) -> tuple[ast.Item, ...]:
        return items

    def campaign(self, meta: Meta, name: Token, *lines: Any) -> ast.Campaign:
        settings = tuple(x for x in lines if isinstance(x, _SETTING_TYPES))
        body = tuple(x for x in lines if not isinstance(x, _SETTING_TYPES))
        return ast.Campaign(self._word(name), settings, body, self._s(meta))

    # -- settings
    def kind_setting(self, meta: Meta, label: Token) -> ast.KindSetting:
        return ast.KindSetting(self._word(label), self._s(meta))

    def enroll_setting(self, meta: Meta, trigger: ast.Trigger) -> ast.Trigger:
        return trigger

    def trigger_created(self, meta: Meta) -> ast.Trigger:
        return ast.Trigger("created", None, None, self._s(meta))

    def trigger_tagged(self, meta: Meta, tag: Token) -> ast.Trigger:
        return ast.Trigger("tagged", self._word(tag), None, self._s(meta))

    def trigger_event(
        self, meta: Meta, name: Token, count: ast.Count | None = None, within: Any = None
    ) -> ast.Trigger:
        return ast.Trigger("event", self._word(name), None, self._s(meta), count, within)

    def trigger_inactive(self, meta: Meta, duration: ast.Duration) -> ast.Trigger:
        return ast.Trigger("inactive", None, duration, self._s(meta))

    def trigger_segment(self, meta: Meta, name: Token) -> ast.Trigger:
        return ast.Trigger("segment", self._word(name), None, self._s(meta))

    def trigger_returned(self, meta: Meta) -> ast.Trigger:
        return ast.Trigger("returned", None, None, self._s(meta))

    def exit_setting(self, meta: Meta, cond: ast.Cond) -> ast.ExitWhen:
        return ast.ExitWhen(cond, self._s(meta))

    def reenter_after(self, meta: Meta, duration: ast.Duration) -> ast.Reenter:
        return ast.Reenter(duration, self._s(meta))

    def reenter_never(self, meta: Meta) -> ast.Reenter:
        return ast.Reenter(None, self._s(meta))

    def days(self, meta: Meta, *names: Token) -> tuple[tuple[ast.Word, ...], bool]:
        return tuple(self._word(n) for n in names), False

    def day_range(self, meta: Meta, a: Token, b: Token) -> tuple[tuple[ast.Word, ...], bool]:
        return (self._word(a), self._word(b)), True

    def time_range(self, meta: Meta, a: Token, b: Token) -> tuple[ast.Word, ast.Word]:
        return self._word(a), self._word(b)

    def zone_lead(self, meta: Meta) -> ast.Word:
        return ast.Word("lead", self._s(meta))

    def zone_named(self, meta: Meta, name: Token) -> ast.Word:
        return self._word(name)

    def window_setting(
        self,
        meta: Meta,
        days: tuple[tuple[ast.Word, ...], bool],
        times: tuple[ast.Word, ast.Word],
        zone: ast.Word | None = None,
    ) -> ast.Window:
        return ast.Window(days[0], days[1], times[0], times[1], zone, self._s(meta))

    def cap_setting(self, meta: Meta, count: Token, period: Token) -> ast.Cap:
        return ast.Cap(_int(count), self._word(period), self._s(meta))

    def end_setting(self, meta: Meta, duration: ast.Duration) -> ast.EndAfter:
        return ast.EndAfter(duration, self._s(meta))

    # -- statements
    def send(self, meta: Meta, channel: Token, template: Token, *opts: Any) -> ast.Send:
        subject = next((w for k, w in opts if k == "subject"), None)
        alias = next((w for k, w in opts if k == "alias"), None)
        return ast.Send(self._word(channel), self._word(template), subject, alias, self._s(meta))

    def subject(self, meta: Meta, text: Token) -> tuple[str, ast.Word]:
        return "subject", self._word(text)

    def alias(self, meta: Meta, name: Token) -> tuple[str, ast.Word]:
        return "alias", self._word(name)

    def wait(self, meta: Meta, duration: ast.Duration) -> ast.Wait:
        return ast.Wait(duration, self._s(meta))

    def wait_until_day(self, meta: Meta, day: Token, time: Token) -> ast.WaitUntil:
        return ast.WaitUntil(self._word(day), None, self._word(time), self._s(meta))

    def wait_until_date(self, meta: Meta, date: Token, time: Token) -> ast.WaitUntil:
        return ast.WaitUntil(None, self._word(date), self._word(time), self._s(meta))

    def tag(self, meta: Meta, tag: Token) -> ast.TagStmt:
        return ast.TagStmt(self._word(tag), False, self._s(meta))

    def untag(self, meta: Meta, tag: Token) -> ast.TagStmt:
        return ast.TagStmt(self._word(tag), True, self._s(meta))

    def score(self, meta: Meta, delta: int) -> ast.ScoreStmt:
        return ast.ScoreStmt(delta, self._s(meta))

    def signed(self, meta: Meta, sign: Token, digits: Token) -> int:
        return -_int(digits) if sign == "-" else _int(digits)

    def enroll(self, meta: Meta, name: Token) -> ast.EnrollStmt:
        return ast.EnrollStmt(self._word(name), self._s(meta))

    def notify(self, meta: Meta, template: Token) -> ast.Notify:
        return ast.Notify(self._word(template), self._s(meta))

    def mql(self, meta: Meta) -> ast.Mql:
        return ast.Mql(self._s(meta))

    def exit(self, meta: Meta) -> ast.Exit:
        return ast.Exit(self._s(meta))

    def block(self, meta: Meta, *stmts: ast.Stmt) -> tuple[ast.Stmt, ...]:
        return stmts

    def if_stmt(self, meta: Meta, cond: ast.Cond, body: tuple[ast.Stmt, ...], *rest: Any) -> ast.If:
        branches = [ast.Branch(cond, body, self._s(meta))]
        orelse: tuple[ast.Stmt, ...] | None = None
        for clause in rest:
            if isinstance(clause, ast.Branch):
                branches.append(clause)
            else:
                orelse = clause
        return ast.If(tuple(branches), orelse, self._s(meta))

    def elif_clause(self, meta: Meta, cond: ast.Cond, body: tuple[ast.Stmt, ...]) -> ast.Branch:
        return ast.Branch(cond, body, self._s(meta))

    def else_clause(self, meta: Meta, body: tuple[ast.Stmt, ...]) -> tuple[ast.Stmt, ...]:
        return body

    def split_stmt(self, meta: Meta, *arms: ast.SplitArm) -> ast.Split:
        return ast.Split(arms, self._s(meta))

    def split_arm(self, meta: Meta, percent: Token, *rest: Any) -> ast.SplitArm:
        label = self._word(rest[0]) if len(rest) == 2 else None
        return ast.SplitArm(float(percent[:-1]), label, rest[-1], self._s(meta))

    def repeat_stmt(self, meta: Meta, times: Token, body: tuple[ast.Stmt, ...]) -> ast.Repeat:
        return ast.Repeat(_int(times), body, self._s(meta))

    # -- conditions
    def or_cond(self, meta: Meta, *items: ast.Cond) -> ast.Or:
        return ast.Or(items, self._s(meta))

    def and_cond(self, meta: Meta, *items: ast.Cond) -> ast.And:
        return ast.And(items, self._s(meta))

    def not_(self, meta: Meta, item: ast.Cond) -> ast.Not:
        return ast.Not(item, self._s(meta))

    def _engagement(self, kind: str, meta: Meta, parts: tuple[Any, ...]) -> ast.Engagement:
        link = next((self._word(p) for p in parts if isinstance(p, Token)), None)
        message = next((p for p in parts if isinstance(p, ast.Word)), None)
        within = next((p for p in parts if isinstance(p, ast.Duration)), None)
        count = next((p for p in parts if isinstance(p, ast.Count)), None)
        return ast.Engagement(kind, link, message, within, self._s(meta), count)

    def opened(self, meta: Meta, *parts: Any) -> ast.Engagement:
        return self._engagement("opened", meta, parts)

    def clicked(self, meta: Meta, *parts: Any) -> ast.Engagement:
        return self._engagement("clicked", meta, parts)

    def replied(self, meta: Meta, *parts: Any) -> ast.Engagement:
        return self._engagement("replied", meta, parts)

    def bounced(self, meta: Meta, *parts: Any) -> ast.Engagement:
        return self._engagement("bounced", meta, parts)

    def message(self, meta: Meta, name: Token) -> ast.Word:
        return self._word(name)

    def within(self, meta: Meta, duration: ast.Duration) -> ast.Duration:
        return duration

    def tagged(self, meta: Meta, tag: Token) -> ast.Tagged:
        return ast.Tagged(self._word(tag), self._s(meta))

    def event(self, meta: Meta, name: Token, *parts: Any) -> ast.EventCond:
        within = next((p for p in parts if isinstance(p, ast.Duration)), None)
        count = next((p for p in parts if isinstance(p, ast.Count)), None)
        return ast.EventCond(self._word(name), within, self._s(meta), count)

    def count(self, meta: Meta, op: str, number: Token) -> ast.Count:
        return ast.Count(op, _int(number), self._s(meta))

    def compare(self, meta: Meta, subj: ast.Subject, op: str, value: ast.Value) -> ast.Compare:
        return ast.Compare(subj, op, value, self._s(meta))

    def compare_op(self, meta: Meta, op: Token) -> str:
        return str(op)

    def in_(self, meta: Meta, subj: ast.Subject, value: ast.Value) -> ast.Compare:
        return ast.Compare(subj, "in", value, self._s(meta))

    def not_in(self, meta: Meta, subj: ast.Subject, value: ast.Value) -> ast.Compare:
        return ast.Compare(subj, "not in", value, self._s(meta))

    def matches(self, meta: Meta, subj: ast.Subject, pattern: Token) -> ast.Compare:
        value = ast.Value("string", unquote(pattern), _tok_span(self.path, pattern))
        return ast.Compare(subj, "matches", value, self._s(meta))

    def truthy(self, meta: Meta, field: Token) -> ast.Truthy:
        return ast.Truthy(field[len("lead.") :], self._s(meta))

    def subj_field(self, meta: Meta, field: Token) -> ast.Subject:
        return ast.Subject("field", field[len("lead.") :], self._s(meta))

    def subj_score(self, meta: Meta) -> ast.Subject:
        return ast.Subject("score", None, self._s(meta))

    def subj_fit_grade(self, meta: Meta) -> ast.Subject:
        return ast.Subject("fit_grade", None, self._s(meta))

    def subj_fit(self, meta: Meta) -> ast.Subject:
        return ast.Subject("fit", None, self._s(meta))

    def subj_interest(self, meta: Meta) -> ast.Subject:
        return ast.Subject("interest", None, self._s(meta))

    def subj_grade(self, meta: Meta) -> ast.Subject:
        return ast.Subject("grade", None, self._s(meta))

    def subj_stage(self, meta: Meta) -> ast.Subject:
        return ast.Subject("stage", None, self._s(meta))

    def string(self, meta: Meta, tok: Token) -> ast.Value:
        return ast.Value("string", unquote(tok), self._s(meta))

    def number(self, meta: Meta, *parts: Token) -> ast.Value:
        return ast.Value("number", float("".join(parts)), self._s(meta))

    def name(self, meta: Meta, tok: Token) -> ast.Value:
        return ast.Value("name", str(tok), self._s(meta))

    def list_(self, meta: Meta, *items: ast.Value | None) -> ast.Value:
        return ast.Value("list", tuple(i for i in items if i is not None), self._s(meta))

    def duration(self, meta: Meta, amount: Token, unit: Token) -> ast.Duration:
        return ast.Duration(_int(amount), self._word(unit), self._s(meta))

    # -- scoring
    def scoring(self, meta: Meta, name: Token, *parts: Any) -> ast.Scoring:
        flat = [p for part in parts for p in (part if isinstance(part, tuple) else (part,))]

        def only(kind: type[Any]) -> tuple[Any, ...]:
            return tuple(p for p in flat if isinstance(p, kind))

        return ast.Scoring(
            self._word(name),
            only(ast.FitRule),
            only(ast.InterestRule),
            only(ast.Decay),
            only(ast.GradeRule),
            only(ast.MqlRule),
            self._s(meta),
        )

    def fit_rules(self, meta: Meta, *rules: ast.FitRule) -> tuple[ast.FitRule, ...]:
        return rules

    def fit_rule(self, meta: Meta, points: int, cond: ast.Cond) -> ast.FitRule:
        return ast.FitRule(points, cond, self._s(meta))

    def interest_rules(self, meta: Meta, *rules: Any) -> tuple[Any, ...]:
        return rules

    def interest_per(self, meta: Meta, points: int, activity: Token) -> ast.InterestRule:
        return ast.InterestRule(points, self._word(activity), False, self._s(meta))

    def interest_event(self, meta: Meta, points: int, name: Token) -> ast.InterestRule:
        return ast.InterestRule(points, self._word(name), True, self._s(meta))

    def decay(self, meta: Meta, percent: Token, every: ast.Duration) -> ast.Decay:
        return ast.Decay(float(percent[:-1]), every, self._s(meta))

    def grade_rule(self, meta: Meta, target: Token, *steps: ast.GradeStep) -> ast.GradeRule:
        return ast.GradeRule(self._word(target), steps, self._s(meta))

    def grade_target(self, meta: Meta, target: Token) -> Token:
        return target

    def grade_at(self, meta: Meta, letter: Token, threshold: ast.Value) -> ast.GradeStep:
        assert isinstance(threshold.value, float)
        return ast.GradeStep(self._word(letter), threshold.value, self._s(meta))

    def grade_else(self, meta: Meta, letter: Token) -> ast.GradeStep:
        return ast.GradeStep(self._word(letter), None, self._s(meta))

    def mql_rule(self, meta: Meta, cond: ast.Cond) -> ast.MqlRule:
        return ast.MqlRule(cond, self._s(meta))

    # -- routing
    def routing(self, meta: Meta, *lines: Any) -> ast.Routing:
        return ast.Routing(*routing_parts(lines), self._s(meta))

    def assign(
        self, meta: Meta, target: tuple[str, ast.Word | None], cond: ast.Cond | None
    ) -> ast.Assign:
        return ast.Assign(target[0], target[1], cond, self._s(meta))

    def to_owner(self, meta: Meta) -> tuple[str, None]:
        return "owner", None

    def to_team(self, meta: Meta, team: Token) -> tuple[str, ast.Word]:
        return "team", self._word(team)

    def to_user(self, meta: Meta, user: Token) -> tuple[str, ast.Word]:
        return "user", self._word(user)

    def round_robin(self, meta: Meta, team: Token) -> tuple[str, ast.Word]:
        return "round_robin", self._word(team)

    def otherwise(self, meta: Meta) -> None:
        return None

    def sla(
        self,
        meta: Meta,
        within: ast.Duration,
        action: Token,
        target: tuple[ast.Word | None, ast.Word] | None = None,
    ) -> ast.Sla:
        then, user = target if target is not None else (None, None)
        return ast.Sla(within, self._word(action), then, user, self._s(meta))

    def escalate_to(self, meta: Meta, user: Token) -> tuple[None, ast.Word]:
        return None, self._word(user)

    def then_escalate(self, meta: Meta, then: Token, user: Token) -> tuple[ast.Word, ast.Word]:
        return self._word(then), self._word(user)

    def remind(self, meta: Meta, before: ast.Duration) -> ast.Remind:
        return ast.Remind(before, self._s(meta))

    def notify_by(self, meta: Meta, *targets: ast.Notification) -> tuple[ast.Notification, ...]:
        return targets

    def notify_target(self, meta: Meta, channel: Token, template: Token) -> ast.Notification:
        return ast.Notification(self._word(channel), self._word(template), self._s(meta))

    def return_reasons(self, meta: Meta, *reasons: Token) -> ast.ReturnReasons:
        return ast.ReturnReasons(tuple(self._word(r) for r in reasons), self._s(meta))

    # -- teams
    def team(self, meta: Meta, name: Token, *members: ast.Member) -> ast.Team:
        return ast.Team(self._word(name), members, self._s(meta))

    def member(self, meta: Meta, email: Token, *options: ast.MemberOption) -> ast.Member:
        return ast.Member(self._word(email), options, self._s(meta))

    def member_name(self, meta: Meta, value: Token) -> ast.MemberOption:
        return ast.MemberOption("name", self._word(value), None, self._s(meta))

    def member_weight(self, meta: Meta, value: Token) -> ast.MemberOption:
        return ast.MemberOption("weight", self._word(value), None, self._s(meta))

    def member_wecom(self, meta: Meta, value: Token) -> ast.MemberOption:
        return ast.MemberOption("wecom", self._word(value), None, self._s(meta))

    def member_phone(self, meta: Meta, value: Token) -> ast.MemberOption:
        return ast.MemberOption("phone", self._word(value), None, self._s(meta))

    def member_cap(self, meta: Meta, value: Token, per: Token) -> ast.MemberOption:
        return ast.MemberOption("cap", self._word(value), self._word(per), self._s(meta))

    # -- segments and fields
    def segment(self, meta: Meta, name: Token, *conds: ast.Cond) -> ast.Segment:
        return ast.Segment(self._word(name), conds, self._s(meta))

    def fields(self, meta: Meta, *decls: ast.FieldDecl) -> ast.Fields:
        return ast.Fields(decls, self._s(meta))

    def field_decl(self, meta: Meta, name: Token, type_: Token) -> ast.FieldDecl:
        return ast.FieldDecl(self._word(name), self._word(type_), self._s(meta))


_SETTING_TYPES = (
    ast.KindSetting,
    ast.Trigger,
    ast.ExitWhen,
    ast.Reenter,
    ast.Window,
    ast.Cap,
    ast.EndAfter,
)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a parse allocates a whole AST.

    The nodes all stay alive, so a collection frees nothing, yet every full one
    walks the growing tree: on a large file that costs as much as the parse.
    The AST has no reference cycles; reference counting frees the rest.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _NotFast(Exception):
    """The fast way cannot tell what Lark's contextual lexer makes of this token."""


def _cache_file() -> str | bool:
    """Where Lark keeps the built parse table between processes, or False for nowhere.

    Building it (with the `strict` conflict checks) costs a command ~0.25 s of
    start-up; Lark stores it keyed by the grammar's and options' hash, so a
    changed grammar is built and checked again. The file lives in the user's
    own cache folder (``$XDG_CACHE_HOME/nurture``), not a shared temp folder,
    because it is a pickle.
    """
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nurture"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    python = "{}{}".format(*sys.version_info[:2])
    return str(root / f"grammar-lark{lark.__version__}-py{python}.pickle")


class _Parser:
    """The LALR parser for `nurture.lark`, fast way first; a lock makes a parse one at a time."""

    def __init__(self) -> None:
        self.builder = _Builder()
        self.indenter = _Indenter()
        grammar = resources.files("dsl").joinpath("nurture.lark").read_text(encoding="utf-8")
        self.lark = Lark(
            grammar,
            parser="lalr",
            strict=True,
            propagate_positions=True,
            postlex=self.indenter,
            maybe_placeholders=False,
            cache=_cache_file(),
        )
        self.lock = threading.Lock()
        # The fast way runs the same parse table, with callbacks that build the AST.
        self.ast_builder = AstBuilder()
        self.fast = True
        try:
            self.lexer = Lexer(self.lark.lexer_conf.terminals, self.lark.lexer_conf.ignore)
            self.conf = parse_conf(
                self.lark.parser.parser.parser.parse_table, "start", self.ast_builder
            )
        except GrammarChanged as e:
            warnings.warn(f"parsing the slow way: {e}", RuntimeWarning, stacklevel=2)
            self.fast = False
            return
        self.keywords = frozenset(self.lexer.keywords.get("NAME", {}).values())

    def parse(self, text: str, path: str) -> tuple[ast.Item, ...]:
        """The file's items; Lark's exception (with `recent` tokens) when it does not parse."""
        with self.lock, gc_paused():
            if self.fast:
                try:
                    return self.parse_fast(text, path)
                except Exception:
                    pass  # the reference way says what is wrong, if anything
            try:
                return self.parse_reference(text, path)
            except (UnexpectedInput, _IndentProblem) as e:
                e.recent = list(self.indenter.recent)  # type: ignore[union-attr]
                raise

    def parse_fast(self, text: str, path: str) -> tuple[ast.Item, ...]:
        """Raises on anything but text that parses; then `parse_reference` gives the same AST."""
        tokens = self.lexer.tokens(text)
        self.ast_builder.path = path
        state = ParserState(self.conf, cast(Any, None))
        feed: Callable[..., Any] = state.feed_token
        stack = state.state_stack
        states = self.conf.states
        keywords = self.keywords
        name = tok_class("NAME")
        for tok in tokens:
            if tok.type not in states[stack[-1]]:
                # Lark's contextual lexer reads a keyword where only a name fits as that name
                # (`stage >= mql`). Other misfits it may split differently: leave them to it.
                if tok.type not in keywords or "NAME" not in states[stack[-1]]:
                    raise _NotFast(tok)
                tok = name(tok)
            feed(tok)
        line, column = (tokens[-1][2], tokens[-1][3]) if tokens else (1, 1)
        end = tok_class("$END")((line, column, line, column, ""))
        items: tuple[ast.Item, ...] = feed(end, True)[4]
        return items

    def parse_reference(self, text: str, path: str) -> tuple[ast.Item, ...]:
        """Lark's contextual lexer and `_Indenter`, a parse tree, then `_Builder`."""
        tree = self.lark.parse(text)
        self.builder.path = path
        try:
            result: tuple[ast.Item, ...] = self.builder.transform(tree)
        except VisitError as e:
            if isinstance(e.orig_exc, NumberTooLong):
                raise e.orig_exc from None
            raise
        return result


_parser: _Parser | None = None
_parser_lock = threading.Lock()


def _get_parser() -> _Parser:
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = _Parser()
        return _parser


def parse_module(text: str, path: str = "<string>") -> ast.Module:
    """Parse one file; raise `DslSyntaxError` with one diagnostic per broken item."""
    parser = _get_parser()
    source = text if text.endswith("\n") else text + "\n"
    try:
        return ast.Module(path, parser.parse(source, path))
    except _Unreadable:
        pass
    items: list[ast.Item] = []
    problems: list[Diagnostic] = []
    # Lines as Lark numbers them: only "\n" ends one (`str.splitlines` also breaks at "\f",
    # a lone "\r", "\u2028", ..., which put diagnostics on the wrong line, or past its end).
    lines = [line + "\n" for line in source[:-1].split("\n")]
    for start, end in _top_level_chunks(lines):
        chunk = "\n" * start + "".join(lines[start:end])
        try:
            items.extend(parser.parse(chunk, path))
        except _Unreadable as e:
            problems.append(_diagnose(e, parser, path, lines))
    if not problems:  # the file failed whole but every piece parsed: blame the first line
        problems.append(_error(path, 1, 1, "this file could not be read", lines))
    raise DslSyntaxError(problems)


def _top_level_chunks(lines: list[str]) -> Iterator[tuple[int, int]]:
    """Line ranges that each start with an unindented, non-comment line."""
    starts = [i for i, line in enumerate(lines) if line[:1] not in ("", " ", "\t", "\n", "\r", "#")]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    yield from zip(starts, [*starts[1:], len(lines)], strict=True)


# ---------------------------------------------------------------- error words

_TERMINAL_WORDS = {
    "STRING": 'a text in double quotes such as "welcome/cxo"',
    "NAME": "a word",
    "INT": "a whole number",
    "DECIMAL": "a number",
    "PERCENT": "a percentage such as 50%",
    "TIME": "a time such as 09:00",
    "DATE": "a date such as 2026-12-01",
    "FIELD": "a lead field such as lead.industry",
    "_NL": "the end of the line",
    "_INDENT": "an indented block",
    "_DEDENT": "the end of the block",
    "$END": "the end of the file",
}

_AFTER_WORDS = {
    "WAIT": 'a duration such as "3 days", or "until tuesday 10:00"',
    "WITHIN": 'a duration such as "3 days"',
    "AFTER": 'a duration such as "180 days"',
    "FOR": 'a duration such as "90 days"',
    "EVERY": 'a duration such as "30 days"',
    "SEND": "a channel such as email, sms, wechat or webhook",
    "CAP": 'a number of touches such as "3 per week"',
    "REPEAT": 'a count such as "6 times"',
    "KIND": "a kind such as welcome, drip or reactivation",
}


def _describe_token(tok: Token) -> str:
    if tok.type in ("_NL", "_INDENT", "_DEDENT", "$END"):
        return {
            "_NL": "end of line",
            "_INDENT": "indentation",
            "_DEDENT": "end of block",
            "$END": "end of file",
        }[tok.type]
    if tok.type == "STRING":
        return f"text {tok}"
    return f'"{tok}"'


def _expected_words(expected: set[str], parser: _Parser, before: Token | None) -> str:
    if before is not None and before.type in _AFTER_WORDS:
        return _AFTER_WORDS[before.type]
    if before is not None and before.type == "INT" and "NAME" in expected:
        return 'a unit such as "days" or "weeks"'
    words: list[str] = []
    for name in sorted(expected):
        word = _TERMINAL_WORDS.get(name)
        if word is None:
            try:
                word = f'"{parser.lark.get_terminal(name).pattern.value}"'
            except KeyError:
                word = name.lower()
        if word not in words:
            words.append(word)
    if len(words) > 6:
        words = [*words[:6], "..."]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _diagnose(
    e: UnexpectedInput | _IndentProblem | NumberTooLong,
    parser: _Parser,
    path: str,
    lines: list[str],
) -> Diagnostic:
    if isinstance(e, NumberTooLong):
        message = f"this number has {len(e.digits):,} digits, more than the {MAX_DIGITS} allowed"
        return _error(path, e.line, e.column, message, lines, "write a smaller number")
    if isinstance(e, _IndentProblem):
        return _error(
            path,
            e.line,
            e.column,
            "this line's indentation matches no enclosing block",
            lines,
            "indent it exactly as far as the line it belongs with",
        )
    if isinstance(e, UnexpectedCharacters):
        line, column = e.line, e.column
        char = lines[line - 1][column - 1] if line - 1 < len(lines) else "?"
        if char == '"':
            return _error(
                path, line, column, "this text has no closing quote", lines, 'end it with "'
            )
        return _error(path, line, column, f"unexpected character {char!r}", lines)
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    history = getattr(e, "token_history", None)
    before = history[-1] if history else _token_before(getattr(e, "recent", []), tok)
    if tok.type == "_INDENT":
        return _error(
            path,
            tok.end_line or tok.line or 1,
            (tok.end_column or 1),
            "unexpected indentation",
            lines,
            "only the lines of a block (after a line ending in ':') are indented further",
        )
    expected = set(e.expected)
    line = tok.line or e.line or 1
    column = tok.column or e.column or 1
    if tok.type in ("_NL", "_DEDENT", "$END"):
        line, column = _end_of_previous_line(before, lines, line)
    hint = None
    if "COLON" in expected and tok.type == "_NL":
        hint = "a line that opens a block (if, elif, else, split, repeat) ends with ':'"
    if tok.type == "NAME" and tok in _KEYWORD_FIELDS:
        hint = f'"{tok}" is a keyword; names of messages and fields cannot be keywords'
    message = (
        f"unexpected {_describe_token(tok)}: expected {_expected_words(expected, parser, before)}"
    )
    return _error(path, line, column, message, lines, hint)


_KEYWORD_FIELDS = frozenset({"time", "end", "for", "to", "as"})


def _token_before(recent: list[Token], tok: Token) -> Token | None:
    for i in range(len(recent) - 1, 0, -1):
        if recent[i] is tok:
            return recent[i - 1]
    return recent[-2] if len(recent) >= 2 else None


def _end_of_previous_line(before: Token | None, lines: list[str], line: int) -> tuple[int, int]:
    """A missing piece at a line break is reported just past the last real token."""
    if before is not None and before.end_line is not None and before.end_column is not None:
        return before.end_line, before.end_column
    line = max(1, min(line, len(lines)))
    return line, len(lines[line - 1].rstrip("\n")) + 1


def _error(
    path: str, line: int, column: int, message: str, lines: list[str], hint: str | None = None
) -> Diagnostic:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    span = ast.Span(path, line, column, line, column + 1)
    return Diagnostic(ERROR, "syntax", span, message, hint, text)
