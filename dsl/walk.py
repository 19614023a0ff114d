"""Walks over syntax trees: facts the checker turns into diagnostics.

Iterators over every statement, block, condition and duration; the paths
through a campaign (what always exits, what is sent before a check, how
crowded the sends are); and the Jinja trees of templates and template names.
A new statement or condition kind is taught to the walker once, not to every check.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes

from dsl import ast
from dsl.sandbox import MAX_DIGITS, BoundedSandbox, constant_problems
from dsl.vocabulary import (
    CHANNELS,
    HANDOFF_TEMPLATE_GLOBALS,
    NOTIFY_CHANNELS,
    TEMPLATE_GLOBALS,
    UNITS,
)

Block = tuple[ast.Stmt, ...]


def child_blocks(stmt: ast.Stmt) -> tuple[Block, ...]:
    """The blocks directly inside a compound statement, in source order."""
    if isinstance(stmt, ast.If):
        bodies = tuple(b.body for b in stmt.branches)
        return bodies if stmt.orelse is None else (*bodies, stmt.orelse)
    if isinstance(stmt, ast.Split):
        return tuple(arm.body for arm in stmt.arms)
    if isinstance(stmt, ast.Repeat):
        return (stmt.body,)
    return ()


def statements(body: Block) -> Iterator[ast.Stmt]:
    """Every statement in `body`, nested ones included, in source order."""
    for stmt in body:
        yield stmt
        for inner in child_blocks(stmt):
            yield from statements(inner)


def statements_in_loops(
    body: Block, loop: int | None = None
) -> Iterator[tuple[ast.Stmt, int | None]]:
    """Every statement with the count of its innermost `repeat` (None outside any)."""
    for stmt in body:
        yield stmt, loop
        inner_loop = stmt.times if isinstance(stmt, ast.Repeat) else loop
        for inner in child_blocks(stmt):
            yield from statements_in_loops(inner, inner_loop)


Arms = tuple[tuple[ast.Span, int], ...]


def statements_in_arms(body: Block, arms: Arms = ()) -> Iterator[tuple[ast.Stmt, Arms]]:
    """Every statement with the branches it sits in: `(if or split, arm index)`, outermost first."""
    for stmt in body:
        yield stmt, arms
        forks = isinstance(stmt, ast.If | ast.Split)
        for i, inner in enumerate(child_blocks(stmt)):
            yield from statements_in_arms(inner, (*arms, (stmt.span, i)) if forks else arms)


def exclusive(a: Arms, b: Arms) -> bool:
    """Whether two statements sit in different arms of one `if` or `split`: no path runs both."""
    for x, y in zip(a, b, strict=False):
        if x != y:
            return x[0] == y[0]
    return False


def subconditions(cond: ast.Cond) -> Iterator[ast.Cond]:
    """`cond` and every condition inside its `and`, `or` and `not`."""
    yield cond
    if isinstance(cond, ast.Not):
        yield from subconditions(cond.item)
    elif isinstance(cond, ast.And | ast.Or):
        for item in cond.items:
            yield from subconditions(item)


def branch_conditions(body: Block) -> Iterator[ast.Cond]:
    """The condition of every `if` and `elif` in `body`, nested ones included."""
    for stmt in statements(body):
        if isinstance(stmt, ast.If):
            yield from (branch.cond for branch in stmt.branches)


def campaign_conditions(campaign: ast.Campaign) -> Iterator[ast.Cond]:
    """The campaign's `exit when` conditions, then its `if`/`elif` conditions."""
    yield from (s.cond for s in campaign.settings if isinstance(s, ast.ExitWhen))
    yield from branch_conditions(campaign.body)


def item_conditions(item: ast.Item) -> Iterator[ast.Cond]:
    """The top-level conditions written in one campaign, scoring, routing or segment."""
    if isinstance(item, ast.Campaign):
        yield from campaign_conditions(item)
    elif isinstance(item, ast.Scoring):
        yield from (rule.cond for rule in item.fit)
        yield from (rule.cond for rule in item.mql)
    elif isinstance(item, ast.Routing):
        yield from (rule.cond for rule in item.rules if rule.cond is not None)
    elif isinstance(item, ast.Segment):
        yield from item.conds


