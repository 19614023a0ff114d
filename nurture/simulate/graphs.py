"""What the simulator reads off compiled campaigns before it runs them.

Conditions are walked once, up front: which link a click on each message
should name so that `clicked "x"` branches can fire, which custom events a
message may lead to, which lead changes can affect an exit rule or a waiting
branch (so the simulator wakes only the enrollments a change can matter to),
and which persona and field values the campaigns test, so synthetic leads
exercise every branch; and how time alone can bring a lead into a segment
(`drift`), so the simulator wakes the lead exactly when that may happen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from dsl.graph import CompiledProgram, Json, StepGraph

DEFAULT_LINK = "cta"
"""The link a click names when no condition asks for a particular one."""

# What a condition may depend on: a change of one of these may change its answer.
ENGAGE = 1
"""`opened`/`clicked`/`replied`/`bounced`: events of this enrollment's own messages."""
CUSTOM = 2
"""`event "x"`: any custom event of the lead."""
TAGS = 4
STAGE = 8
SCORES = 16
"""`score`, `fit`, `interest`, grades; events change interest, `score +N` the score."""
FIELDS = 32
ANY = ENGAGE | CUSTOM | TAGS | STAGE | SCORES | FIELDS

EVENT_ATOMS = ("event", "opened", "clicked", "replied", "bounced")
"""Condition atoms about events, whose `within` span time alone moves past."""


def atoms(cond: Json) -> Iterator[dict[str, Json]]:
    """Every leaf of a compiled condition (`and`/`or`/`not` are walked through)."""
    if not isinstance(cond, dict):
        return
    op = cond.get("op")
    if op in ("and", "or"):
        for arg in cond.get("args") or ():
            yield from atoms(arg)
    elif op == "not":
        yield from atoms(cond.get("arg"))
    else:
        yield cond


def depends_on(cond: Json) -> int:
    """A mask of the lead changes that may change `cond`'s answer (0 for no condition)."""
    mask = 0
    for atom in atoms(cond):
        op, subject = atom.get("op"), atom.get("subject")
        if op in ("opened", "clicked", "replied", "bounced"):
            mask |= ENGAGE
        elif op == "event":
            mask |= CUSTOM
        elif op == "tagged":
            mask |= TAGS
        elif op == "truthy" or subject == "field":
            mask |= FIELDS
        elif subject == "stage":
            mask |= STAGE
        else:
            mask |= SCORES
    return mask


DECAYING = ("interest", "score", "grade")
"""What interest decay changes, with nothing happening: `interest`, `score` (fit + interest +
manual deltas) and `grade` (interest's grade); `fit` and `fit grade` stay put."""
RISING = frozenset({"<", "<="})
"""Comparisons a falling value can make true (`interest < 20`, `grade < B`: A ranks highest)."""
FALLING = frozenset({">", ">="})
"""Comparisons a falling value can only make false."""


@dataclass(slots=True)
class Drift:
    """How time alone, with nothing happening to a lead, can make conditions true.

    Two things change a condition's truth by time alone: an event leaving a
    `within` span (`event "x" within 30 days` turns false: only under a `not`
    can that make the whole condition true; a count falls, so `count < 3 within
    30 days` may turn true) and interest decaying (`interest
    < 20` may turn true; `interest >= 20` only false, but under a `not` the
    other way round). `and` and `or` never turn a part's change around, so a
    part whose change can only make the whole false is left out.
    """

    spans: dict[str, set[float]] = field(default_factory=dict)
    """Event name (`opened`, `clicked`, ... for message events) to the `within` spans, in
    seconds, whose end may make a condition true."""
    decay: bool = False
    """Whether interest decaying may make a condition true."""

    def add(self, cond: Json, falls: bool = True) -> None:
        """Take in `cond`; `falls`: decay only lowers interest (no negative points)."""
        self._walk(cond, True, falls)

    def _walk(self, cond: Json, positive: bool, falls: bool) -> None:
        if not isinstance(cond, dict):
            return
        op = cond.get("op")
        if op in ("and", "or"):
            for arg in cond.get("args") or ():
                self._walk(arg, positive, falls)
        elif op == "not":
            self._walk(cond.get("arg"), not positive, falls)
        elif op in EVENT_ATOMS:
            within = cond.get("within")
            if within is not None and _lapses_to(cond, positive):
                name = str(cond.get("name")) if op == "event" else str(op)
                self.spans.setdefault(name, set()).add(float(within))
        elif _decays_to(cond, positive, falls):
            self.decay = True


def _lapses_to(atom: dict[str, Json], positive: bool) -> bool:
    """Whether an event leaving the atom's `within` span can turn the atom to `positive`.

    Without a count the atom can only turn false. A count falls as events
    leave: that can make `<`/`<=` true and `>=`/`>` false, and `==`/`!=` either.
    """
    count = atom.get("count")
    if not isinstance(count, dict):
        return not positive
    cmp = count.get("cmp")
    return cmp in ("==", "!=") or (cmp in RISING) == positive


def _decays_to(atom: dict[str, Json], positive: bool, falls: bool) -> bool:
    """Whether decay can turn the atom to `positive` (a `compare` of `interest` and the like)."""
    if atom.get("op") != "compare" or atom.get("subject") not in DECAYING:
        return False
    cmp = atom.get("cmp")
    if not falls or cmp not in RISING | FALLING:
        return True
    return cmp in RISING if positive else cmp in FALLING


ALWAYS: Json = {"op": "and", "args": []}
NEVER: Json = {"op": "or", "args": []}


