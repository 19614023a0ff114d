"""AST nodes straight from Lark's LALR reductions: no parse tree, no second pass.

`parse_conf` gives Lark's parser one function per grammar rule. Each receives the
rule's children as the parser holds them, all of them, keywords and `_NL`,
`_INDENT`, `_DEDENT` included:

* a token is a `dsl.lexer.Tok`, `(line, column, end_line, end_column, text)`;
* anything a rule built is `(line, column, end_line, end_column, value)`.

The four positions are those `propagate_positions=True` would give the rule's
tree: from the start of its first child to the end of its last one, where an
inlined `?rule` stretches its only child over the tokens it dropped, such as
the parentheses in `"(" cond ")"` or the `_NL` after a statement. A node's span
is therefore the same as the tree-walking `_Builder` in `syntax.py` gives it.

The children kept for the builder, and which rules are inlined, follow Lark's
own rules: anonymous tokens and `_NAMES` are dropped unless a rule starts with
`!`; `__helper` rules (from `x*`, `x+`) are spliced into their parent; a `?rule`
left with one child passes it on. Callback bodies are generated once, per rule,
so that each reduction runs straight-line code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import MISSING
from functools import cache
from operator import itemgetter
from types import CodeType, FunctionType
from typing import Any, TypeVar

from lark.grammar import NonTerminal, Rule, Terminal
from lark.parsers.lalr_analysis import ParseTableBase, Reduce
from lark.parsers.lalr_parser_state import ParseConf

from dsl import ast
from dsl.lexer import GrammarChanged, Tok

Span = ast.Span
Word = ast.Word
_T = TypeVar("_T")


MAX_DIGITS = 100
"""The longest whole number the language reads; the checks bound each kind far below it."""


class NumberTooLong(Exception):
    """Raised when a whole number has more than `MAX_DIGITS` digits: a located syntax error."""

    def __init__(self, line: int, column: int, digits: str) -> None:
        super().__init__(f"{line}:{column}: a number of {len(digits)} digits")
        self.line = line
        self.column = column
        self.digits = digits


def whole(digits: str, line: int, column: int) -> int:
    """`int(digits)`, refusing a number longer than `MAX_DIGITS` (Python refuses 4,300 and more)."""
    if len(digits) > MAX_DIGITS:
        raise NumberTooLong(line, column, digits)
    return int(digits)


def _int(t: Tok) -> int:
    return whole(t[4], t[0], t[1])


def _constructor(cls: type[_T]) -> Callable[..., _T]:
    """`cls(*values)` for a frozen, slotted dataclass, a few times faster than `cls(...)`.

    A frozen dataclass's `__init__` sets each field with `object.__setattr__`; this
    sets the same slots through their descriptors. The object is the same in every
    way (class, values, equality, hash, pickling). Classes with defaults, `__post_init__`,
    fields that are not slots or an `__init__` that does anything else keep `cls`.
    """
    params = getattr(cls, "__dataclass_params__", None)
    fields = getattr(cls, "__dataclass_fields__", {})
    names = tuple(fields)
    if (
        params is None
        or not params.frozen
        or getattr(cls, "__slots__", ()) != names
        or hasattr(cls, "__post_init__")
        or any(f.default is not MISSING for f in fields.values())
        or any(f.default_factory is not MISSING or not f.init for f in fields.values())
    ):
        return cls
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    env.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    set_{name}(self, {name})\n" for name in names)
    source = f"def make({', '.join(names)}):\n    self = new(cls)\n{body}    return self\n"
    exec(compile(source, f"<new {cls.__name__}>", "exec"), env)
    make: Callable[..., _T] = env["make"]
    probe = tuple(object() for _ in names)
    try:  # a hand-written __init__ that does more than set fields keeps its job
        same = bool(cls(*probe) == make(*probe))
    except Exception:
        same = False
    return make if same else cls


_Span = _constructor(ast.Span)
_Word = _constructor(ast.Word)
_And = _constructor(ast.And)
_Assign = _constructor(ast.Assign)
_Branch = _constructor(ast.Branch)
_Campaign = _constructor(ast.Campaign)
_Cap = _constructor(ast.Cap)
_Compare = _constructor(ast.Compare)
_Count = _constructor(ast.Count)
_Decay = _constructor(ast.Decay)
_Duration = _constructor(ast.Duration)
_EndAfter = _constructor(ast.EndAfter)
_Engagement = _constructor(ast.Engagement)
_EnrollStmt = _constructor(ast.EnrollStmt)
_EventCond = _constructor(ast.EventCond)
_Exit = _constructor(ast.Exit)
_ExitWhen = _constructor(ast.ExitWhen)
_FieldDecl = _constructor(ast.FieldDecl)
_Fields = _constructor(ast.Fields)
_FitRule = _constructor(ast.FitRule)
_GradeRule = _constructor(ast.GradeRule)
_GradeStep = _constructor(ast.GradeStep)
_If = _constructor(ast.If)
_InterestRule = _constructor(ast.InterestRule)
_KindSetting = _constructor(ast.KindSetting)
_Member = _constructor(ast.Member)
_MemberOption = _constructor(ast.MemberOption)
_Mql = _constructor(ast.Mql)
_MqlRule = _constructor(ast.MqlRule)
_Not = _constructor(ast.Not)
_Notification = _constructor(ast.Notification)
_Notify = _constructor(ast.Notify)
_Or = _constructor(ast.Or)
_Reenter = _constructor(ast.Reenter)
_Remind = _constructor(ast.Remind)
_Repeat = _constructor(ast.Repeat)
_ReturnReasons = _constructor(ast.ReturnReasons)
_Routing = _constructor(ast.Routing)
_ScoreStmt = _constructor(ast.ScoreStmt)
_Scoring = _constructor(ast.Scoring)
_Segment = _constructor(ast.Segment)
_Send = _constructor(ast.Send)
_Sla = _constructor(ast.Sla)
_Split = _constructor(ast.Split)
_SplitArm = _constructor(ast.SplitArm)
_Subject = _constructor(ast.Subject)
_TagStmt = _constructor(ast.TagStmt)
_Tagged = _constructor(ast.Tagged)
_Team = _constructor(ast.Team)
_Trigger = _constructor(ast.Trigger)
_Truthy = _constructor(ast.Truthy)
_Value = _constructor(ast.Value)
_Wait = _constructor(ast.Wait)
_WaitUntil = _constructor(ast.WaitUntil)
_Window = _constructor(ast.Window)

_ESCAPE = re.compile(r'\\(["\\nt])')
_ESCAPES = {"n": "\n", "t": "\t"}


def unquote(text: str) -> str:
    r"""`"a \"b\""` -> `a "b"`: `\"`, `\\`, `\n`, `\t` are escapes; any other backslash stays,
    so a regex such as `"(?i)\b(ceo|cmo)\b"` means what it says."""
    if "\\" not in text:
        return text[1:-1]
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])


_SETTING_TYPES = (
    ast.KindSetting,
    ast.Trigger,
    ast.ExitWhen,
    ast.Reenter,
    ast.Window,
    ast.Cap,
    ast.EndAfter,
)


RoutingParts = tuple[
    tuple[ast.Assign, ...],
    tuple[ast.Sla, ...],
    tuple[ast.Remind, ...],
    tuple[ast.Notification, ...],
    tuple[ast.ReturnReasons, ...],
]


def routing_parts(lines: tuple[Any, ...]) -> RoutingParts:
    """A routing block's lines sorted by kind: rules, SLAs, reminders, notifications, reasons."""
    flat = [x for line in lines for x in (line if isinstance(line, tuple) else (line,))]

    def only(kind: type[_T]) -> tuple[_T, ...]:
        return tuple(x for x in flat if isinstance(x, kind))

    return (
        only(ast.Assign),
        only(ast.Sla),
        only(ast.Remind),
        only(ast.Notification),
        only(ast.ReturnReasons),
    )


