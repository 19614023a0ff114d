"""AST to step graph: lower a checked program into `CompiledProgram`.

Runs only on a program the checker passed, so units, days and names are valid
here. Statements are numbered in source order first (`n1`, `n2`, ...) and
wired second, so ids depend on nothing but the source's structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from dsl import ast
from dsl.graph import CompiledProgram, Edge, Json, Node, StepGraph, with_hash
from dsl.vocabulary import (
    CAP_PERIODS,
    DAY_GROUPS,
    INTEREST_ACTIVITIES,
    NAMED_LISTS,
    UNITS,
    WEEKDAYS,
    stored_field,
)

END = "end"


def compile_program(program: ast.Program) -> CompiledProgram:
    """Lower every item of a checked program."""
    campaigns = {c.name.value: compile_campaign(c) for c in program.campaigns()}
    scorings = program.scorings()
    routings = program.routings()
    return CompiledProgram(
        campaigns=campaigns,
        scoring=_scoring(scorings[0]) if scorings else None,
        routing=_routing(routings[0], program.teams()) if routings else None,
        segments={s.name.value: _all(s.conds) for s in program.segments()},
        fields={d.name.value: d.type.value for d in program.fields()},
    )


def seconds(duration: ast.Duration) -> int:
    return int(duration.amount * UNITS[duration.unit.value.lower()].total_seconds())


# ---------------------------------------------------------------- campaigns


def compile_campaign(campaign: ast.Campaign) -> StepGraph:
    lowering = _Lowering()
    lowering.number(campaign.body)
    entry = lowering.block(campaign.body, END, loop=None, loop_back=False)
    lowering.nodes[END] = Node(END, "end", {}, (), campaign.span.end_line)
    settings = campaign.settings
    kind = next((s.label.value for s in settings if isinstance(s, ast.KindSetting)), "nurture")
    exit_when = next((_cond(s.cond) for s in settings if isinstance(s, ast.ExitWhen)), None)
    reenter = next((s for s in settings if isinstance(s, ast.Reenter)), None)
    window = next((s for s in settings if isinstance(s, ast.Window)), None)
    end_after = next((s for s in settings if isinstance(s, ast.EndAfter)), None)
    ordered = dict(sorted(lowering.nodes.items(), key=lambda kv: _id_order(kv[0])))
    graph = StepGraph(
        name=campaign.name.value,
        kind=kind,
        entry=entry,
        nodes=ordered,
        triggers=tuple(_trigger(s) for s in settings if isinstance(s, ast.Trigger)),
        exit_when=exit_when,
        reenter_after=seconds(reenter.after) if reenter and reenter.after else None,
        window=_window(window) if window else None,
        caps=tuple(_cap(s) for s in settings if isinstance(s, ast.Cap)),
        end_after=seconds(end_after.duration) if end_after else None,
        path=campaign.span.path,
        line=campaign.span.line,
    )
    return with_hash(graph)


def _id_order(node_id: str) -> int:
    return int(node_id[1:]) if node_id != END else 1 << 30


class _Lowering:
    """Numbers statements in source order, then wires each to what follows it."""

    def __init__(self) -> None:
        self.ids: dict[int, str] = {}
        self.nodes: dict[str, Node] = {}

    def number(self, stmts: Sequence[ast.Stmt]) -> None:
        for stmt in stmts:
            self._id(stmt)
            if isinstance(stmt, ast.If):
                for i, branch in enumerate(stmt.branches):
                    if i:
                        self._id(branch)
                    self.number(branch.body)
                self.number(stmt.orelse or ())
            elif isinstance(stmt, ast.Split):
                for arm in stmt.arms:
                    self.number(arm.body)
            elif isinstance(stmt, ast.Repeat):
                self.number(stmt.body)

    def _id(self, obj: object) -> None:
        self.ids[id(obj)] = f"n{len(self.ids) + 1}"

    def block(self, stmts: Sequence[ast.Stmt], cont: str, loop: str | None, loop_back: bool) -> str:
        """Wire a block whose last step continues to `cont`; return its entry id."""
        if not stmts:
            return cont
        for i, stmt in enumerate(stmts):
            last = i == len(stmts) - 1
            after = cont if last else self.ids[id(stmts[i + 1])]
            self.stmt(stmt, after, loop, loop_back and last)
        return self.ids[id(stmts[0])]

    def add(
        self,
        stmt: ast.Stmt | ast.Branch,
        kind: str,
        params: dict[str, Json],
        edges: Sequence[Edge],
        loop: str | None,
    ) -> None:
        node_id = self.ids[id(stmt)]
        self.nodes[node_id] = Node(node_id, kind, params, tuple(edges), stmt.span.line, loop)

    def stmt(self, stmt: ast.Stmt, after: str, loop: str | None, loop_back: bool) -> None:
        step = [Edge("loop" if loop_back else "next", after)]
        if isinstance(stmt, ast.If):
            self._if(stmt, after, loop, loop_back)
        elif isinstance(stmt, ast.Split):
            arms = [
                Edge(
                    "branch",
                    self.block(arm.body, after, loop, loop_back),
                    arm.label.value if arm.label else f"{arm.percent:g}%",
                    arm.percent,
                )
                for arm in stmt.arms
            ]
            self.add(stmt, "split", {}, arms, loop)
        elif isinstance(stmt, ast.Repeat):
            me = self.ids[id(stmt)]
            body = self.block(stmt.body, me, me, loop_back=True)
            self.add(stmt, "repeat", {"times": stmt.times}, [Edge("body", body), *step], loop)
        elif isinstance(stmt, ast.Exit):
            self.add(stmt, "exit", {}, [], loop)
        else:
            kind, params = _simple(stmt)
            self.add(stmt, kind, params, step, loop)

    def _if(self, stmt: ast.If, after: str, loop: str | None, loop_back: bool) -> None:
        orelse = self.block(stmt.orelse or (), after, loop, loop_back)
        for i, branch in enumerate(stmt.branches):
            nxt = stmt.branches[i + 1] if i + 1 < len(stmt.branches) else None
            otherwise = self.ids[id(nxt)] if nxt is not None else orelse
            within = _within(branch.cond)
            yes = self.block(branch.body, after, loop, loop_back)
            edges = [Edge("yes", yes), Edge("timeout" if within else "no", otherwise)]
            params: dict[str, Json] = {"cond": _cond(branch.cond), "within": within}
            self.add(stmt if i == 0 else branch, "branch", params, edges, loop)


def _simple(stmt: ast.Stmt) -> tuple[str, dict[str, Json]]:
    if isinstance(stmt, ast.Send):
        return "send", {
            "channel": stmt.channel.value,
            "template": stmt.template.value,
            "subject": stmt.subject.value if stmt.subject else None,
            "name": stmt.alias.value if stmt.alias else None,
        }
    if isinstance(stmt, ast.Wait):
        return "wait", {"seconds": seconds(stmt.duration)}
    if isinstance(stmt, ast.WaitUntil):
        return "wait_until", {
            "weekday": WEEKDAYS[stmt.day.value.lower()] if stmt.day else None,
            "date": date.fromisoformat(stmt.date.value).isoformat() if stmt.date else None,
            "time": _hhmm(stmt.time.value),
        }
    if isinstance(stmt, ast.TagStmt):
        return ("untag" if stmt.remove else "tag"), {"tag": stmt.tag.value}
    if isinstance(stmt, ast.ScoreStmt):
        return "score", {"delta": stmt.delta}
    if isinstance(stmt, ast.EnrollStmt):
        return "enroll", {"campaign": stmt.campaign.value}
    if isinstance(stmt, ast.Notify):
        return "notify", {"template": stmt.template.value}
    if isinstance(stmt, ast.Mql):
        return "mql", {}
    raise TypeError(f"not a simple statement: {type(stmt).__name__}")


def _hhmm(text: str) -> str:
    hours, minutes = text.split(":")
    return f"{int(hours):02d}:{int(minutes):02d}"


def _trigger(trigger: ast.Trigger) -> dict[str, Json]:
    data: dict[str, Json] = {"on": trigger.kind}
    if trigger.value is not None:
        data[{"tagged": "tag", "event": "name", "segment": "segment"}[trigger.kind]] = (
            trigger.value.value
        )
    if trigger.duration is not None:
        data["seconds"] = seconds(trigger.duration)
    if trigger.count is not None:
        _counted(data, trigger.count)
        data["within"] = seconds(trigger.within) if trigger.within else None
    return data


def _counted(atom: dict[str, Json], count: ast.Count | None) -> dict[str, Json]:
    """`count >= 3` as `"count": {"cmp": ">=", "n": 3}`; an atom without one keeps its old
    shape, so graphs (and their content hashes) written before counts existed do not change."""
    if count is not None:
        atom["count"] = {"cmp": count.op, "n": count.number}
    return atom


def _window(window: ast.Window) -> dict[str, Json]:
    names = [d.value.lower() for d in window.days]
    if window.day_range:
        first, last = WEEKDAYS[names[0]], WEEKDAYS[names[1]]
        days = sorted({(first + i) % 7 for i in range((last - first) % 7 + 1)})
    else:
        days = sorted({d for n in names for d in DAY_GROUPS.get(n, (WEEKDAYS.get(n, 0),))})
    zone = window.zone.value if window.zone else "UTC"
    return {
        "days": days,
        "start": _hhmm(window.start.value),
        "end": _hhmm(window.end.value),
        "zone": zone,
    }


def _cap(cap: ast.Cap) -> dict[str, Json]:
    period = cap.period.value.lower()
    return {
        "count": cap.count,
        "period": period,
        "seconds": int(CAP_PERIODS[period].total_seconds()),
    }


# ---------------------------------------------------------------- conditions


def _within(cond: ast.Cond) -> int | None:
    """The longest `within` in a condition: how long a branch waits for it to come true."""
    if isinstance(cond, ast.Engagement | ast.EventCond):
        return seconds(cond.within) if cond.within else None
    if isinstance(cond, ast.Not):
        return _within(cond.item)
    if isinstance(cond, ast.And | ast.Or):
        found = [w for w in (_within(c) for c in cond.items) if w is not None]
        return max(found) if found else None
    return None


def _all(conds: Sequence[ast.Cond]) -> Json:
    return _cond(conds[0]) if len(conds) == 1 else {"op": "and", "args": [_cond(c) for c in conds]}


def _cond(cond: ast.Cond) -> Json:
    if isinstance(cond, ast.And | ast.Or):
        return {
            "op": "and" if isinstance(cond, ast.And) else "or",
            "args": [_cond(c) for c in cond.items],
        }
    if isinstance(cond, ast.Not):
        return {"op": "not", "arg": _cond(cond.item)}
    if isinstance(cond, ast.Engagement):
        return _counted(
            {
                "op": cond.kind,
                "message": cond.message.value if cond.message else None,
                "link": cond.link.value if cond.link else None,
                "within": seconds(cond.within) if cond.within else None,
            },
            cond.count,
        )
    if isinstance(cond, ast.Tagged):
        return {"op": "tagged", "tag": cond.tag.value}
    if isinstance(cond, ast.EventCond):
        return _counted(
            {
                "op": "event",
                "name": cond.name.value,
                "within": seconds(cond.within) if cond.within else None,
            },
            cond.count,
        )
    if isinstance(cond, ast.Truthy):
        return {"op": "truthy", "field": stored_field(cond.field)}
    field = cond.subject.field
    return {
        "op": "compare",
        "subject": cond.subject.kind,
        "field": None if field is None else stored_field(field),
        "cmp": cond.op,
        "value": _value(cond.value, cond.subject.kind),
    }


def _value(value: ast.Value, subject: str) -> Json:
    if value.kind == "list":
        assert isinstance(value.value, tuple)
        return [_value(v, subject) for v in value.value]
    if value.kind == "number":
        assert isinstance(value.value, float)
        return int(value.value) if value.value.is_integer() else value.value
    if value.kind == "name":
        assert isinstance(value.value, str)
        word = value.value
        if word in NAMED_LISTS:
            return list(NAMED_LISTS[word])
        if word in ("true", "false"):
            return word == "true"
        return word.upper() if subject in ("grade", "fit_grade") else word.lower()
    return value.value


# ---------------------------------------------------------------- scoring and routing


def _scoring(scoring: ast.Scoring) -> dict[str, Json]:
    decay = scoring.decay[0] if scoring.decay else None
    return {
        "name": scoring.name.value,
        "fit": [{"points": r.points, "when": _cond(r.cond)} for r in scoring.fit],
        "interest": [_interest(r) for r in scoring.interest],
        "decay": {"percent": decay.percent, "every": seconds(decay.every)} if decay else None,
        "grades": {
            g.target.value: [{"grade": s.letter.value.upper(), "at": s.threshold} for s in g.steps]
            for g in scoring.grades
        },
        "mql": (
            None
            if not scoring.mql
            else _cond(scoring.mql[0].cond)
            if len(scoring.mql) == 1
            else {"op": "or", "args": [_cond(m.cond) for m in scoring.mql]}
        ),
    }


def _interest(rule: ast.InterestRule) -> dict[str, Json]:
    if rule.is_event:
        return {"points": rule.points, "event": "custom", "name": rule.activity.value}
    return {"points": rule.points, "event": INTEREST_ACTIVITIES[rule.activity.value.lower()]}


def _routing(routing: ast.Routing, teams: Sequence[ast.Team]) -> dict[str, Json]:
    """The contract with the handoff engine (docs/language.md, "Routing")."""
    sla = routing.sla[0] if routing.sla else None
    remind = routing.reminders[0] if routing.reminders else None
    notify = routing.notify
    return {
        "teams": {team.name.value: [_member(m) for m in team.members] for team in teams},
        "rules": [_rule(number, rule) for number, rule in enumerate(routing.rules, 1)],
        "notify": [{"channel": n.channel.value, "template": n.template.value} for n in notify],
        "sla": None
        if sla is None
        else {
            "seconds": seconds(sla.within),
            "action": sla.action.value,
            "escalate_to": sla.escalate_to.value if sla.escalate_to else None,
            "remind_seconds": seconds(remind.before) if remind else None,
        },
        "return_reasons": list(
            dict.fromkeys(word.value for line in routing.reasons[:1] for word in line.reasons)
        ),
        "path": routing.span.path,
    }


def _rule(number: int, rule: ast.Assign) -> dict[str, Json]:
    word = rule.team.value if rule.team else None
    return {
        "number": number,
        "line": rule.span.line,
        "assign": rule.target,
        "team": word if rule.target in ("team", "round_robin") else None,
        "user": word if rule.target == "user" else None,
        "when": _cond(rule.cond) if rule.cond is not None else None,
    }


def _member(member: ast.Member) -> dict[str, Json]:
    options: dict[str, ast.MemberOption] = {}
    for option in member.options:
        options.setdefault(option.kind, option)

    def text(kind: str) -> str | None:
        return options[kind].value.value if kind in options else None

    return {
        "email": member.email.value,
        "name": text("name"),
        "weight": int(options["weight"].value.value) if "weight" in options else 1,
        "wecom": text("wecom"),
        "phone": text("phone"),
        "daily_cap": int(options["cap"].value.value) if "cap" in options else None,
    }
