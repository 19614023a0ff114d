"""Pictures of step graphs: conditions back in words, Mermaid and DOT a person can read."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from dsl import Program, StepGraph, compile_program, parse_module
from dsl.draw import (
    Numbers,
    describe_condition,
    duration_words,
    mermaid_id,
    reach_line,
    to_dot,
    to_dot_many,
    to_mermaid,
    to_mermaid_many,
)

WELCOME = """\
campaign "Welcome"
  kind welcome
  enroll when lead created
  exit when tagged "customer" or stage >= sql
  reenter after 180 days
  window weekdays 09:00-18:00 lead time
  cap 3 per week
  end after 13 weeks
  if lead.persona == "cxo":
    send email "welcome/cxo" subject "A note for \\"leaders\\" at {{ lead.company }} and more text"
  else:
    send email "welcome/marketer" as hello
  if opened within 3 days:
    tag "engaged:deep"
  else:
    send wechat "welcome/intro-card"
  wait 3 days
  if clicked "download" hello within 5 days or score >= 50:
    score +10
  split:
    50% "short":
      send email "events/short"
    50% "long":
      send email "events/long"
  wait until tuesday 10:00
  if score >= 60:
    mql
    notify sales "sales/mql"
  else:
    untag "pool:hot"
    enroll "Product drip"
"""

DRIP = """\
campaign "产品滴灌"
  kind drip
  enroll when tagged "兴趣:产品"
  repeat 6 times:
    send email "drip/tip-{{ loop.index }}" subject "第{{ loop.index }}期 \\\\ 小贴士"
    wait 2 weeks
  if event "webinar_registered" within 7 days:
    tag "活跃"
  else:
    exit
"""


def graphs(text: str, path: str = "test.nurture") -> dict[str, StepGraph]:
    """Compile without the checker: these tests are about drawing, not checking."""
    return compile_program(Program((parse_module(text, path),))).campaigns


def condition_of(cond: str) -> object:
    source = f'campaign "C"\n  if {cond}:\n    tag "x"\n'
    return graphs(source)["C"].nodes["n1"].params["cond"]


# ---------------------------------------------------------------- conditions in words


@pytest.mark.parametrize(
    "cond",
    [
        "opened within 3 days",
        "opened",
        'clicked "download" whitepaper within 5 days',
        "clicked story",
        "replied within 2 weeks",
        "bounced",
        'lead.persona == "cxo"',
        "fit grade in [A, B] and interest >= 50",
        'tagged "customer" or stage >= sql',
        "not (opened within 3 days or clicked)",
        '(score >= 60 or tagged "vip") and not tagged "customer"',
        "lead.email_domain in freemail",
        'lead.title matches "(?i)\\\\b(ceo|cfo)\\\\b"',
        'event "webinar_registered" within 7 days',
        "lead.is_customer",
        'lead.industry not in ["saas", "finance"]',
        "lead.employees > 500 and grade != D",
        'tagged "活跃" and lead.city == "上海"',
        'lead.company == "Say \\"hi\\""',
        "interest < 10 or fit <= 5",
        'event "page_viewed" count >= 3 within 7 days',
        "opened count >= 2 within 2 weeks",
        'clicked "download" whitepaper count < 2',
    ],
)
def test_describe_condition_gives_back_the_source_words(cond: str) -> None:
    described = describe_condition(condition_of(cond))

    # "7 days" is a week: the only rewording is to the largest whole unit
    assert described == cond.replace("7 days", "1 week")


def test_describe_condition_adds_parentheses_only_where_needed() -> None:
    assert describe_condition(condition_of("(opened or clicked) and score > 5")) == (
        "(opened or clicked) and score > 5"
    )
    assert describe_condition(condition_of("opened or (clicked and score > 5)")) == (
        "opened or clicked and score > 5"
    )


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (60, "1 minute"),
        (5400, "90 minutes"),
        (7200, "2 hours"),
        (86400, "1 day"),
        (3 * 86400, "3 days"),
        (14 * 86400, "2 weeks"),
        (45, "45 seconds"),
    ],
)
def test_duration_words_uses_the_largest_whole_unit(seconds: int, words: str) -> None:
    assert duration_words(seconds) == words


# ---------------------------------------------------------------- Mermaid

OPENS = r"\[\[|\[/|\(\(\(|\(\[|\(\(|\{\{|\[|\{|>"
CLOSES = r"\]\]|/\]|\\\]|\)\)\)|\]\)|\)\)|\}\}|\]|\}"
NODE_LINE = re.compile(rf'^  (\w+)({OPENS})"([^"]*)"({CLOSES})(:::\w+)?$')
"""A node: id, a shape's opening, a quoted label with no raw quote inside, the closing."""
EDGE_LINE = re.compile(r'^  (\w+) (-->|-\.->)(?:\|"([^"]*)"\|)? (\w+)$')


def parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str, str | None]]]:
    """Node id -> label and (from, to, label) edges; fails on any line it does not know."""
    lines = text.splitlines()
    start = lines.index("flowchart TD")
    assert lines[0] == "---" and lines[1].startswith("title: ") and lines[start - 1] == "---"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str, str | None]] = []
    for line in lines[start + 1 :]:
        if node := NODE_LINE.match(line):
            nodes[node.group(1)] = node.group(3)
        elif edge := EDGE_LINE.match(line):
            edges.append((edge.group(1), edge.group(4), edge.group(3)))
        else:
            assert re.match(r"^  (classDef \w+ \S+|settings ~~~ \w+)$", line), line
    return nodes, edges


def test_mermaid_has_every_node_and_edge_with_its_label() -> None:
    graph = graphs(WELCOME)["Welcome"]

    nodes, edges = parse_mermaid(to_mermaid(graph))

    assert set(nodes) == {mermaid_id(n) for n in graph.nodes} | {"settings"}
    expected = {
        (mermaid_id(n.id), mermaid_id(e.target)) for n in graph.nodes.values() for e in n.edges
    }
    assert {(a, b) for a, b, _ in edges} == expected
    assert len(edges) == sum(len(n.edges) for n in graph.nodes.values())
    labels = {(a, b): label for a, b, label in edges}
    assert labels["n1", "n2"] == "yes"
    assert labels["n1", "n3"] == "no"
    assert labels["n4", "n6"] == "no open in 3 days"
    assert labels["n8", "n10"] == "timeout after 5 days"
    assert labels["n10", "n11"] == "50% short"


def test_mermaid_draws_each_step_in_words_with_its_own_shape() -> None:
    text = to_mermaid(graphs(WELCOME)["Welcome"])

    assert '  n1{"lead.persona == #quot;cxo#quot;?"}:::branch' in text
    assert '  n4{"opened within 3 days?"}:::branch' in text
    assert '  n7(["wait 3 days"]):::wait' in text
    assert '  n13(["wait until Tuesday 10:00"]):::wait' in text
    assert '  n3["email: welcome/marketer<br/>as hello"]:::send' in text
    assert '  n5>"tag #quot;engaged:deep#quot;"]:::tag' in text
    assert '  n9[/"score +10"/]:::score' in text
    assert '  n10{{"random split"}}:::split' in text
    assert '  n15((("MQL: hand to sales"))):::mql' in text
    assert '  n16[/"notify sales #quot;sales/mql#quot;"\\]:::notify' in text
    assert '  n17>"untag #quot;pool:hot#quot;"]:::tag' in text
    assert '  n18[["enroll #quot;Product drip#quot;"]]:::enroll' in text
    assert '  End(("end")):::finish' in text
    assert "  n18 --> End" in text


def test_mermaid_escapes_quotes_and_markup_and_shortens_subjects() -> None:
    text = to_mermaid(graphs(WELCOME)["Welcome"])

    assert "subject #quot;A note for \\#quot;leaders\\#quot; at {{ lead.company…#quot;" in text
    assert "score #gt;= 60?" in text
    assert "#35;" in to_mermaid(graphs('campaign "C"\n  tag "#vip"\n')["C"])


def test_mermaid_title_and_settings_note() -> None:
    text = to_mermaid(graphs(WELCOME)["Welcome"])
    nodes, _ = parse_mermaid(text)

    assert 'title: "Welcome — welcome campaign"' in text
    note = nodes["settings"].split("<br/>")
    assert note == [
        "enroll when lead created",
        "exit when tagged #quot;customer#quot; or stage #gt;= sql",
        "reenter after 180 days",
        "window weekdays 09:00-18:00 lead time",
        "cap 3 per week",
        "end after 13 weeks",
    ]
    assert "settings ~~~ n1" in text


def test_mermaid_keeps_chinese_and_labels_loops() -> None:
    graph = graphs(DRIP)["产品滴灌"]

    text = to_mermaid(graph)
    nodes, edges = parse_mermaid(text)

    assert 'title: "产品滴灌 — drip campaign"' in text
    assert nodes["n1"] == "repeat 6 times"
    assert ("n3", "n1", "repeat ×6") in edges
    assert ("n1", "n2", "each time") in edges
    assert ("n1", "n4", "done") in edges
    assert "  n3 -.->|" in text
    assert ("n4", "n6", "no event #quot;webinar_registered#quot; in 1 week") in edges
    assert nodes["n5"] == "tag #quot;活跃#quot;"
    assert nodes["settings"] == "enroll when tagged #quot;兴趣:产品#quot;"


# ---------------------------------------------------------------- DOT


def test_dot_uses_graph_ids_utf8_and_escapes() -> None:
    graph = graphs(DRIP)["产品滴灌"]

    text = to_dot(graph)

    assert text.startswith('digraph "产品滴灌" {')
    assert 'charset="UTF-8"' in text
    for node_id in graph.nodes:
        assert f'  "{node_id}" [shape=' in text
    assert '"n3" -> "n1" [label="repeat ×6", style=dashed];' in text
    # the subject `第{{ loop.index }}期 \\ 小贴士`: quotes and backslashes escaped for DOT
    assert 'subject \\"第{{ loop.index }}期 \\\\\\\\ 小贴士\\"' in text
    assert 'label="enroll when tagged \\"兴趣:产品\\"\\l"' in text


