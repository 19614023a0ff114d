"""Repeat counters, delivery iteration keys, `{{ loop.* }}` in names, and split arms.

A repeat's counter lives in the enrollment while the lead is inside its body:
arriving at the repeat without a counter starts round 1, arriving with one is
coming back from the body. After the last round the counter is cleared, so a
repeat nested in another starts again at 1 in the outer loop's next round.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, MutableMapping, Sequence

from dsl.graph import Edge, Node, StepGraph
from nurture.engine.state import LeadId


def enter_repeat(node: Node, counters: MutableMapping[str, int]) -> str:
    """Advance the repeat's counter; return the edge kind to take (`body` or `next`)."""
    count = counters.get(node.id, 0) + 1
    if count > int(node.params.get("times", 0)):
        counters.pop(node.id, None)
        return "next"
    counters[node.id] = count
    return "body"


def enclosing(graph: StepGraph, node: Node) -> list[str]:
    """The repeats around `node`, outermost first."""
    chain: list[str] = []
    loop = node.loop
    while loop is not None and loop in graph.nodes and loop not in chain:
        chain.append(loop)
        loop = graph.nodes[loop].loop
    return chain[::-1]


def iteration_key(graph: StepGraph, node: Node, counters: Mapping[str, int]) -> str:
    """`n3:2` (round 2 of repeat n3), `n3:2/n5:1` nested, `""` outside any repeat."""
    return "/".join(f"{r}:{counters.get(r, 0)}" for r in enclosing(graph, node))


def iteration_number(graph: StepGraph, node: Node, counters: Mapping[str, int]) -> int:
    """The iteration as one integer: rounds counted in mixed radix, 0-based, outermost first."""
    number = 0
    for repeat in enclosing(graph, node):
        times = max(int(graph.nodes[repeat].params.get("times", 1)), 1)
        number = number * times + max(counters.get(repeat, 1) - 1, 0)
    return number


_LOOP = re.compile(r"\{\{-?\s*loop\.(index0|index|revindex0|revindex|length|first|last)\s*-?\}\}")


def render_loop(text: str, index: int | None, length: int) -> str:
    """Render Jinja's `loop.*` attributes for the innermost repeat; leave the rest to Jinja."""
    if index is None:
        return text
    values = {
        "index": index,
        "index0": index - 1,
        "revindex": length - index + 1,
        "revindex0": length - index,
        "length": length,
        "first": index == 1,
        "last": index == length,
    }
    return _LOOP.sub(lambda m: str(values[m.group(1)]), text)


def in_round(graph: StepGraph, node: Node, counters: Mapping[str, int], text: str) -> str:
    """`text` (a template name, a subject) with the `{{ loop.* }}` of the repeat around
    `node` rendered for this round; as is outside any repeat."""
    if not node.loop:
        return text
    times = int(graph.nodes[node.loop].params.get("times", 0))
    return render_loop(text, counters.get(node.loop), times)


def bucket(lead_id: LeadId, campaign: str, node_id: str) -> float:
    """A stable number in [0, 100) for this lead at this split (sha256, not `hash()`)."""
    key = f"{lead_id}\x1f{campaign}\x1f{node_id}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 * 100


def pick_arm(edges: Sequence[Edge], lead_id: LeadId, campaign: str, node_id: str) -> Edge:
    """The split arm for this lead: weights are shares, scaled if they miss 100."""
    arms = [e for e in edges if e.kind == "branch"] or list(edges)
    weights = [max(e.weight or 0.0, 0.0) for e in arms]
    total = sum(weights) or float(len(arms))
    if not sum(weights):
        weights = [1.0] * len(arms)
    point = bucket(lead_id, campaign, node_id) / 100 * total
    for edge, weight in zip(arms, weights, strict=True):
        if point < weight:
            return edge
        point -= weight
    return arms[-1]