def all_conditions(program: ast.Program) -> Iterator[ast.Cond]:
    """Every condition in the program, nested ones included."""
    for item in program.items():
        for cond in item_conditions(item):
            yield from subconditions(cond)


def quoted_names(item: ast.Item) -> Iterator[tuple[str, ast.Word]]:
    """Every quoted name in an item that must not be empty, with what it names."""
    if isinstance(item, ast.Campaign | ast.Segment):
        yield f"{type(item).__name__.lower()} name", item.name
    for cond in item_conditions(item):
        for sub in subconditions(cond):
            if isinstance(sub, ast.Tagged):
                yield "tag", sub.tag
            elif isinstance(sub, ast.EventCond):
                yield "event name", sub.name
    if isinstance(item, ast.Team):
        yield "team name", item.name
        yield from (("member", member.email) for member in item.members)
    elif isinstance(item, ast.Routing):
        yield from _routing_names(item)
    if not isinstance(item, ast.Campaign):
        return
    for trigger in (s for s in item.settings if isinstance(s, ast.Trigger)):
        if trigger.value is not None:
            yield "tag" if trigger.kind == "tagged" else f"{trigger.kind} name", trigger.value
    for stmt in statements(item.body):
        if isinstance(stmt, ast.Send | ast.Notify):
            yield "template name", stmt.template
        elif isinstance(stmt, ast.TagStmt):
            yield "tag", stmt.tag
        elif isinstance(stmt, ast.EnrollStmt):
            yield "campaign name", stmt.campaign


def _routing_names(routing: ast.Routing) -> Iterator[tuple[str, ast.Word]]:
    for rule in routing.rules:
        if rule.team is not None:
            yield ("user" if rule.target == "user" else "team name"), rule.team
    yield from (("user", sla.escalate_to) for sla in routing.sla if sla.escalate_to is not None)
    yield from (("template name", note.template) for note in routing.notify)
    yield from (("return reason", word) for line in routing.reasons for word in line.reasons)


def condition_durations(cond: ast.Cond) -> Iterator[ast.Duration]:
    """The `within` durations of the checks inside `cond`."""
    for sub in subconditions(cond):
        if isinstance(sub, ast.Engagement | ast.EventCond) and sub.within is not None:
            yield sub.within


def campaign_durations(campaign: ast.Campaign) -> Iterator[tuple[str, ast.Duration]]:
    """Every duration in a campaign, with the words that introduce it."""
    for setting in campaign.settings:
        if isinstance(setting, ast.Trigger) and setting.duration is not None:
            yield "inactive for", setting.duration
        elif isinstance(setting, ast.Trigger) and setting.within is not None:
            yield "enroll when ... within", setting.within
        elif isinstance(setting, ast.Reenter) and setting.after is not None:
            yield "reenter after", setting.after
        elif isinstance(setting, ast.EndAfter):
            yield "end after", setting.duration
    for stmt in statements(campaign.body):
        if isinstance(stmt, ast.Wait):
            yield "wait", stmt.duration
    for cond in campaign_conditions(campaign):
        yield from (("within", d) for d in condition_durations(cond))


def all_durations(program: ast.Program) -> Iterator[tuple[str, ast.Duration]]:
    """Every duration in the program, with the words that introduce it."""
    for item in program.items():
        if isinstance(item, ast.Campaign):
            yield from campaign_durations(item)
            continue
        if isinstance(item, ast.Scoring):
            yield from (("decay every", d.every) for d in item.decay)
        elif isinstance(item, ast.Routing):
            yield from (("accept within", sla.within) for sla in item.sla)
            yield from (("remind", remind.before) for remind in item.reminders)
        for cond in item_conditions(item):
            yield from (("within", d) for d in condition_durations(cond))


def seconds(duration: ast.Duration) -> int | None:
    """The duration in seconds, or None when its unit is unknown."""
    unit = UNITS.get(duration.unit.value)
    return None if unit is None else duration.amount * int(unit.total_seconds())