class AstBuilder:
    """One method per rule name or alias, given the children the rule keeps.

    A method whose first parameter is `span` also gets the rule's span. Tokens
    come as `Tok`s; everything else as the value its own rule returned. The
    shapes are those of `syntax._Builder`, which works on a Lark tree instead.
    """

    path = "<string>"

    def _word(self, t: Tok) -> ast.Word:
        value = t[4]
        if t.type == "STRING":
            value = unquote(value)
        return _Word(value, _Span(self.path, t[0], t[1], t[2], t[3]))

    # -- top level
    def start(self, *items: ast.Item) -> tuple[ast.Item, ...]:
        return items

    def campaign(self, span: Span, name: Tok, *lines: Any) -> ast.Campaign:
        settings = tuple(x for x in lines if isinstance(x, _SETTING_TYPES))
        body = tuple(x for x in lines if not isinstance(x, _SETTING_TYPES))
        return _Campaign(self._word(name), settings, body, span)

    # -- settings
    def kind_setting(self, span: Span, label: Tok) -> ast.KindSetting:
        return _KindSetting(self._word(label), span)

    def enroll_setting(self, trigger: ast.Trigger) -> ast.Trigger:
        return trigger

    def trigger_created(self, span: Span) -> ast.Trigger:
        return _Trigger("created", None, None, span)

    def trigger_tagged(self, span: Span, tag: Tok) -> ast.Trigger:
        return _Trigger("tagged", self._word(tag), None, span)

    def trigger_event(
        self, span: Span, name: Tok, count: ast.Count | None = None, within: Any = None
    ) -> ast.Trigger:
        return _Trigger("event", self._word(name), None, span, count, within)

    def trigger_inactive(self, span: Span, duration: ast.Duration) -> ast.Trigger:
        return _Trigger("inactive", None, duration, span)

    def trigger_segment(self, span: Span, name: Tok) -> ast.Trigger:
        return _Trigger("segment", self._word(name), None, span)

    def trigger_returned(self, span: Span) -> ast.Trigger:
        return _Trigger("returned", None, None, span)

    def exit_setting(self, span: Span, cond: ast.Cond) -> ast.ExitWhen:
        return _ExitWhen(cond, span)

    def reenter_after(self, span: Span, duration: ast.Duration) -> ast.Reenter:
        return _Reenter(duration, span)

    def reenter_never(self, span: Span) -> ast.Reenter:
        return _Reenter(None, span)

    def days(self, *names: Tok) -> tuple[tuple[Word, ...], bool]:
        return tuple(self._word(n) for n in names), False

    def day_range(self, a: Tok, b: Tok) -> tuple[tuple[Word, ...], bool]:
        return (self._word(a), self._word(b)), True

    def time_range(self, a: Tok, b: Tok) -> tuple[Word, Word]:
        return self._word(a), self._word(b)

    def zone_lead(self, span: Span) -> Word:
        return _Word("lead", span)

    def zone_named(self, name: Tok) -> Word:
        return self._word(name)

    def window_setting(
        self,
        span: Span,
        days: tuple[tuple[Word, ...], bool],
        times: tuple[Word, Word],
        zone: Word | None = None,
    ) -> ast.Window:
        span = span
        return _Window(days[0], days[1], times[0], times[1], zone, span)

    def cap_setting(self, span: Span, count: Tok, period: Tok) -> ast.Cap:
        return _Cap(_int(count), self._word(period), span)

    def end_setting(self, span: Span, duration: ast.Duration) -> ast.EndAfter:
        return _EndAfter(duration, span)

    # -- statements
    def send(self, span: Span, channel: Tok, template: Tok, *opts: Any) -> ast.Send:
        subject = next((w for k, w in opts if k == "subject"), None)
        alias = next((w for k, w in opts if k == "alias"), None)
        span = span
        return _Send(self._word(channel), self._word(template), subject, alias, span)

    def subject(self, text: Tok) -> tuple[str, Word]:
        return "subject", self._word(text)

    def alias(self, name: Tok) -> tuple[str, Word]:
        return "alias", self._word(name)

    def wait(self, span: Span, duration: ast.Duration) -> ast.Wait:
        return _Wait(duration, span)

    def wait_until_day(self, span: Span, day: Tok, time: Tok) -> ast.WaitUntil:
        span = span
        return _WaitUntil(self._word(day), None, self._word(time), span)

    def wait_until_date(self, span: Span, date: Tok, time: Tok) -> ast.WaitUntil:
        span = span
        return _WaitUntil(None, self._word(date), self._word(time), span)

    def tag(self, span: Span, tag: Tok) -> ast.TagStmt:
        return _TagStmt(self._word(tag), False, span)

    def untag(self, span: Span, tag: Tok) -> ast.TagStmt:
        return _TagStmt(self._word(tag), True, span)

    def score(self, span: Span, delta: int) -> ast.ScoreStmt:
        return _ScoreStmt(delta, span)

    def signed(self, sign: Tok, digits: Tok) -> int:
        return -_int(digits) if sign[4] == "-" else _int(digits)

    def enroll(self, span: Span, name: Tok) -> ast.EnrollStmt:
        return _EnrollStmt(self._word(name), span)

    def notify(self, span: Span, template: Tok) -> ast.Notify:
        return _Notify(self._word(template), span)

    def mql(self, span: Span) -> ast.Mql:
        return _Mql(span)

    def exit(self, span: Span) -> ast.Exit:
        return _Exit(span)

    def block(self, *stmts: ast.Stmt) -> tuple[ast.Stmt, ...]:
        return stmts

    def if_stmt(
        self,
        span: Span,
        cond: ast.Cond,
        body: tuple[ast.Stmt, ...],
        *rest: Any,
    ) -> ast.If:
        span = span
        branches = [_Branch(cond, body, span)]
        orelse: tuple[ast.Stmt, ...] | None = None
        for clause in rest:
            if isinstance(clause, ast.Branch):
                branches.append(clause)
            else:
                orelse = clause
        return _If(tuple(branches), orelse, span)

    def elif_clause(self, span: Span, cond: ast.Cond, body: tuple[ast.Stmt, ...]) -> ast.Branch:
        return _Branch(cond, body, span)

    def else_clause(self, body: tuple[ast.Stmt, ...]) -> tuple[ast.Stmt, ...]:
        return body

    def split_stmt(self, span: Span, *arms: ast.SplitArm) -> ast.Split:
        return _Split(arms, span)

    def split_arm(self, span: Span, percent: Tok, *rest: Any) -> ast.SplitArm:
        label = self._word(rest[0]) if len(rest) == 2 else None
        span = span
        return _SplitArm(float(percent[4][:-1]), label, rest[-1], span)

    def repeat_stmt(self, span: Span, times: Tok, body: tuple[ast.Stmt, ...]) -> ast.Repeat:
        return _Repeat(_int(times), body, span)

    # -- conditions
    def or_cond(self, span: Span, *items: ast.Cond) -> ast.Or:
        return _Or(items, span)

    def and_cond(self, span: Span, *items: ast.Cond) -> ast.And:
        return _And(items, span)

    def not_(self, span: Span, item: ast.Cond) -> ast.Not:
        return _Not(item, span)

    def _engagement(self, kind: str, span: Span, parts: tuple[Any, ...]) -> ast.Engagement:
        link = next((self._word(p) for p in parts if isinstance(p, Tok)), None)
        message = next((p for p in parts if isinstance(p, ast.Word)), None)
        within = next((p for p in parts if isinstance(p, ast.Duration)), None)
        count = next((p for p in parts if isinstance(p, ast.Count)), None)
        return _Engagement(kind, link, message, within, span, count)

    def opened(self, span: Span, *parts: Any) -> ast.Engagement:
        return self._engagement("opened", span, parts)

    def clicked(self, span: Span, *parts: Any) -> ast.Engagement:
        return self._engagement("clicked", span, parts)

    def replied(self, span: Span, *parts: Any) -> ast.Engagement:
        return self._engagement("replied", span, parts)

    def bounced(self, span: Span, *parts: Any) -> ast.Engagement:
        return self._engagement("bounced", span, parts)

    def message(self, name: Tok) -> Word:
        return self._word(name)

    def within(self, duration: ast.Duration) -> ast.Duration:
        return duration

    def tagged(self, span: Span, tag: Tok) -> ast.Tagged:
        return _Tagged(self._word(tag), span)

    def event(self, span: Span, name: Tok, *parts: Any) -> ast.EventCond:
        within = next((p for p in parts if isinstance(p, ast.Duration)), None)
        count = next((p for p in parts if isinstance(p, ast.Count)), None)
        return _EventCond(self._word(name), within, span, count)

    def count(self, span: Span, op: str, number: Tok) -> ast.Count:
        return _Count(op, _int(number), span)

    def compare(self, span: Span, subj: ast.Subject, op: str, value: ast.Value) -> ast.Compare:
        return _Compare(subj, op, value, span)

    def compare_op(self, op: Tok) -> str:
        return op[4]

    def in_(self, span: Span, subj: ast.Subject, value: ast.Value) -> ast.Compare:
        return _Compare(subj, "in", value, span)

    def not_in(self, span: Span, subj: ast.Subject, value: ast.Value) -> ast.Compare:
        return _Compare(subj, "not in", value, span)

    def matches(self, span: Span, subj: ast.Subject, pattern: Tok) -> ast.Compare:
        where = _Span(self.path, pattern[0], pattern[1], pattern[2], pattern[3])
        value = _Value("string", unquote(pattern[4]), where)
        return _Compare(subj, "matches", value, span)

    def truthy(self, span: Span, field: Tok) -> ast.Truthy:
        return _Truthy(field[4][len("lead.") :], span)

    def subj_field(self, span: Span, field: Tok) -> ast.Subject:
        return _Subject("field", field[4][len("lead.") :], span)

    def subj_score(self, span: Span) -> ast.Subject:
        return _Subject("score", None, span)

    def subj_fit_grade(self, span: Span) -> ast.Subject:
        return _Subject("fit_grade", None, span)

    def subj_fit(self, span: Span) -> ast.Subject:
        return _Subject("fit", None, span)

    def subj_interest(self, span: Span) -> ast.Subject:
        return _Subject("interest", None, span)

    def subj_grade(self, span: Span) -> ast.Subject:
        return _Subject("grade", None, span)

    def subj_stage(self, span: Span) -> ast.Subject:
        return _Subject("stage", None, span)

    def string(self, span: Span, tok: Tok) -> ast.Value:
        return _Value("string", unquote(tok[4]), span)

    def number(self, span: Span, *parts: Tok) -> ast.Value:
        text = "".join(p[4] for p in parts)
        return _Value("number", float(text), span)

    def name(self, span: Span, tok: Tok) -> ast.Value:
        return _Value("name", tok[4], span)

    def list_(self, span: Span, *items: ast.Value | None) -> ast.Value:
        values = tuple(i for i in items if i is not None)
        return _Value("list", values, span)

    def duration(self, span: Span, amount: Tok, unit: Tok) -> ast.Duration:
        return _Duration(_int(amount), self._word(unit), span)

    # -- scoring
    def scoring(self, span: Span, name: Tok, *parts: Any) -> ast.Scoring:
        flat = [p for part in parts for p in (part if isinstance(part, tuple) else (part,))]

        def only(kind: type[Any]) -> tuple[Any, ...]:
            return tuple(p for p in flat if isinstance(p, kind))

        return _Scoring(
            self._word(name),
            only(ast.FitRule),
            only(ast.InterestRule),
            only(ast.Decay),
            only(ast.GradeRule),
            only(ast.MqlRule),
            span,
        )

    def fit_rules(self, *rules: ast.FitRule) -> tuple[Any, ...]:
        return rules

    def fit_rule(self, span: Span, points: int, cond: ast.Cond) -> ast.FitRule:
        return _FitRule(points, cond, span)

    def interest_rules(self, *rules: Any) -> tuple[Any, ...]:
        return rules

    def interest_per(self, span: Span, points: int, activity: Tok) -> ast.InterestRule:
        span = span
        return _InterestRule(points, self._word(activity), False, span)

    def interest_event(self, span: Span, points: int, name: Tok) -> ast.InterestRule:
        return _InterestRule(points, self._word(name), True, span)

    def decay(self, span: Span, percent: Tok, every: ast.Duration) -> ast.Decay:
        return _Decay(float(percent[4][:-1]), every, span)

    def grade_rule(self, span: Span, target: Tok, *steps: ast.GradeStep) -> ast.GradeRule:
        return _GradeRule(self._word(target), steps, span)

    def grade_target(self, target: Tok) -> Tok:
        return target

    def grade_at(self, span: Span, letter: Tok, threshold: ast.Value) -> ast.GradeStep:
        assert isinstance(threshold.value, float)
        return _GradeStep(self._word(letter), threshold.value, span)

    def grade_else(self, span: Span, letter: Tok) -> ast.GradeStep:
        return _GradeStep(self._word(letter), None, span)

    def mql_rule(self, span: Span, cond: ast.Cond) -> ast.MqlRule:
        return _MqlRule(cond, span)

    # -- routing
    def routing(self, span: Span, *lines: Any) -> ast.Routing:
        return _Routing(*routing_parts(lines), span)

    def assign(
        self,
        span: Span,
        target: tuple[str, Word | None],
        cond: ast.Cond | None,
    ) -> ast.Assign:
        return _Assign(target[0], target[1], cond, span)

    def to_owner(self) -> tuple[str, None]:
        return "owner", None

    def to_team(self, team: Tok) -> tuple[str, Word]:
        return "team", self._word(team)

    def to_user(self, user: Tok) -> tuple[str, Word]:
        return "user", self._word(user)

    def round_robin(self, team: Tok) -> tuple[str, Word]:
        return "round_robin", self._word(team)

    def otherwise(self) -> None:
        return None

    def sla(
        self,
        span: Span,
        within: ast.Duration,
        action: Tok,
        target: tuple[Word | None, Word] | None = None,
    ) -> ast.Sla:
        then, user = target if target is not None else (None, None)
        return _Sla(within, self._word(action), then, user, span)

    def escalate_to(self, user: Tok) -> tuple[None, Word]:
        return None, self._word(user)

    def then_escalate(self, then: Tok, user: Tok) -> tuple[Word, Word]:
        return self._word(then), self._word(user)

    def remind(self, span: Span, before: ast.Duration) -> ast.Remind:
        return _Remind(before, span)

    def notify_by(self, *targets: ast.Notification) -> tuple[ast.Notification, ...]:
        return targets

    def notify_target(self, span: Span, channel: Tok, template: Tok) -> ast.Notification:
        return _Notification(self._word(channel), self._word(template), span)

    def return_reasons(self, span: Span, *reasons: Tok) -> ast.ReturnReasons:
        return _ReturnReasons(tuple(self._word(r) for r in reasons), span)

    # -- teams
    def team(self, span: Span, name: Tok, *members: ast.Member) -> ast.Team:
        return _Team(self._word(name), members, span)

    def member(self, span: Span, email: Tok, *options: ast.MemberOption) -> ast.Member:
        return _Member(self._word(email), options, span)

    def member_name(self, span: Span, value: Tok) -> ast.MemberOption:
        return _MemberOption("name", self._word(value), None, span)

    def member_weight(self, span: Span, value: Tok) -> ast.MemberOption:
        return _MemberOption("weight", self._word(value), None, span)

    def member_wecom(self, span: Span, value: Tok) -> ast.MemberOption:
        return _MemberOption("wecom", self._word(value), None, span)

    def member_phone(self, span: Span, value: Tok) -> ast.MemberOption:
        return _MemberOption("phone", self._word(value), None, span)

    def member_cap(self, span: Span, value: Tok, per: Tok) -> ast.MemberOption:
        return _MemberOption("cap", self._word(value), self._word(per), span)

    # -- segments and fields
    def segment(self, span: Span, name: Tok, *conds: ast.Cond) -> ast.Segment:
        return _Segment(self._word(name), conds, span)

    def fields(self, span: Span, *decls: ast.FieldDecl) -> ast.Fields:
        return _Fields(decls, span)

    def field_decl(self, span: Span, name: Tok, type_: Tok) -> ast.FieldDecl:
        span = span
        return _FieldDecl(self._word(name), self._word(type_), span)


