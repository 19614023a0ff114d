"""Pictures of a step graph that a marketer can read: Mermaid and Graphviz DOT.

Every step is drawn in the language's own words (`wait 3 days`, `opened within
3 days?`, `tag "engaged"`), each kind with its own shape and colour, under a
title and a note with the campaign's settings. Node ids are the graph's ids
(`n1`, `n2`, ...), so the text of two versions diffs step by step; the one
exception is Mermaid's `end`, a keyword there, written `End`.

Numbers may go on the picture (`nurture graph --counts`, `simulate --graph`):
each step's reach under its words and, on the edges out of a branch, split
or repeat, how many took each. They come as plain data (`Numbers`, keyed by
campaign name), so this module needs nothing of where they were counted.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dsl.graph import Edge, Json, Node, StepGraph
from dsl.vocabulary import NAMED_LISTS, written_field

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60))
_BARE_SUBJECTS = frozenset({"stage", "grade", "fit_grade"})  # values written without quotes
_ENGAGEMENT_NOUNS = {"opened": "open", "clicked": "click", "replied": "reply", "bounced": "bounce"}
_PRECEDENCE = {"or": 1, "and": 2, "not": 3}
_NAME = re.compile(r"[^\W\d]\w*")
_WITHIN = re.compile(r"within \d+ \w+")
_LABEL_WIDTH = 34
_NOTE_WIDTH = 60
_INDENT = "\u00a0" * 4  # no-break spaces: Graphviz and HTML drop leading plain ones
_SUBJECT_WIDTH = 40

REACH = ("entered", "sent", "opened", "clicked", "deferred", "exits")
"""The counts a step may show, in this order: a zero is left out, but for `entered` when it
was counted (production counts it on some steps only, `nurture.live_counts`)."""


@dataclass(frozen=True, slots=True)
class Numbers:
    """One campaign's counts: per step (`REACH` names), and per edge (source id, target id)."""

    steps: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    edges: Mapping[tuple[str, str], int] = field(default_factory=dict)


def reach_line(counts: Mapping[str, int] | None) -> str | None:
    """`entered 120 · sent 118 · opened 40`: a step's reach, for its box; None without counts."""
    if counts is None:
        return None
    shown = [n for n in REACH if counts.get(n) or (n == "entered" and n in counts)]
    return " · ".join(f"{name} {counts[name]:,}" for name in shown) or None


def _numbered_lines(node: Node, numbers: Numbers | None) -> list[str]:
    lines = node_lines(node)
    line = None if numbers is None else reach_line(numbers.steps.get(node.id))
    return lines if line is None else [*lines, line]


def _numbered_edge(graph: StepGraph, node: Node, edge: Edge, numbers: Numbers | None) -> str | None:
    """The edge's words, and how many took it when it leaves a step with several ways out."""
    label = edge_label(graph, node, edge)
    if numbers is None or len(node.edges) < 2 or edge.kind == "loop":
        return label
    count = numbers.edges.get((node.id, edge.target))
    if count is None:  # not counted (production does not record the way taken)
        return label
    return f"{label} · {count:,}" if label else f"{count:,}"


# ---------------------------------------------------------------- words


def duration_words(seconds: int) -> str:
    """`259200` -> `3 days`: the largest unit that divides the duration exactly."""
    amount, unit = seconds, "second"
    for name, size in _UNITS:
        if seconds and seconds % size == 0:
            amount, unit = seconds // size, name
            break
    return f"{amount} {unit}" if amount == 1 else f"{amount} {unit}s"


def quoted(text: str) -> str:
    """A string literal as the language writes it: `"a \\"b\\""`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'


def describe_condition(cond: Json) -> str:
    """A compiled condition in the language's words: `fit grade in [A, B] and interest >= 50`."""
    return _describe(cond, 0)


def _describe(cond: Json, outer: int) -> str:
    if not isinstance(cond, dict):
        return json.dumps(cond, ensure_ascii=False)
    op = cond.get("op")
    if op in ("and", "or"):
        text = f" {op} ".join(_describe(arg, _PRECEDENCE[op]) for arg in cond.get("args", ()))
    elif op == "not":
        text = "not " + _describe(cond.get("arg"), _PRECEDENCE["not"])
    else:
        text = _atom(cond)
    return f"({text})" if _PRECEDENCE.get(str(op), 9) < outer else text