def test_dot_of_several_campaigns_is_one_digraph_with_a_cluster_each() -> None:
    found = list(graphs(WELCOME).values()) + list(graphs(DRIP, "drip.nurture").values())

    text = to_dot_many(found)

    assert text.count("digraph") == 1
    assert 'subgraph "cluster_1"' in text and 'subgraph "cluster_2"' in text
    assert '"Welcome/n1" -> "Welcome/n2" [label="yes"];' in text
    assert '"产品滴灌/n3" -> "产品滴灌/n1"' in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
@pytest.mark.parametrize("which", ["welcome", "drip", "both"])
def test_graphviz_accepts_the_dot(which: str) -> None:
    welcome, drip = graphs(WELCOME)["Welcome"], graphs(DRIP)["产品滴灌"]
    text = {
        "welcome": to_dot(welcome),
        "drip": to_dot(drip),
        "both": to_dot_many([welcome, drip]),
    }[which]

    done = subprocess.run(
        ["dot", "-Tsvg"], input=text.encode("utf-8"), capture_output=True, check=False
    )

    assert done.returncode == 0, done.stderr.decode()
    assert not done.stderr, done.stderr.decode()
    svg = done.stdout.decode("utf-8")
    assert "<svg" in svg
    if which != "welcome":
        assert "产品滴灌" in svg


def test_a_long_exit_condition_wraps_with_an_indent() -> None:
    tags = " or ".join(f'tagged "customer-of-product-{i}"' for i in range(3))
    graph = graphs(f'campaign "C"\n  exit when {tags}\n  tag "x"\n')["C"]

    nodes, _ = parse_mermaid(to_mermaid(graph))

    first, *rest = nodes["settings"].split("<br/>")
    assert first.startswith("exit when tagged")
    assert rest and all(line.startswith("\u00a0" * 4) for line in rest)


# ---------------------------------------------------------------- numbers on the picture


def test_numbers_go_under_each_step_and_on_the_ways_out_of_a_branch() -> None:
    # Given the drip with counts for its branch (n4) and the steps after it
    graph = graphs(DRIP)["产品滴灌"]
    branch = next(n for n in graph.nodes.values() if n.kind == "branch")
    yes, no = (e.target for e in branch.edges)
    steps = {branch.id: {"entered": 1200, "exits": 0}, yes: {"entered": 300, "sent": 0}}
    numbers = Numbers(steps, {(branch.id, yes): 300, (branch.id, no): 900})

    # When drawn with them, in Mermaid and in DOT
    nodes, edges = parse_mermaid(to_mermaid(graph, numbers))
    dot = to_dot(graph, numbers)

    # Then the branch says how many reached it, and each way out how many took it
    assert nodes[branch.id].endswith("<br/>entered 1,200")
    assert nodes[yes].endswith("<br/>entered 300")  # zero counts are left out, entered never
    took = {(a, b): label for a, b, label in edges if a == branch.id}
    assert took[(branch.id, yes)] == "yes · 300"
    assert took[(branch.id, no)] == "no event #quot;webinar_registered#quot; in 1 week · 900"
    assert f'"{branch.id}" -> "{yes}" [label="yes · 300"]' in dot
    assert "\\nentered 1,200" in dot
    # a step without counts shows none, a plain `next` edge no number
    assert "entered" not in nodes[mermaid_id("end")]
    assert all(
        label is None or "·" not in label
        for a, _, label in edges
        if a != branch.id and not a.startswith("n1")
    )


def test_reach_names_every_count_in_order() -> None:
    line = reach_line(
        {"entered": 5, "sent": 4, "opened": 3, "clicked": 2, "deferred": 1, "exits": 1}
    )
    assert line == "entered 5 · sent 4 · opened 3 · clicked 2 · deferred 1 · exits 1"
    assert reach_line(None) is None and reach_line({}) is None
    assert reach_line({"entered": 0, "sent": 0}) == "entered 0"  # counted, and none came
    assert reach_line({"sent": 3, "exits": 0}) == "sent 3"  # entered not counted here


def test_several_campaigns_take_their_own_numbers() -> None:
    first, second = graphs(WELCOME)["Welcome"], graphs(DRIP)["产品滴灌"]
    numbers = {
        "Welcome": Numbers({"n1": {"entered": 7}}),
        "产品滴灌": Numbers({"n1": {"entered": 9}}),
    }

    text = to_dot_many([first, second], numbers)

    assert '"Welcome/n1"' in text and "entered 7" in text and "entered 9" in text
    assert to_mermaid_many([first, second], numbers).count("entered 7") == 1