def engagements(cond: ast.Cond) -> Iterator[ast.Engagement]:
    """The `opened`/`clicked`/`replied`/`bounced` checks inside `cond`."""
    return (c for c in subconditions(cond) if isinstance(c, ast.Engagement))


def has_wait(block: Block) -> bool:
    """Whether `block` waits anywhere: `wait`, `wait until`, or a check `within` a time."""
    if any(isinstance(s, ast.Wait | ast.WaitUntil) for s in statements(block)):
        return True
    return any(True for cond in branch_conditions(block) for _ in condition_durations(cond))


# ---------------------------------------------------------------- paths through a campaign


def exits(stmt: ast.Stmt) -> bool:
    """Whether every path through `stmt` ends in `exit` (an `if` needs an `else` for that)."""
    if isinstance(stmt, ast.Exit):
        return True
    if isinstance(stmt, ast.If) and stmt.orelse is None:
        return False
    if isinstance(stmt, ast.Repeat) and stmt.times == 0:
        return False
    inner = child_blocks(stmt)
    return bool(inner) and all(any(exits(s) for s in block) for block in inner)


def engagements_before_send(body: Block) -> list[ast.Engagement]:
    """Engagement checks that some path reaches before it has sent anything."""
    found: list[ast.Engagement] = []
    _sent(body, False, found)
    return found


def _sent(block: Block, sent: bool | None, found: list[ast.Engagement]) -> bool | None:
    """Whether every path to the end of `block` has sent; None when no path gets there."""
    for stmt in block:
        if sent is None or isinstance(stmt, ast.Exit):
            return None
        if isinstance(stmt, ast.Send):
            sent = True
        elif isinstance(stmt, ast.If):
            ends = []
            for branch in stmt.branches:
                found.extend(() if sent else engagements(branch.cond))
                ends.append(_sent(branch.body, sent, found))
            ends.append(sent if stmt.orelse is None else _sent(stmt.orelse, sent, found))
            sent = _on_all(ends)
        elif isinstance(stmt, ast.Split):
            sent = _on_all([_sent(arm.body, sent, found) for arm in stmt.arms])
        elif isinstance(stmt, ast.Repeat) and stmt.times > 0:
            sent = _sent(stmt.body, sent, found)
    return sent


def _on_all(ends: list[bool | None]) -> bool | None:
    live = [end for end in ends if end is not None]
    return all(live) if live else None


_MAX_STATES = 2000
_BUDGET = 200_000
_State = tuple[int, tuple[int, ...], ast.Span | None]  # elapsed, recent sends, first over


class _OutOfBudget(Exception):
    """Raised inside `crowded_sends` when there are too many paths to follow."""


def crowded_sends(body: Block, period: int, limit: int) -> dict[ast.Span, int]:
    """Sends at which some path has more than `limit` sends within `period` seconds.

    Each path is followed with its least elapsed time: `wait` adds its duration,
    `wait until` nothing, a check `within` a time nothing on its yes-branch and
    the timeout on its no-branch; `repeat` is unrolled. Maps the first send over
    the limit on a path to the most sends in one period seen after it. Gives up
    quietly (with what it found so far) when there are too many paths.
    """
    counter = _TouchCounter(period, limit)
    with contextlib.suppress(_OutOfBudget):
        counter.run(body, {(0, (), None)})
    return counter.worst