# ---------------------------------------------------------------- callbacks


def _kept(rule: Rule) -> list[tuple[int, bool]]:
    """Lark's child filter: (index, splice) of the children a rule's builder receives."""
    keep_all = rule.options.keep_all_tokens
    return [
        (i, not sym.is_term and sym.name.startswith("_"))
        for i, sym in enumerate(rule.expansion)
        if keep_all or not (isinstance(sym, Terminal) and sym.filter_out)
    ]


def _argument(rule: Rule, i: int, splice: bool) -> str:
    if splice:
        return f"*s[{i}][4]"
    return f"s[{i}]" if rule.expansion[i].is_term else f"s[{i}][4]"


def _compile(name: str, source: str, env: dict[str, Any]) -> Callable[[list[Any]], Any]:
    """Rule `name`'s callback `cb` from `source`, its globals `env`."""
    code = _callback_code(source).replace(co_filename=f"<nurture rule {name}>")
    fn: Callable[[list[Any]], Any] = FunctionType(code, dict(env), "cb")
    return fn


@cache
def _callback_code(source: str) -> CodeType:
    """The compiled `cb` of `source`: the grammar's ~220 callbacks have ~70 distinct
    sources (rules differ in the method they call, a global): compiling each once saves
    about a quarter of the parser's start-up, which every command that parses pays."""
    module = compile(source, "<nurture rule>", "exec")
    return next(c for c in module.co_consts if isinstance(c, CodeType))


