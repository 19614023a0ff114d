"""How two profile values compare: numbers, text, dates, booleans, stages and grades.

Lead data comes from CSV files, forms and CRMs, so values are compared the way
a marketer reads them: text without regard to case (`"SaaS" == "saas"`),
numbers written as text as numbers (`"1,200" > 1000`), ISO dates as dates,
`"yes"`/`"false"` as booleans. A missing or empty value is false for every
comparison, `!=` and `not in` included (as NULL is in SQL), and nothing raises.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from dsl.vocabulary import GRADES, STAGE_RANK


def stage_rank(stage: Any) -> int | None:
    """The funnel position of a stage; `returned` ranks with `lead`."""
    return STAGE_RANK.get(str(stage).lower())


def grade_rank(letter: Any) -> int | None:
    """Higher is better: A outranks B, so `grade >= B` holds for A and B."""
    text = str(letter).upper()
    return len(GRADES) - GRADES.index(text) if text in GRADES else None


Test = Callable[[Any], bool]
"""One comparison with its operator and right side fixed, as a function of the left side."""


def compare_ranked(
    left: Any, cmp: str, right: Any, rank: Callable[[Any], int | None], upper: bool
) -> bool:
    """Stages and grades: equality and `in` by name, ordering by rank."""
    if left is None:
        return False
    norm = _upper if upper else _lower
    if cmp in ("in", "not in"):
        if not isinstance(right, list):
            return False
        found = norm(left) in {norm(v) for v in right}
        return found if cmp == "in" else not found
    if cmp in ("==", "!="):
        return (norm(left) == norm(right)) == (cmp == "==")
    a, b = rank(left), rank(right)
    if a is None or b is None:
        return False
    return _order(a, b, cmp)


def compare_values(left: Any, cmp: str, right: Any) -> bool:
    """`left cmp right` for profile values; a missing left side is always false."""
    if _missing(left):
        return False
    if cmp in ("in", "not in"):
        if not isinstance(right, list):
            return False
        lefts = left if isinstance(left, list | tuple | set | frozenset) else [left]
        found = any(_equal(a, b) for a in lefts for b in right)
        return found if cmp == "in" else not found
    if cmp == "matches":
        pattern = _regex(str(right))
        return pattern is not None and pattern.search(str(left)) is not None
    if cmp in ("==", "!="):
        return _equal(left, right) == (cmp == "==")
    pair = _comparable(left, right)
    return pair is not None and _order(pair[0], pair[1], cmp)


# ---------------------------------------------------------------- resolved once
# The same comparisons with the operator and right side fixed, for conditions
# compiled ahead (`predicates`): what depends on the right side only is done once.


def ranked_test(cmp: str, right: Any, rank: Callable[[Any], int | None], upper: bool) -> Test:
    """`compare_ranked(left, cmp, right, rank, upper)` for any `left`, resolved once."""
    norm = _upper if upper else _lower
    if cmp in ("in", "not in"):
        if not isinstance(right, list):
            return _never
        names, inside = frozenset(norm(v) for v in right), cmp == "in"
        return lambda left: left is not None and (norm(left) in names) == inside
    if cmp in ("==", "!="):
        name, equal = norm(right), cmp == "=="
        return lambda left: left is not None and (norm(left) == name) == equal
    order, b = _ORDER.get(cmp), rank(right)
    if order is None or b is None:
        return _never
    known: dict[str, bool] = {}
    """Answers by name: a run sees the same few stages and grades again and again."""

    def ranked(left: Any) -> bool:
        if type(left) is str and left in known:
            return known[left]
        a = None if left is None else rank(left)
        answer = a is not None and order(a, b)
        if type(left) is str and len(known) < KNOWN_NAMES:
            known[left] = answer
        return answer

    return ranked


KNOWN_NAMES = 64
"""Stage or grade names a compiled ordering keeps its answer for (real data has a handful)."""


def value_test(cmp: str, right: Any) -> Test:
    """`compare_values(left, cmp, right)` for any `left`, resolved once."""
    if cmp in ("in", "not in"):
        return _member(right, cmp == "in") if isinstance(right, list) else _never
    if cmp == "matches":
        pattern = _regex(str(right))
        if pattern is None:
            return _never
        return lambda left: not _missing(left) and pattern.search(str(left)) is not None
    if cmp in ("==", "!="):
        return _equality(right, cmp == "==")
    order = _ORDER.get(cmp)
    return _never if order is None else _ordering(right, order)


def _member(right: list[Any], inside: bool) -> Test:
    """`in` / `not in`: some left value (or list item) equals some item of `right`."""
    texts = frozenset(b.casefold() for b in right) if all(type(b) is str for b in right) else None

    def member(left: Any) -> bool:
        if _missing(left):
            return False
        if texts is not None and type(left) is str:
            return (left.casefold() in texts) == inside
        lefts = left if isinstance(left, list | tuple | set | frozenset) else [left]
        return any(_equal(a, b) for a in lefts for b in right) == inside

    return member


def _equality(right: Any, equal: bool) -> Test:
    folded = right.casefold() if type(right) is str else None

    def equality(left: Any) -> bool:
        if _missing(left):
            return False
        if folded is not None and type(left) is str:
            return (left.casefold() == folded) == equal
        return _equal(left, right) == equal

    return equality


def _ordering(right: Any, order: Callable[[Any, Any], bool]) -> Test:
    y = _number(right)

    def ordering(left: Any) -> bool:
        if _missing(left):
            return False
        if y is not None and (x := _number(left)) is not None:
            return order(x, y)
        pair = _comparable(left, right)
        return pair is not None and order(pair[0], pair[1])

    return ordering


def _missing(value: Any) -> bool:
    return value is None or value == ""


def _never(left: Any) -> bool:
    return False


def _upper(value: Any) -> str:
    return str(value).upper()


def _lower(value: Any) -> str:
    return str(value).lower()


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def _order(a: Any, b: Any, cmp: str) -> bool:
    op = _ORDER.get(cmp)
    return op is not None and op(a, b)


def _equal(a: Any, b: Any) -> bool:
    """Equality as a marketer means it: `"SaaS" == "saas"`, `"500" == 500`, `"yes" == true`."""
    if isinstance(a, bool) or isinstance(b, bool):
        p, q = _boolean(a), _boolean(b)
        return p is not None and p == q
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    pair = _comparable(a, b)
    return pair[0] == pair[1] if pair is not None else bool(a == b)


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Both sides as numbers, instants or text, whichever they both are; else None."""
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return x, y
    if isinstance(a, date | datetime) or isinstance(b, date | datetime):
        p, q = as_instant(a), as_instant(b)
        return (p, q) if p is not None and q is not None else None
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold(), b.casefold()
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "y", "1", "on"):
            return True
        if text in ("false", "no", "n", "0", "off"):
            return False
    if isinstance(value, int | float):
        return bool(value)
    return None


def as_instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return as_instant(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str] | None:
    """Compiled once per pattern; an invalid pattern matches nothing."""
    try:
        return re.compile(pattern)
    except re.error:
        return None
