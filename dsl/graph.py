"""The step graph: what the engine runs, serialised as JSON, hashed as a version.

A campaign compiles to nodes with stable ids (`n1`, `n2`, ... in source order,
so the same source always gives the same ids) joined by typed edges. Node
parameters and conditions are plain JSON values, so a stored version is read
back by any later release without this module's classes.

The content hash covers what the campaign does, not where it is written: moving
a campaign down a file (changing its line numbers) is not a new version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

Json = Any
"""A JSON-compatible value: dict, list, str, int, float, bool or None."""

EDGE_KINDS = ("next", "yes", "no", "timeout", "branch", "body", "loop")
"""`next` in sequence; `yes`/`no` out of a condition; `timeout` when a `within` ran out;
`branch` to a split arm; `body` into a repeat; `loop` back to the repeat from its body."""

NODE_KINDS = (
    "send",
    "wait",
    "wait_until",
    "branch",
    "split",
    "repeat",
    "tag",
    "untag",
    "score",
    "enroll",
    "notify",
    "mql",
    "exit",
    "end",
)


@dataclass(frozen=True, slots=True)
class Edge:
    kind: str
    target: str
    label: str | None = None
    weight: float | None = None

    def to_json(self) -> dict[str, Json]:
        data: dict[str, Json] = {"kind": self.kind, "to": self.target}
        if self.label is not None:
            data["label"] = self.label
        if self.weight is not None:
            data["weight"] = self.weight
        return data

    @classmethod
    def from_json(cls, data: dict[str, Json]) -> Edge:
        return cls(data["kind"], data["to"], data.get("label"), data.get("weight"))


@dataclass(frozen=True, slots=True)
class Node:
    """One step. `params` depends on `kind` (see docs/language.md, "The step graph")."""

    id: str
    kind: str
    params: dict[str, Json]
    edges: tuple[Edge, ...]
    line: int
    loop: str | None = None  # the innermost enclosing `repeat` node, for `loop.index`

    def edge(self, kind: str) -> Edge | None:
        return next((e for e in self.edges if e.kind == kind), None)

    def to_json(self) -> dict[str, Json]:
        data: dict[str, Json] = {
            "id": self.id,
            "kind": self.kind,
            "params": self.params,
            "edges": [e.to_json() for e in self.edges],
            "line": self.line,
        }
        if self.loop is not None:
            data["loop"] = self.loop
        return data

    @classmethod
    def from_json(cls, data: dict[str, Json]) -> Node:
        return cls(
            data["id"],
            data["kind"],
            dict(data["params"]),
            tuple(Edge.from_json(e) for e in data["edges"]),
            data["line"],
            data.get("loop"),
        )


@dataclass(frozen=True, slots=True)
class StepGraph:
    """One campaign, compiled: its settings and its nodes, entered at `entry`."""

    name: str
    kind: str
    entry: str
    nodes: dict[str, Node]
    triggers: tuple[dict[str, Json], ...] = ()
    exit_when: Json = None
    reenter_after: int | None = None  # seconds; None: never
    window: dict[str, Json] | None = None
    caps: tuple[dict[str, Json], ...] = ()
    end_after: int | None = None  # seconds
    path: str = ""
    line: int = 0
    hash: str = field(default="", compare=False)

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def content(self) -> dict[str, Json]:
        """What the campaign does: everything but source positions."""
        return {
            "name": self.name,
            "kind": self.kind,
            "entry": self.entry,
            "triggers": list(self.triggers),
            "exit_when": self.exit_when,
            "reenter_after": self.reenter_after,
            "window": self.window,
            "caps": list(self.caps),
            "end_after": self.end_after,
            "nodes": [
                {k: v for k, v in n.to_json().items() if k != "line"} for n in self.nodes.values()
            ],
        }

    def content_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.content()).encode("utf-8")).hexdigest()

    def to_json(self) -> dict[str, Json]:
        data = self.content()
        data["nodes"] = [n.to_json() for n in self.nodes.values()]
        data["path"] = self.path
        data["line"] = self.line
        data["hash"] = self.hash or self.content_hash()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Json]) -> StepGraph:
        nodes = [Node.from_json(n) for n in data["nodes"]]
        graph = cls(
            name=data["name"],
            kind=data["kind"],
            entry=data["entry"],
            nodes={n.id: n for n in nodes},
            triggers=tuple(data.get("triggers", ())),
            exit_when=data.get("exit_when"),
            reenter_after=data.get("reenter_after"),
            window=data.get("window"),
            caps=tuple(data.get("caps", ())),
            end_after=data.get("end_after"),
            path=data.get("path", ""),
            line=data.get("line", 0),
        )
        return with_hash(graph)


def with_hash(graph: StepGraph) -> StepGraph:
    object.__setattr__(graph, "hash", graph.content_hash())
    return graph


def canonical_json(value: Json) -> str:
    """Sorted keys, no spaces, Unicode kept: the same content gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class CompiledProgram:
    """Everything a set of files defines: campaigns, the scoring model, routing, segments."""

    campaigns: dict[str, StepGraph]
    scoring: dict[str, Json] | None = None
    routing: dict[str, Json] | None = None
    segments: dict[str, Json] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Json]:
        return {
            "campaigns": [g.to_json() for g in self.campaigns.values()],
            "scoring": self.scoring,
            "routing": self.routing,
            "segments": self.segments,
            "fields": self.fields,
        }

    @classmethod
    def from_json(cls, data: dict[str, Json]) -> CompiledProgram:
        graphs = [StepGraph.from_json(g) for g in data["campaigns"]]
        return cls(
            campaigns={g.name: g for g in graphs},
            scoring=data.get("scoring"),
            routing=data.get("routing"),
            segments=dict(data.get("segments", {})),
            fields=dict(data.get("fields", {})),
        )