def _atom(cond: dict[str, Json]) -> str:
    op = cond.get("op")
    if op in _ENGAGEMENT_NOUNS:
        words = [str(op)]
        if cond.get("link") is not None:
            words.append(quoted(str(cond["link"])))
        if cond.get("message") is not None:
            words.append(str(cond["message"]))
        return " ".join(words) + _count(cond) + _within(cond)
    if op == "tagged":
        return f"tagged {quoted(str(cond.get('tag')))}"
    if op == "event":
        return f"event {quoted(str(cond.get('name')))}" + _count(cond) + _within(cond)
    if op == "truthy":  # the compiler keeps a truthy field's `lead.` prefix
        return "lead." + written_field(str(cond.get("field")).removeprefix("lead."))
    if op == "compare":
        subject = str(cond.get("subject"))
        field = written_field(str(cond.get("field")))
        left = f"lead.{field}" if subject == "field" else subject.replace("_", " ")
        value = _value(cond.get("value"), bare=subject in _BARE_SUBJECTS)
        return f"{left} {cond.get('cmp')} {value}"
    return json.dumps(cond, ensure_ascii=False)


def _count(cond: Mapping[str, Json]) -> str:
    count = cond.get("count")
    return f" count {count.get('cmp')} {count.get('n')}" if isinstance(count, dict) else ""


def _within(cond: Mapping[str, Json]) -> str:
    within = cond.get("within")
    return f" within {duration_words(within)}" if isinstance(within, int) else ""


