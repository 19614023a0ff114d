"""Two versions of a campaign side by side: which steps were added, removed or changed.

Step ids are positions (`n1`, `n2`, ... in source order), so one step inserted
at the top renumbers every step after it; comparing by id would call them all
changed. Steps are matched by what they are instead: `difflib.SequenceMatcher`
lines up the two campaigns' steps, in source order, by kind and settings. A
run it cannot line up is paired position by position where the kinds agree
(`wait 3 days` became `wait 5 days`: changed), and the rest are removed or
added. The matched pairs give the step map a `deploy --migrate` needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from dsl.draw import node_lines
from dsl.graph import Node, StepGraph

ADDED, REMOVED, CHANGED = "added", "removed", "changed"


@dataclass(frozen=True, slots=True)
class StepChange:
    change: str
    """``added``, ``removed`` or ``changed``."""
    old: Node | None
    new: Node | None


@dataclass(frozen=True, slots=True)
class CampaignDiff:
    name: str
    status: str
    """``added``, ``removed``, ``changed`` or ``same``."""
    changes: tuple[StepChange, ...]
    same: int
    """Steps found unchanged (the end left out)."""
    step_map: Mapping[str, str]
    """Old step id to new step id, for every step matched (unchanged or changed)."""
    settings: tuple[str, ...] = ()
    """Campaign settings that differ (`enroll when`, `exit when`, `window`, ...)."""


def describe(node: Node) -> str:
    """A step in one line, as the drawing labels it."""
    return " ".join(node_lines(node))


def diff_programs(old: Mapping[str, StepGraph], new: Mapping[str, StepGraph]) -> list[CampaignDiff]:
    """Every campaign of either side, by name: new ones first as in `new`, then removed."""
    names = [*new, *(n for n in old if n not in new)]
    return [diff_graphs(name, old.get(name), new.get(name)) for name in names]


def diff_graphs(name: str, old: StepGraph | None, new: StepGraph | None) -> CampaignDiff:
    if old is None or new is None:
        graph = new or old
        assert graph is not None
        change = ADDED if old is None else REMOVED
        steps = tuple(
            StepChange(change, None if old is None else n, n if old is None else None)
            for n in _steps(graph)
        )
        return CampaignDiff(name, change, steps, 0, {})
    a, b = _steps(old), _steps(new)
    changes: list[StepChange] = []
    step_map: dict[str, str] = {"end": "end"} if "end" in old.nodes and "end" in new.nodes else {}
    same = 0
    matcher = SequenceMatcher(None, [_signature(n) for n in a], [_signature(n) for n in b], False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            same += i2 - i1
            step_map.update((x.id, y.id) for x, y in zip(a[i1:i2], b[j1:j2], strict=True))
            continue
        olds, news = list(a[i1:i2]), list(b[j1:j2])
        while olds and news and olds[0].kind == news[0].kind:
            x, y = olds.pop(0), news.pop(0)
            changes.append(StepChange(CHANGED, x, y))
            step_map[x.id] = y.id
        changes += [StepChange(REMOVED, x, None) for x in olds]
        changes += [StepChange(ADDED, None, y) for y in news]
    settings = tuple(_settings(old, new))
    status = "changed" if changes or settings else "same"
    return CampaignDiff(name, status, tuple(changes), same, step_map, settings)


def _steps(graph: StepGraph) -> list[Node]:
    nodes = [n for n in graph.nodes.values() if n.kind != "end"]
    return sorted(nodes, key=lambda n: (n.line, _number(n.id)))


def _number(node_id: str) -> int:
    digits = node_id.lstrip("n")
    return int(digits) if digits.isdigit() else 1 << 30


def _signature(node: Node) -> str:
    """What a step is, without where it is: kind, settings and the kinds of its ways out."""
    ways = [(e.kind, e.label, e.weight) for e in node.edges]
    return json.dumps([node.kind, node.params, ways, node.loop is not None], sort_keys=True)


_SETTINGS: Sequence[tuple[str, str]] = (
    ("triggers", "enroll when"),
    ("exit_when", "exit when"),
    ("reenter_after", "reenter"),
    ("window", "window"),
    ("caps", "cap"),
    ("end_after", "end after"),
    ("kind", "kind"),
)


def _settings(old: StepGraph, new: StepGraph) -> list[str]:
    before, after = old.to_json(), new.to_json()
    return [words for key, words in _SETTINGS if before.get(key) != after.get(key)]