class _TouchCounter:
    def __init__(self, period: int, limit: int) -> None:
        self.period, self.limit, self.budget = period, limit, _BUDGET
        self.worst: dict[ast.Span, int] = {}

    def run(self, block: Block, states: set[_State]) -> set[_State]:
        for stmt in block:
            self.budget -= len(states)
            if self.budget < 0 or len(states) > _MAX_STATES:
                raise _OutOfBudget
            states = self.step(stmt, states)
        return states

    def step(self, stmt: ast.Stmt, states: set[_State]) -> set[_State]:
        if isinstance(stmt, ast.Send):
            return {self.touch(state, stmt.span) for state in states}
        if isinstance(stmt, ast.Wait):
            return _later(states, seconds(stmt.duration) or 0)
        if isinstance(stmt, ast.Exit):
            return set()
        if isinstance(stmt, ast.If):
            out: set[_State] = set()
            for branch in stmt.branches:
                yes, no = _delays(branch.cond)
                out |= self.run(branch.body, _later(states, yes))
                states = _later(states, no)
            return out | (states if stmt.orelse is None else self.run(stmt.orelse, states))
        if isinstance(stmt, ast.Split):
            return set().union(*(self.run(arm.body, states) for arm in stmt.arms))
        if isinstance(stmt, ast.Repeat):
            for _ in range(stmt.times):
                states = self.run(stmt.body, states)
        return states

    def touch(self, state: _State, span: ast.Span) -> _State:
        now, recent, first = state
        recent = (*(t for t in recent if now - t < self.period), now)
        self.budget -= len(recent)
        if first is None and len(recent) > self.limit:
            first = span
        if first is not None:
            self.worst[first] = max(self.worst.get(first, 0), len(recent))
        return now, recent, first


def _later(states: set[_State], delay: int) -> set[_State]:
    return states if not delay else {(t + delay, r, f) for t, r, f in states}


def _delays(cond: ast.Cond) -> tuple[int, int]:
    """The least time before the yes-branch and before the no-branch of a check."""
    inner = cond.item if isinstance(cond, ast.Not) else cond
    if not isinstance(inner, ast.Engagement | ast.EventCond) or inner.within is None:
        return 0, 0
    timeout = seconds(inner.within) or 0
    return (timeout, 0) if isinstance(cond, ast.Not) else (0, timeout)


# ---------------------------------------------------------------- templates (Jinja trees)

_ENV = BoundedSandbox(undefined=StrictUndefined, autoescape=True)
_MAX_EXPANSIONS = 500


@functools.lru_cache(maxsize=512)
def parse_template(text: str) -> nodes.Template | TemplateSyntaxError:
    try:
        return _ENV.parse(text)
    except TemplateSyntaxError as e:
        return e
    except ValueError:  # Jinja's lexer reads a literal past Python's limit on an int's digits
        long = re.search(rf"\d{{{MAX_DIGITS + 1},}}", text)
        line = text.count("\n", 0, long.start()) + 1 if long else 1
        return TemplateSyntaxError(f"a number has more than {MAX_DIGITS:,} digits", line)


def _only_loop_index(template: nodes.Template) -> bool:
    """Whether the template is text and `{{ loop.index }}` (or `loop.index0`) only."""
    found = list(template.find_all(nodes.Node))
    attrs = [n for n in found if isinstance(n, nodes.Getattr)]
    plain = (nodes.Output, nodes.TemplateData, nodes.Getattr, nodes.Name)
    loop_index = all(
        isinstance(a.node, nodes.Name) and a.node.name == "loop" and a.attr in ("index", "index0")
        for a in attrs
    )
    names = sum(isinstance(n, nodes.Name) for n in found)
    return loop_index and names == len(attrs) and all(isinstance(n, plain) for n in found)


def expand_name(name: str, loop: int | None) -> tuple[str, ...] | None:
    """The template names `name` stands for inside `repeat <loop> times`; None if unknowable."""
    if not any(mark in name for mark in ("{{", "{%", "{#")):
        return (name,)
    parsed = parse_template(name)
    if loop is None or isinstance(parsed, TemplateSyntaxError) or not _only_loop_index(parsed):
        return None
    render = _ENV.from_string(parsed).render
    rounds = range(1, min(loop, _MAX_EXPANSIONS) + 1)
    return tuple(dict.fromkeys(render(loop={"index": i, "index0": i - 1}) for i in rounds))