def _takes_span(method: Callable[..., Any]) -> bool:
    """Whether a builder method's first parameter is `span` (read from its code object:
    `inspect.signature` for ~180 methods cost every parse's start-up 3 ms)."""
    code: CodeType = method.__func__.__code__  # type: ignore[attr-defined]
    return code.co_argcount > 1 and code.co_varnames[1] == "span"


def _method(builder: AstBuilder, name: str) -> Callable[..., Any]:
    fn: Callable[..., Any] | None = getattr(builder, name, None)
    if fn is None:
        raise GrammarChanged(f"rule {name} has no AstBuilder method in dsl/builder.py")
    return fn


def _wrap_token(s: list[Any]) -> Any:
    t = s[0]
    return (t[0], t[1], t[2], t[3], t)


class Reduction:
    """A rule as Lark's parser reads it: `origin.name` and `len(expansion)`.

    Lark's `Rule` hashes and compares in Python, and grammar names are `lark.Token`s
    (whose `__eq__` is Python too); on every reduction the parser looks both up in
    dicts. These plain stand-ins keep that lookup in C.
    """

    __slots__ = ("expansion", "origin", "rule")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.origin = NonTerminal(str(rule.origin.name))
        self.expansion = tuple(rule.expansion)


def parse_conf(table: Any, start: str, builder: AstBuilder) -> ParseConf[Any]:
    """Lark's LALR table for `start`, with plain-string keys and callbacks that build the AST."""
    reductions: dict[Rule, Reduction] = {}
    states: dict[Any, dict[str, tuple[Any, Any]]] = {}
    for state, row in table.states.items():
        states[state] = {}
        for symbol, (action, arg) in row.items():
            if action is Reduce:
                arg = reductions.setdefault(arg, Reduction(arg))
            states[state][str(symbol)] = (action, arg)
    rules = [r.rule for r in reductions.values()]
    passes_token = _token_passers(rules)
    calls = {r: _callback(r.rule, builder, passes_token) for r in reductions.values()}
    fast: Any = ParseTableBase(states, table.start_states, table.end_states)  # type: ignore[no-untyped-call]
    return ParseConf(fast, calls, start)  # type: ignore[arg-type]