def _value(value: Json, bare: bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        named = next((n for n, items in NAMED_LISTS.items() if value == list(items)), None)
        return named or "[" + ", ".join(_value(v, bare) for v in value) + "]"
    if isinstance(value, str):
        return value if bare and _NAME.fullmatch(value) else quoted(value)
    return json.dumps(value, ensure_ascii=False)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _wrap(text: str, width: int = _LABEL_WIDTH) -> list[str]:
    """Lines of about `width` characters, never breaking `within 3 days` apart."""
    glued = _WITHIN.sub(lambda m: m.group(0).replace(" ", "\0"), text)
    lines = textwrap.wrap(glued, width, break_long_words=False, break_on_hyphens=False)
    return [line.replace("\0", " ") for line in lines] or [text]


# ---------------------------------------------------------------- what each step says


def node_lines(node: Node) -> list[str]:
    """The lines of text drawn in a step's box."""
    p = node.params
    if node.kind == "send":
        lines = [f"{p.get('channel')}: {p.get('template')}"]
        if p.get("subject"):
            lines.append("subject " + quoted(_shorten(str(p["subject"]), _SUBJECT_WIDTH)))
        if p.get("name"):
            lines.append(f"as {p['name']}")
        return lines
    if node.kind == "wait":
        return [f"wait {duration_words(int(p.get('seconds') or 0))}"]
    if node.kind == "wait_until":
        day = p.get("date") or WEEKDAY_NAMES[int(p.get("weekday") or 0) % 7]
        return [f"wait until {day} {p.get('time')}"]
    if node.kind == "branch":
        return _wrap(describe_condition(p.get("cond")) + "?")
    words = {
        "split": "random split",
        "repeat": f"repeat {p.get('times')} times",
        "tag": f"tag {quoted(str(p.get('tag')))}",
        "untag": f"untag {quoted(str(p.get('tag')))}",
        "score": f"score {int(p.get('delta') or 0):+d}",
        "enroll": f"enroll {quoted(str(p.get('campaign')))}",
        "notify": f"notify sales {quoted(str(p.get('template')))}",
        "mql": "MQL: hand to sales",
        "exit": "exit campaign",
        "end": "end",
    }
    return [words.get(node.kind, node.kind)]


def edge_label(graph: StepGraph, node: Node, edge: Edge) -> str | None:
    """`yes`, `no`, `no open in 3 days`, `50% short`, `repeat ×6`; None for plain `next`."""
    if edge.kind in ("yes", "no"):
        return edge.kind
    if edge.kind == "timeout":
        return _timeout_label(node)
    if edge.kind == "branch":
        share = f"{edge.weight:g}%" if edge.weight is not None else ""
        extra = edge.label if edge.label and edge.label != share else ""
        return f"{share} {extra}".strip() or None
    if edge.kind == "body":
        return "each time"
    if edge.kind == "loop":
        target = graph.nodes.get(edge.target)
        times = target.params.get("times") if target is not None else None
        return f"repeat ×{times}"
    if edge.kind == "next" and node.kind == "repeat":
        return "done"
    return None


def _timeout_label(node: Node) -> str:
    within = node.params.get("within")
    cond = node.params.get("cond")
    words = duration_words(within) if isinstance(within, int) else "the wait"
    if isinstance(cond, dict) and cond.get("within") == within and "count" not in cond:
        if cond.get("op") in _ENGAGEMENT_NOUNS:
            return f"no {_ENGAGEMENT_NOUNS[cond['op']]} in {words}"
        if cond.get("op") == "event":
            return f"no event {quoted(str(cond.get('name')))} in {words}"
    return f"timeout after {words}"


def title(graph: StepGraph) -> str:
    """`Welcome — welcome campaign`."""
    return f"{graph.name} — {graph.kind} campaign"


def settings_lines(graph: StepGraph) -> list[str]:
    """The campaign's settings, one a line, as the source writes them."""
    lines = [f"enroll when {_trigger(t)}" for t in graph.triggers]
    if graph.exit_when is not None:
        first, *rest = _wrap("exit when " + describe_condition(graph.exit_when), _NOTE_WIDTH)
        lines.extend([first, *(_INDENT + line for line in rest)])
    if graph.reenter_after is not None:
        lines.append(f"reenter after {duration_words(graph.reenter_after)}")
    if graph.window:
        lines.append(_window(graph.window))
    lines.extend(f"cap {c.get('count')} per {c.get('period')}" for c in graph.caps)
    if graph.end_after is not None:
        lines.append(f"end after {duration_words(graph.end_after)}")
    return lines


def _trigger(trigger: dict[str, Json]) -> str:
    on = trigger.get("on")
    if on == "created":
        return "lead created"
    if on == "returned":
        return "returned"
    if on == "inactive":
        return f"inactive for {duration_words(int(trigger.get('seconds') or 0))}"
    key = {"tagged": "tag", "event": "name", "segment": "segment"}.get(str(on), "")
    return f"{on} {quoted(str(trigger.get(key)))}" + _count(trigger) + _within(trigger)


def _window(window: dict[str, Json]) -> str:
    days = sorted(int(d) for d in window.get("days") or ())
    groups = {(0, 1, 2, 3, 4): "weekdays", (5, 6): "weekends", tuple(range(7)): "daily"}
    short = [name[:3] for name in WEEKDAY_NAMES]
    if tuple(days) in groups:
        when = groups[tuple(days)]
    elif len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        when = f"{short[days[0]]}-{short[days[-1]]}"
    else:
        when = ", ".join(short[d % 7] for d in days)
    zone = window.get("zone")
    where = "lead time" if zone == "lead" else f"in {quoted(str(zone))}"
    return f"window {when} {window.get('start')}-{window.get('end')} {where}"


# ---------------------------------------------------------------- Mermaid

_MERMAID_SHAPES = {
    "send": ("[", "]"),
    "wait": ("([", "])"),
    "wait_until": ("([", "])"),
    "branch": ("{", "}"),
    "split": ("{{", "}}"),
    "repeat": ("[[", "]]"),
    "tag": (">", "]"),
    "untag": (">", "]"),
    "score": ("[/", "/]"),
    "enroll": ("[[", "]]"),
    "notify": ("[/", "\\]"),
    "mql": ("(((", ")))"),
    "exit": ("((", "))"),
    "end": ("((", "))"),
}

_COLOURS = {
    "send": ("#e3f2fd", "#1e88e5"),
    "wait": ("#fff8e1", "#f9a825"),
    "branch": ("#f3e5f5", "#8e24aa"),
    "split": ("#ede7f6", "#5e35b1"),
    "repeat": ("#e0f2f1", "#00897b"),
    "tag": ("#e8f5e9", "#43a047"),
    "score": ("#f1f8e9", "#7cb342"),
    "enroll": ("#e0f7fa", "#00acc1"),
    "notify": ("#fff3e0", "#fb8c00"),
    "mql": ("#ffe0b2", "#e65100"),
    "exit": ("#ffebee", "#e53935"),
    "finish": ("#eeeeee", "#757575"),
    "note": ("#fffde7", "#bdbdbd"),
}
_STYLE_OF = {"wait_until": "wait", "untag": "tag", "end": "finish"}
"""Which colour a kind borrows; `end` is a Mermaid keyword, so its class is `finish`."""
_MERMAID_ESCAPES = {'"': "#quot;", "#": "#35;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;"}
_MERMAID_SPECIAL = re.compile("[" + re.escape("".join(_MERMAID_ESCAPES)) + "]")


_MERMAID_CONFIG = ("config:", "  flowchart:", "    wrappingWidth: 400")
"""Front matter: Mermaid wraps labels at 200 pixels unless told; ours are wrapped already."""


def mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: quotes as `#quot;`, markup as entities."""
    return _MERMAID_SPECIAL.sub(lambda m: _MERMAID_ESCAPES[m.group(0)], text)


def mermaid_id(node_id: str, prefix: str = "") -> str:
    """The node id, prefixed per campaign when several share a chart; `end` alone is `End`."""
    if prefix:
        return prefix + node_id
    return "End" if node_id == "end" else node_id


def _mermaid_label(lines: Sequence[str]) -> str:
    return '"' + "<br/>".join(mermaid_text(line) for line in lines) + '"'


def _mermaid_header(heading: str) -> list[str]:
    return ["---", f"title: {json.dumps(heading, ensure_ascii=False)}", *_MERMAID_CONFIG, "---"]


def to_mermaid(graph: StepGraph, numbers: Numbers | None = None) -> str:
    """A Mermaid flowchart (`flowchart TD`) of one campaign, titled, with a settings note."""
    body, used = _mermaid_body(graph, "", "  ", numbers)
    return (
        "\n".join([*_mermaid_header(title(graph)), "flowchart TD", *body, *_class_defs(used)])
        + "\n"
    )


def to_mermaid_many(
    graphs: Sequence[StepGraph], numbers: Mapping[str, Numbers] | None = None
) -> str:
    """One Mermaid chart for several campaigns, a titled subgraph each (ids prefixed `cN_`)."""
    numbers = numbers or {}
    if len(graphs) == 1:
        return to_mermaid(graphs[0], numbers.get(graphs[0].name))
    out = [*_mermaid_header(f"{len(graphs)} campaigns"), "flowchart TD"]
    used: set[str] = set()
    for i, graph in enumerate(graphs, start=1):
        body, styles = _mermaid_body(graph, f"c{i}_", "    ", numbers.get(graph.name))
        used |= styles
        out += [f"  subgraph c{i}[{_mermaid_label([title(graph)])}]", *body, "  end"]
    return "\n".join([*out, *_class_defs(used)]) + "\n"


def _mermaid_body(
    graph: StepGraph, prefix: str, indent: str, numbers: Numbers | None = None
) -> tuple[list[str], set[str]]:
    out: list[str] = []
    settings = settings_lines(graph)
    used = {"note"} if settings else set()
    if settings:
        out.append(f"{indent}{prefix}settings[{_mermaid_label(settings)}]:::note")
        out.append(f"{indent}{prefix}settings ~~~ {mermaid_id(graph.entry, prefix)}")
    for node in graph.nodes.values():
        start, stop = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
        style = _STYLE_OF.get(node.kind, node.kind)
        used.add(style)
        suffix = f":::{style}" if style in _COLOURS else ""
        label = _mermaid_label(_numbered_lines(node, numbers))
        out.append(f"{indent}{mermaid_id(node.id, prefix)}{start}{label}{stop}{suffix}")
        for edge in node.edges:
            out.append(indent + _mermaid_edge(graph, node, edge, prefix, numbers))
    return out, used


def _class_defs(used: set[str]) -> list[str]:
    out = []
    for style, (fill, stroke) in _COLOURS.items():
        if style in used:
            weight = ",font-weight:bold" if style in ("mql", "exit") else ""
            out.append(f"  classDef {style} fill:{fill},stroke:{stroke},color:#212121{weight}")
    return out


def _mermaid_edge(
    graph: StepGraph, node: Node, edge: Edge, prefix: str, numbers: Numbers | None = None
) -> str:
    label = _numbered_edge(graph, node, edge, numbers)
    arrow = "-.->" if edge.kind == "loop" else "-->"
    text = f'|"{mermaid_text(label)}"|' if label else ""
    return f"{mermaid_id(node.id, prefix)} {arrow}{text} {mermaid_id(edge.target, prefix)}"


# ---------------------------------------------------------------- Graphviz DOT

_DOT_SHAPES = {
    "send": "box",
    "wait": "ellipse",
    "wait_until": "ellipse",
    "branch": "diamond",
    "split": "hexagon",
    "repeat": "box3d",
    "tag": "cds",
    "untag": "cds",
    "score": "parallelogram",
    "enroll": "component",
    "notify": "invhouse",
    "mql": "doubleoctagon",
    "exit": "octagon",
    "end": "doublecircle",
}
_FONT = "Helvetica,Arial,Noto Sans CJK SC,sans-serif"


def dot_text(text: str) -> str:
    """Text safe inside a DOT double-quoted string: backslashes and quotes escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _dot_quote(text: str) -> str:
    return f'"{dot_text(text)}"'


def to_dot(graph: StepGraph, numbers: Numbers | None = None) -> str:
    """A Graphviz digraph of one campaign, with the graph's node ids."""
    out = [f"digraph {_dot_quote(graph.name)} {{", *_dot_defaults(), *_dot_title(graph, "  ")]
    out.extend(_dot_body(graph, "  ", "", numbers))
    return "\n".join([*out, "}"]) + "\n"


def to_dot_many(graphs: Sequence[StepGraph], numbers: Mapping[str, Numbers] | None = None) -> str:
    """One digraph holding several campaigns, a cluster each; ids become `Name/n1`."""
    numbers = numbers or {}
    if len(graphs) == 1:
        return to_dot(graphs[0], numbers.get(graphs[0].name))
    out = ['digraph "campaigns" {', *_dot_defaults()]
    for i, graph in enumerate(graphs, 1):
        out.append(f'  subgraph "cluster_{i}" {{')
        out.extend(_dot_title(graph, "    "))
        out.append('    style="rounded"; color="#9e9e9e";')
        out.extend(_dot_body(graph, "    ", f"{graph.name}/", numbers.get(graph.name)))
        out.append("  }")
    return "\n".join([*out, "}"]) + "\n"


def _dot_defaults() -> list[str]:
    return [
        f'  graph [charset="UTF-8", rankdir=TB, nodesep=0.4, fontname="{_FONT}"];',
        f'  node [fontname="{_FONT}", fontsize=11, style="filled", color="#757575"];',
        f'  edge [fontname="{_FONT}", fontsize=10, color="#616161"];',
    ]


def _dot_title(graph: StepGraph, indent: str) -> list[str]:
    return [f"{indent}label={_dot_quote(title(graph))}; labelloc=t; fontsize=18;"]


def _dot_body(
    graph: StepGraph, indent: str, prefix: str, numbers: Numbers | None = None
) -> list[str]:
    out = []
    settings = settings_lines(graph)
    if settings:
        fill, stroke = _COLOURS["note"]
        label = "".join(dot_text(line) + "\\l" for line in settings)
        note = _dot_quote(prefix + "settings")
        out.append(
            f'{indent}{note} [shape=note, label="{label}", fillcolor="{fill}", color="{stroke}"];'
        )
        out.append(f"{indent}{note} -> {_dot_quote(prefix + graph.entry)} [style=invis];")
    for node in graph.nodes.values():
        fill, stroke = _COLOURS.get(_STYLE_OF.get(node.kind, node.kind), ("#ffffff", "#757575"))
        shape = _DOT_SHAPES.get(node.kind, "box")
        label = "\\n".join(dot_text(line) for line in _numbered_lines(node, numbers))
        bold = ", penwidth=2" if node.kind in ("mql", "exit") else ""
        out.append(
            f'{indent}{_dot_quote(prefix + node.id)} [shape={shape}, label="{label}", '
            f'fillcolor="{fill}", color="{stroke}"{bold}];'
        )
        for edge in node.edges:
            attrs = []
            label_text = _numbered_edge(graph, node, edge, numbers)
            if label_text:
                attrs.append(f"label={_dot_quote(label_text)}")
            if edge.kind == "loop":
                attrs.append("style=dashed")
            tail = f" [{', '.join(attrs)}]" if attrs else ""
            out.append(
                f"{indent}{_dot_quote(prefix + node.id)} -> {_dot_quote(prefix + edge.target)}"
                f"{tail};"
            )
    return out