@dataclass(frozen=True, slots=True)
class TemplateUse:
    """One place that names a template, with what the template gets when it renders."""

    channel: str
    name: ast.Word
    loop: int | None
    """The count of the innermost `repeat` around it, for names such as `tip-{{ loop.index }}`."""
    needs_subject: bool
    """An email with no `subject` of its own: the template must have a subject block."""
    handoff: bool = False
    """A routing's `notify by` template, for sales: it gets the handoff's variables."""

    @property
    def names(self) -> frozenset[str]:
        """The variables the template may use."""
        return HANDOFF_TEMPLATE_GLOBALS if self.handoff else TEMPLATE_GLOBALS


def template_uses(program: ast.Program) -> Iterator[TemplateUse]:
    """Every template a campaign step or the routing's `notify by` names."""
    for campaign in program.campaigns():
        for stmt, loop in statements_in_loops(campaign.body):
            if isinstance(stmt, ast.Notify):
                yield TemplateUse("email", stmt.template, loop, False)
            elif isinstance(stmt, ast.Send) and stmt.channel.value in CHANNELS:
                needs = stmt.channel.value == "email" and stmt.subject is None
                yield TemplateUse(stmt.channel.value, stmt.template, loop, needs)
    for routing in program.routings():
        for note in routing.notify:
            channel = note.channel.value
            if channel in NOTIFY_CHANNELS:
                yield TemplateUse(channel, note.template, None, channel == "email", handoff=True)


@dataclass(frozen=True, slots=True)
class TemplateFacts:
    """What the checker needs to know about one template's text."""

    variables: frozenset[str]
    """Names the template reads but does not set itself."""
    lead_fields: frozenset[str]
    """Every `lead.X` and `lead["X"]` it reads."""
    has_subject: bool
    """Whether it defines `{% block subject %}`, or extends a template that may."""
    problems: tuple[tuple[int, str], ...] = ()
    """`(line, why)` for what the renderer refuses: `include` and the like, expressions over
    the sandbox's limits (`dsl.sandbox.constant_problems`)."""


@functools.lru_cache(maxsize=512)
def template_facts(text: str) -> TemplateFacts | TemplateSyntaxError:
    """The facts of a template, or the Jinja syntax error that stops it from being read."""
    parsed = parse_template(text)
    if isinstance(parsed, TemplateSyntaxError):
        return parsed
    try:
        variables = meta.find_undeclared_variables(parsed)  # also finds unknown filters
    except TemplateSyntaxError as e:
        return e
    blocks = {block.name for block in parsed.find_all(nodes.Block)}
    subject = "subject" in blocks or parsed.find(nodes.Extends) is not None
    problems = [*_pulled_in(parsed), *constant_problems(parsed)]
    lead = frozenset(_lead_attributes(parsed))
    return TemplateFacts(frozenset(variables), lead, subject, tuple(sorted(problems)))


_PULLS = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


def _pulled_in(template: nodes.Template) -> Iterator[tuple[int, str]]:
    """Each `extends`, `include` or `import`: a template stands alone when rendered."""
    for node in template.find_all(_PULLS):
        word = {nodes.Extends: "extend", nodes.Include: "include"}.get(type(node), "import")
        yield node.lineno, f"templates cannot {word} other templates"


def _lead_attributes(template: nodes.Template) -> set[str]:
    """Every `lead.X` and `lead["X"]` that a template reads."""
    found, bases = set(), set()
    for node in template.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        inner = node.node
        if isinstance(inner, nodes.Getattr | nodes.Getitem) and _read(inner) == ("lead", "account"):
            bases.add(id(inner))  # `lead.account.name` reads `account.name`, not `account`
            key = _read(node)[1]
            found.add(f"account.{key}" if key else "account")
            continue
        read = _read(node)
        if read[0] == "lead" and read[1]:
            found.add(read[1])
    return found - ({"account"} if bases else set())


def _read(node: nodes.Getattr | nodes.Getitem) -> tuple[str | None, str | None]:
    """`(name, key)` of `name.key` or `name["key"]`; None where it is not that plain."""
    base = node.node.name if isinstance(node.node, nodes.Name) else None
    if isinstance(node, nodes.Getattr):
        return base, node.attr
    arg = node.arg
    return base, arg.value if isinstance(arg, nodes.Const) and isinstance(arg.value, str) else None