def _inlined(rule: Rule, kept: list[tuple[int, bool]]) -> bool:
    """A `?rule` alternative that always hands on its one child (Lark's ExpandSingleChild)."""
    return bool(rule.options.expand1) and not rule.alias and len(kept) == 1 and not kept[0][1]


def _token_passers(rules: list[Rule]) -> set[str]:
    """Rules that can hand on a bare token, which then keeps its own position in Lark."""
    names: set[str] = set()
    changed = True
    while changed:
        changed = False
        for rule in rules:
            kept = _kept(rule)
            if rule.origin.name in names or not _inlined(rule, kept):
                continue
            sym = rule.expansion[kept[0][0]]
            if sym.is_term or sym.name in names:
                names.add(rule.origin.name)
                changed = True
    return names


def _callback(
    rule: Rule, builder: AstBuilder, passes_token: set[str]
) -> Callable[[list[Any]], Any]:
    origin = rule.origin.name
    size = len(rule.expansion)
    kept = _kept(rule)
    ends = "a = s[0]\n    z = s[-1]\n" if size > 1 else "a = z = s[0]\n"
    where = "a[0], a[1], z[2], z[3]"
    if size == 0:
        # Only `start` may be empty (an empty file); nothing contains its position.
        if kept or origin != "start":
            raise GrammarChanged(f"empty rule {rule} is not supported by dsl/builder.py")
        fn = _method(builder, origin)
        return lambda s: (1, 1, 1, 1, fn())
    if any(splice and not rule.expansion[i].name.startswith("__") for i, splice in kept):
        raise GrammarChanged(f"inlined _rule in {rule} is not supported by dsl/builder.py")
    args = ", ".join(_argument(rule, i, splice) for i, splice in kept)
    if origin.startswith("__"):
        # A helper from `x*` / `x+`: a list of kept children, spliced into the parent.
        if kept and kept[0] == (0, True) and rule.expansion[0].name == origin:
            rest = ", ".join(_argument(rule, i, splice) for i, splice in kept[1:])
            grow = f"v += ({rest},)\n    " if rest else ""
            body = f"v = a[4]\n    {grow}return ({where}, v)\n"
        else:
            if not kept or kept[0][1]:
                raise GrammarChanged(f"helper {rule} is not supported by dsl/builder.py")
            body = f"return ({where}, [{args}])\n"
        return _compile(rule.origin.name, f"def cb(s):\n    {ends}    {body}", {})
    if _inlined(rule, kept):
        i = kept[0][0]
        sym = rule.expansion[i]
        if size == 1:
            return _wrap_token if sym.is_term else itemgetter(0)
        if sym.is_term or sym.name in passes_token:
            raise GrammarChanged(f"{rule} hands on a bare token; see dsl/builder.py")
        source = f"def cb(s):\n    {ends}    return ({where}, s[{i}][4])\n"
        return _compile(rule.origin.name, source, {})
    if rule.options.expand1 and not rule.alias and len(kept) < 2:
        # `?rule: x (y)*` holds two children or more: a helper's list is never empty.
        raise GrammarChanged(f"{rule} may hand on one child; see dsl/builder.py")
    fn = _method(builder, rule.alias or rule.options.template_source or origin)
    env = {"fn": fn, "b": builder, "Span": _Span}
    if not _takes_span(fn):
        source = f"def cb(s):\n    {ends}    return ({where}, fn({args}))\n"
        return _compile(rule.origin.name, source, env)
    source = (
        f"def cb(s):\n    {ends}"
        f"    line = a[0]\n    column = a[1]\n    end_line = z[2]\n    end_column = z[3]\n"
        f"    span = Span(b.path, line, column, end_line, end_column)\n"
        f"    return (line, column, end_line, end_column, fn(span, {args}))\n"
    )
    return _compile(rule.origin.name, source, env)
