"""Profile values in SQL, compared the way `nurture.engine.values` compares them in Python.

A lead field may be a text or date column, a custom field in the JSON
``attributes`` (a string, number, true/false, list or object), or derived
(``email_domain``). `Facets` describe one such value as a handful of SQL
expressions (is it a string? its text; its number, if it reads as one; ...),
and the comparisons below are written once over facets. Where the kind of a
value is known in Python (a text column is a string or NULL) the facets are
constants, and SQLAlchemy folds the branches that cannot hold away.

Every predicate here is two-valued (never SQL NULL), so ``NOT`` means "does
not hold" just as Python's ``not`` does; a missing or empty value makes every
comparison false, ``!=`` and ``not in`` included.

Where SQL knowingly differs from Python (tests draw around these):

- Case: text compares through SQL ``lower()``: ASCII only on SQLite, the
  database's LC_CTYPE on PostgreSQL; Python's ``casefold()`` also folds
  ``ß`` to ``ss``. Whitespace that ``strip()`` removes is ASCII only here.
- Numbers in text: ASCII digits with an optional sign, point and exponent
  (up to four digits); Python's ``float()`` also reads ``1_000``, ``inf``,
  ``nan`` and other scripts' digits. PostgreSQL compares them as exact
  decimals, Python as doubles: past 17 significant digits, numbers a double
  cannot tell apart are equal in Python only.
- ``matches`` searches strings, numbers (as the database prints them:
  PostgreSQL writes 1e20 in full, Python as ``1e+20``) and true/false
  (``True``/``False``); on lists, objects, dates and scores it is false,
  where Python searches their ``repr``. PostgreSQL runs the pattern in its
  own dialect (`dialect.postgres_pattern`).
- ``==``/``!=`` against a list is false (the language writes lists only
  after ``in``); Python compares two lists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Float,
    Numeric,
    SQLColumnExpression,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

from nurture.engine.values import as_instant
from nurture.segments.dialect import (
    NUMBER_PATTERN,
    Bytewise,
    ElementKind,
    ElementText,
    JsonArrayAny,
    JsonKind,
    JsonText,
    RegexSearch,
    Strip,
    ToNumber,
    postgres_pattern,
)

Bool = ColumnElement[bool]
Expr = SQLColumnExpression[Any]
"""A column or an expression."""
Predicate = Callable[["Facets"], Bool]

TRUE_WORDS = ("true", "yes", "y", "1", "on")
FALSE_WORDS = ("false", "no", "n", "0", "off")
FALSY_TEXT = ("", "0", "false", "no", "n", "off", "none", "null")
"""Text that `truthy` reads as false (`nurture.engine.conditions._truthy`)."""

_NO_TEXT = cast(null(), String())
_NO_NUMBER = cast(null(), Float())

ORDER: dict[str, Callable[[Any, Any], Bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


_NEVER: Bool = false()


@dataclass(frozen=True, slots=True)
class Facets:
    """One value, seen from SQL. Every boolean facet is two-valued."""

    missing: Bool
    """None in Python: a NULL column, an absent key, a JSON null."""
    string: Bool
    text: Expr
    """The text when `string` (a JSON value's text otherwise: digits, ``[...]``)."""
    number: Expr
    """`_number(value)`: a JSON number or a string that reads as one; NULL otherwise."""
    json_number: Bool = _NEVER
    true_: Bool = _NEVER
    false_: Bool = _NEVER
    container: Bool = _NEVER
    """A JSON list or object."""
    array: Bool = _NEVER
    instant: Expr | None = None
    """A date column's value; None for every other value."""
    elements: Callable[[Predicate], Bool] | None = None
    """``EXISTS`` an element of the list for which the predicate holds."""
    never_null: bool = False
    """`number` is never NULL (a score), so comparing it needs no NULL guard."""


def text_facets(text: Expr) -> Facets:
    """A text column (or expression): a string, or NULL."""
    return Facets(
        missing=text.is_(None),
        string=text.is_not(None),
        text=text,
        number=number_of_text(text),
    )


def date_facets(column: Expr) -> Facets:
    """A date column: an instant, or NULL."""
    return Facets(
        missing=column.is_(None),
        string=false(),
        text=_NO_TEXT,
        number=_NO_NUMBER,
        instant=column,
    )


def number_facets(number: Expr) -> Facets:
    """A number that is never NULL: a score."""
    none = _NO_TEXT
    return Facets(
        missing=false(),
        string=false(),
        text=none,
        number=number,
        json_number=true(),
        never_null=True,
    )


def json_facets(kind: Expr, text: Expr) -> Facets:
    """A JSON value, from its normalised kind (see `dialect`) and its text."""
    known = func.coalesce(kind, "null")
    string = known == "string"
    return Facets(
        missing=known == "null",
        string=string,
        text=text,
        number=json_number(kind, text),
        json_number=known == "number",
        true_=known == "true",
        false_=known == "false",
        container=known.in_(("array", "object")),
        array=known == "array",
    )


def json_number(kind: Expr, text: Expr) -> Expr:
    """A JSON number, or a JSON string that reads as one, as a number; else NULL.

    A simple ``CASE`` on the kind, so the database works the kind out once.
    """
    return case({"number": ToNumber(text), "string": number_of_text(text)}, value=kind, else_=None)


def attribute_facets(doc: Expr, key: str) -> Facets:
    """The custom field `key` of the JSON document `doc`, lists included."""
    key_sql = literal(key, String())
    facets = json_facets(JsonKind(doc, key_sql), JsonText(doc, key_sql))

    def elements(predicate: Predicate) -> Bool:
        return JsonArrayAny(doc, key_sql, predicate(ELEMENT))

    return replace(facets, elements=elements)


def number_of_text(text: Expr) -> Expr:
    """`float(text.strip().replace(",", ""))`, or NULL when that would raise."""
    plain = func.replace(text, ",", "")
    return case((_is_number(text), ToNumber(plain)), else_=None)


def _is_number(text: Expr) -> Bool:
    plain = func.replace(text, ",", "")
    return and_(text.is_not(None), RegexSearch(plain, NUMBER_PATTERN, NUMBER_PATTERN))


ELEMENT = json_facets(ElementKind(), ElementText())
"""The current element inside `JsonArrayAny`."""

MISSING = Facets(missing=true(), string=false(), text=_NO_TEXT, number=_NO_NUMBER)


# ---------------------------------------------------------------- comparisons


def present(f: Facets) -> Bool:
    """Not None and not ``""``: what every comparison needs first."""
    return and_(not_(f.missing), not_(and_(f.string, f.text == "")))


def compare(f: Facets, cmp: str, right: Any) -> Bool:
    """`compare_values(left, cmp, right)` for the value `f` and a literal `right`."""
    if cmp in ("in", "not in"):
        if not isinstance(right, list):
            return false()
        found = any_equal(f, right)
        return and_(present(f), found if cmp == "in" else not_(found))
    if cmp == "matches":
        return and_(present(f), matches(f, str(right)))
    if cmp in ("==", "!="):
        same = equal(f, right)
        return and_(present(f), same if cmp == "==" else not_(same))
    if cmp in ORDER:
        return and_(present(f), order(f, cmp, right))
    return false()


def any_equal(f: Facets, values: Sequence[Any]) -> Bool:
    """Some element of the value (itself, unless it is a list) equals some of `values`."""
    scalar = equal_some(f, values)
    if f.elements is None:
        return scalar
    return or_(
        and_(not_(f.array), scalar),
        and_(f.array, f.elements(lambda e: equal_some(e, values))),
    )


def equals_any(f: Facets, values: Sequence[Any]) -> Bool:
    """``value == v1 or value == v2 ...``: `compare` with ``==``, for many values at once."""
    return and_(present(f), equal_some(f, values))


def equal_some(f: Facets, values: Sequence[Any]) -> Bool:
    """Some `equal(f, v)` for `v` in `values`, the text comparisons as one ``IN`` list."""
    texts = [v for v in dict.fromkeys(values) if isinstance(v, str)]
    branches = [_text_equal(f, texts)] if texts else []
    for right in values:
        branches += _other_equal(f, right) if isinstance(right, str) else [equal(f, right)]
    return or_(false(), *branches)


def _text_equal(f: Facets, texts: Sequence[str]) -> Bool:
    """Text equal to one of `texts`, case aside (as lower-cased by the database)."""
    lowered = [func.lower(literal(t, String())) for t in texts]
    if len(lowered) == 1:
        return and_(f.string, func.lower(f.text) == lowered[0])
    return and_(f.string, func.lower(f.text).in_(lowered))


def equal(f: Facets, right: Any) -> Bool:
    """`_equal(value, right)`: text without case, numbers as numbers, yes/no as booleans."""
    if isinstance(right, bool):
        return _boolean_is(f, right)
    if isinstance(right, str):
        return or_(false(), _text_equal(f, [right]), *_other_equal(f, right))
    if isinstance(right, int | float):
        flag_branch = f.true_ if right else f.false_
        return or_(_number_compare(f, "==", float(right)), flag_branch)
    return false()


def _other_equal(f: Facets, right: str) -> list[Bool]:
    """How text `right` may equal a value that is not text: as a number, a flag or an instant."""
    branches: list[Bool] = []
    number = _number(right)
    if number is not None:
        branches.append(and_(f.json_number, _number_compare(f, "==", number)))
    flag = _boolean(right)
    if flag is not None:
        branches.append(f.true_ if flag else f.false_)
    instant = as_instant(right)
    if f.instant is not None and instant is not None:
        branches.append(and_(f.instant.is_not(None), f.instant == instant))
    return branches


def order(f: Facets, cmp: str, right: Any) -> Bool:
    """`_comparable(value, right)` then `cmp`: numbers, else instants, else text."""
    number = _number(right)
    branches: list[Bool] = []
    if number is not None:
        branches.append(_number_compare(f, cmp, number))
    if isinstance(right, str):
        text = and_(f.string, ORDER[cmp](Bytewise(func.lower(f.text)), func.lower(right)))
        branches.append(text if number is None else and_(f.number.is_(None), text))
    instant = as_instant(right) if not isinstance(right, bool) else None
    if f.instant is not None and instant is not None:
        branches.append(and_(f.instant.is_not(None), ORDER[cmp](f.instant, instant)))
    return or_(false(), *branches)


def matches(f: Facets, pattern: str) -> Bool:
    """`re.search(pattern, str(value))` for strings, numbers and true/false."""
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError):
        return false()
    search = RegexSearch(f.text, pattern, postgres_pattern(pattern))
    return or_(
        and_(or_(f.string, f.json_number), f.text.is_not(None), search),
        f.true_ if compiled.search("True") else false(),
        f.false_ if compiled.search("False") else false(),
    )


