"""Long chains of one operator, regrouped so that each group compiles to one set operation.

A segment of 200 ``tagged`` terms compiled term by term is 200 ``EXISTS``
subqueries, which PostgreSQL took 42 s to plan. `Chain` sorts the terms of
one ``and`` / ``or`` (nested ones of the same operator flattened) into:

- ``tagged "x"`` terms: one ``EXISTS ... tag IN (...)`` under ``or``, one
  count of distinct matching tags under ``and``;
- ``not tagged "x"`` terms: the same, negated (De Morgan);
- under ``or``, ``lead.<field> == value`` terms by field: one comparison
  whose text values are one ``IN`` list;
- the rest, compiled one by one.

Only the order of the terms of an ``and`` / ``or`` changes, and SQL's
three-valued logic keeps both operators commutative, associative and
distributive and De Morgan's laws, so the regrouped SQL selects the same
leads (`tests/segments/test_sql_agrees_with_runtime.py` checks it against
the runtime). A group of one term stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from dsl.graph import Json

GROUP_FROM: Final = 2
"""The fewest terms worth a group: a single term compiles as before."""


@dataclass(frozen=True, slots=True)
class Chain:
    """The terms of one ``and`` / ``or``, grouped by what they test."""

    tags: tuple[str, ...] = ()
    """``tagged`` terms' tags, once each."""
    untags: tuple[str, ...] = ()
    """``not tagged`` terms' tags, once each."""
    equals: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """``lead.<field> == value`` terms' values by field (``or`` only)."""
    rest: tuple[Json, ...] = ()
    """Every other term, in order."""

    @classmethod
    def of(cls, op: str, cond: dict[str, Json]) -> Chain:
        """The terms of `cond`, an ``op`` (``and`` or ``or``) condition."""
        tags: dict[str, list[Json]] = {}
        untags: dict[str, list[Json]] = {}
        equals: dict[str, list[Json]] = {}
        rest: list[Json] = []
        for term in _flat(op, cond):
            if (tag := _tag(term)) is not None:
                tags.setdefault(tag, []).append(term)
            elif isinstance(term, dict) and term.get("op") == "not" and _tag(term.get("arg")):
                untags.setdefault(str(_tag(term.get("arg"))), []).append(term)
            elif op == "or" and (name := _equality(term)) is not None:
                equals.setdefault(name, []).append(term)
            else:
                rest.append(term)
        kept = {name: terms for name, terms in equals.items() if len(terms) >= GROUP_FROM}
        grouped = [_count(tags) >= GROUP_FROM, _count(untags) >= GROUP_FROM]
        for group, keep in ((tags, grouped[0]), (untags, grouped[1])):
            rest.extend(() if keep else (t for terms in group.values() for t in terms))
        rest.extend(t for name, terms in equals.items() if name not in kept for t in terms)
        return cls(
            tuple(tags) if grouped[0] else (),
            tuple(untags) if grouped[1] else (),
            {name: tuple(_value(t) for t in terms) for name, terms in kept.items()},
            tuple(rest),
        )


def _count(group: dict[str, list[Json]]) -> int:
    return sum(len(terms) for terms in group.values())


def _flat(op: str, cond: dict[str, Json]) -> Iterator[Json]:
    """The terms of `cond`, with those of nested conditions of the same `op` in their place."""
    args = cond.get("args")
    for term in args if isinstance(args, list) else ():
        if isinstance(term, dict) and term.get("op") == op:
            yield from _flat(op, term)
        else:
            yield term


def _tag(term: Json) -> str | None:
    if isinstance(term, dict) and term.get("op") == "tagged":
        tag = term.get("tag")
        return tag if isinstance(tag, str) else None
    return None


def _equality(term: Json) -> str | None:
    """The field a ``lead.<field> == <scalar>`` term compares, else None."""
    if not isinstance(term, dict) or term.get("op") != "compare":
        return None
    if term.get("subject") != "field" or term.get("cmp") != "==":
        return None
    name, value = term.get("field"), term.get("value")
    if not isinstance(name, str) or not isinstance(value, str | int | float):
        return None
    return name


def _value(term: Json) -> Any:
    assert isinstance(term, dict)
    return term.get("value")
