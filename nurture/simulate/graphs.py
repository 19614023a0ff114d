"""What the simulator reads off compiled campaigns before it runs them.

Conditions are walked once, up front: which link a click on each message
should name so that `clicked "x"` branches can fire, which custom events a
message may lead to, which lead changes can affect an exit rule or a waiting
branch (so the simulator wakes only the enrollments a change can matter to),
and which persona and field values the campaigns test, so synthetic leads
exercise every branch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
        traits[node.id] = SendTraits(link, _follow_ups(graph, node.id))
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
    """Custom events the scoring model counts and `enroll when event` triggers wait for."""
    names: list[str] = []
    for rule in (program.scoring or {}).get("interest") or ():
        if rule.get("event") == "custom" and rule.get("name"):
            names.append(str(rule["name"]))
    for graph in program.campaigns.values():
        names.extend(str(t["name"]) for t in graph.triggers if t.get("on") == "event")
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