def truthy(f: Facets) -> Bool:
    """`_truthy`: text unless it reads as no/false/0, numbers unless 0, non-empty lists."""
    return or_(
        and_(f.string, not_(func.lower(Strip(f.text)).in_(FALSY_TEXT))),
        and_(f.json_number, f.number != 0),
        f.true_,
        and_(f.container, f.text.not_in(("[]", "{}"))),
        f.instant.is_not(None) if f.instant is not None else false(),
    )


def _boolean_is(f: Facets, flag: bool) -> Bool:
    """`_boolean(value) == flag`."""
    words = TRUE_WORDS if flag else FALSE_WORDS
    return or_(
        f.true_ if flag else f.false_,
        and_(f.string, func.lower(Strip(f.text)).in_(words)),
        and_(f.json_number, f.number != 0 if flag else f.number == 0),
    )


def _number_compare(f: Facets, cmp: str, number: float) -> Bool:
    # The float's shortest repr, exactly: a float cast to NUMERIC keeps 15 significant
    # digits on PostgreSQL, so `== 1234567890123456` missed the very number.
    value = literal(Decimal(repr(number)), Numeric())
    op = ORDER.get(cmp) or (lambda a, b: a == b)
    found = op(f.number, value)
    return found if f.never_null else and_(f.number.is_not(None), found)


def _number(value: Any) -> float | None:
    """`nurture.engine.values._number`; None for NaN too, which equals and orders nothing."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None if number is None or math.isnan(number) else number


def _boolean(value: str) -> bool | None:
    text = value.strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    return None