def hopeful(cond: Json, falls: bool = True, positive: bool = True) -> Json:
    """`cond` with every part that time alone may turn its way taken as turned already.

    A `not event "x" within 30 days` holds, `interest < 20` holds (if `falls`, as
    `Drift.add`): whatever else the condition asks (a tag, a stage, a field, an
    event at all) time does not change. So if the result is false for a lead, time
    alone cannot bring it into the segment; only a happening can, and is checked.
    """
    if not isinstance(cond, dict):
        return cond
    op = cond.get("op")
    if op in ("and", "or"):
        return {**cond, "args": [hopeful(a, falls, positive) for a in cond.get("args") or ()]}
    if op == "not":
        return {**cond, "arg": hopeful(cond.get("arg"), falls, not positive)}
    lapses = op in EVENT_ATOMS and cond.get("within") is not None
    if (lapses and _lapses_to(cond, positive)) or _decays_to(cond, positive, falls):
        return ALWAYS if positive else NEVER
    return cond


def relaxed(cond: Json, keep: int, positive: bool = True) -> Json:
    """`cond` with every atom that reads more than `keep` (a mask) taken as going its way.

    Such an atom holds where the whole needs it to (under a `not`: fails), so
    the result holds wherever `cond` does: where it is false for a lead, `cond`
    is too, without the costly parts asked (`relaxed(segment, TAGS | STAGE)`
    is a tag and stage check before a segment's scores and events).
    """
    if not isinstance(cond, dict):
        return cond
    op = cond.get("op")
    if op in ("and", "or"):
        return {**cond, "args": [relaxed(a, keep, positive) for a in cond.get("args") or ()]}
    if op == "not":
        return {**cond, "arg": relaxed(cond.get("arg"), keep, not positive)}
    if depends_on(cond) & ~keep:
        return ALWAYS if positive else NEVER
    return cond


def conditions(graph: StepGraph) -> Iterator[Json]:
    """The graph's exit rule and every branch condition."""
    if graph.exit_when is not None:
        yield graph.exit_when
    for node in graph.nodes.values():
        if node.kind == "branch":
            yield node.params.get("cond")


@dataclass(frozen=True, slots=True)
class SendTraits:
    """How a lead may react to one send step, beyond opening it."""

    link: str
    """The link a click names."""
    follow_ups: tuple[str, ...]
    """Custom events the next branch waits for (`if event "webinar_registered" within ...`)."""
    channel: str = "email"
    """The step's channel: a hard bounce closes it for the lead."""


def send_traits(graph: StepGraph) -> dict[str, SendTraits]:
    """For each send step: the link its clicks name and the events that may follow it."""
    wanted: dict[str | None, str] = {}
    for cond in conditions(graph):
        for atom in atoms(cond):
            if atom.get("op") == "clicked" and atom.get("link") is not None:
                message = atom.get("message")
                wanted.setdefault(None if message is None else str(message), str(atom["link"]))
    traits = {}
    for node in graph.nodes.values():
        if node.kind != "send":
            continue
        name = node.params.get("name")
        link = wanted.get(str(name)) if name else None
        link = link or wanted.get(None) or DEFAULT_LINK
        channel = str(node.params.get("channel") or "email")
        traits[node.id] = SendTraits(link, _follow_ups(graph, node.id), channel)
    return traits


def _follow_ups(graph: StepGraph, send_id: str) -> tuple[str, ...]:
    node = graph.nodes[send_id]
    edge = node.edge("next")
    after = graph.nodes.get(edge.target) if edge is not None else None
    if after is None or after.kind != "branch":
        return ()
    names = (str(a.get("name")) for a in atoms(after.params.get("cond")) if a.get("op") == "event")
    return tuple(dict.fromkeys(names))


def custom_events(program: CompiledProgram) -> tuple[str, ...]:
    """Custom events the scoring model counts, `enroll when event` triggers wait for, and
    `event "x" count ...` conditions count (the MQL rule's "three visits in a week")."""
    names: list[str] = []
    scoring = program.scoring or {}
    for rule in scoring.get("interest") or ():
        if rule.get("event") == "custom" and rule.get("name"):
            names.append(str(rule["name"]))
    conds: list[Json] = [scoring.get("mql"), *program.segments.values()]
    for graph in program.campaigns.values():
        names.extend(str(t["name"]) for t in graph.triggers if t.get("on") == "event")
        conds.extend(conditions(graph))
    for cond in conds:
        names.extend(
            str(a["name"]) for a in atoms(cond) if a.get("op") == "event" and a.get("count")
        )
    return tuple(dict.fromkeys(names))


def field_literals(program: CompiledProgram) -> dict[str, list[Json]]:
    """Values the program compares lead fields with: `lead.persona == "cxo"` gives `cxo`."""
    conds: list[Json] = [c for g in program.campaigns.values() for c in conditions(g)]
    conds.extend(program.segments.values())
    scoring = program.scoring or {}
    conds.extend(rule.get("when") for rule in scoring.get("fit") or ())
    conds.append(scoring.get("mql"))
    found: dict[str, list[Json]] = {}
    for cond in conds:
        for atom in atoms(cond):
            if atom.get("op") == "truthy":
                found.setdefault(str(atom.get("field")), []).append(True)
            elif atom.get("subject") == "field" and atom.get("cmp") != "matches":
                value = atom.get("value")
                values = value if isinstance(value, list) else [value]
                known = found.setdefault(str(atom.get("field")), [])
                known.extend(v for v in values if v is not None and v not in known)
    return found
