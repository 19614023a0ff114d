"""Golden tests for the compiler: each source beside the step-graph JSON it must give."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dsl import CompiledProgram, StepGraph, build

FIXTURES = Path(__file__).parent.parent / "fixtures" / "compile"
SOURCES = sorted(FIXTURES.glob("*.nurture"))


def compiled(source: Path) -> CompiledProgram:
    return build({source.name: source.read_text(encoding="utf-8")})


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_source_compiles_to_the_golden_graph(source: Path) -> None:
    # Given a small source and the graph JSON it must compile to
    expected_path = source.with_suffix(".json")
    got = compiled(source).to_json()
    if os.environ.get("NURTURE_UPDATE_GOLDEN") == "1":
        text = json.dumps(got, indent=2, ensure_ascii=False) + "\n"
        expected_path.write_text(text, encoding="utf-8")
    # Then the compiler gives exactly that graph
    assert got == json.loads(expected_path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_json_round_trip_gives_an_equal_program(source: Path) -> None:
    program = compiled(source)
    again = CompiledProgram.from_json(json.loads(json.dumps(program.to_json())))
    assert again == program
    for name, graph in program.campaigns.items():
        assert again.campaigns[name].hash == graph.hash


def test_same_source_gives_same_ids_and_hash() -> None:
    source = FIXTURES / "branches.nurture"
    first, second = compiled(source), compiled(source)
    assert list(first.campaigns["Branches"].nodes) == list(second.campaigns["Branches"].nodes)
    assert first.campaigns["Branches"].hash == second.campaigns["Branches"].hash


def test_moving_a_campaign_down_the_file_is_not_a_new_version() -> None:
    # Given the same campaign, once as written and once below three comment lines
    text = (FIXTURES / "branches.nurture").read_text(encoding="utf-8")
    moved = build({"b.nurture": "# one\n# two\n\n" + text}).campaigns["Branches"]
    original = build({"b.nurture": text}).campaigns["Branches"]
    # Then lines differ but the version hash does not
    assert moved.nodes["n1"].line == original.nodes["n1"].line + 3
    assert moved.hash == original.hash


def test_a_changed_step_is_a_new_version() -> None:
    text = (FIXTURES / "branches.nurture").read_text(encoding="utf-8")
    changed = build({"b.nurture": text.replace("within 3 days", "within 4 days")})
    assert (
        changed.campaigns["Branches"].hash
        != compiled(FIXTURES / "branches.nurture").campaigns["Branches"].hash
    )


def test_every_edge_targets_a_node() -> None:
    for source in SOURCES:
        for graph in compiled(source).campaigns.values():
            assert isinstance(graph, StepGraph)
            assert graph.entry in graph.nodes
            for node in graph.nodes.values():
                for edge in node.edges:
                    assert edge.target in graph.nodes, (source.name, node.id, edge)
