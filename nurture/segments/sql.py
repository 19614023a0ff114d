"""Condition JSON to one SQL boolean over ``leads``: a segment is a ``WHERE`` clause.

`to_sql` follows `nurture.engine.conditions` outside any enrollment (no
waiting branch, no `refs`), which is how segments are evaluated in Python:

- ``tagged`` is an ``EXISTS`` over ``tags`` (a chain of them under one
  ``and``/``or``: one subquery with an ``IN`` list, see `chains`);
  ``event "x" within W`` and ``opened``/``clicked``/``replied``/``bounced``
  are ``EXISTS`` over ``events`` that happened by `now` (and, with
  ``within``, in the last W); with ``count >= N`` (any comparison), a
  ``COUNT`` of those events compared with N.
  An event's name is its type, or a custom event's own name.
- ``clicked "pricing"``: the click's link contains the text, case aside.
  A named message (``opened whitepaper``) matches nothing: events carry no
  ``as`` name, so the Python evaluator finds none either (and the checker
  rejects message names in segments).
- ``score`` is fit + interest + the ``score +N`` steps kept in the
  ``score_delta`` attribute; ``grade`` and ``fit grade`` are the stored
  ``leads.grade``; stages and grades compare by rank, names without case.
- ``lead.<field>``: the columns of `nurture.store.views.PROFILE` (falling
  back to the attribute of the same name when NULL, as the lead view does),
  ``stage``, ``email_domain`` (the attribute, else derived from the email),
  and any custom field in ``attributes``; see `values` for how values compare.

Anything the evaluator treats as false (an unknown operator, a missing field,
a bad regular expression) is ``false()`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from sqlalchemy import (
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    distinct,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from dsl.graph import Json
from dsl.vocabulary import GRADES, STAGE_RANK
from nurture.engine.conditions import COUNT_TESTS
from nurture.engine.state import utc
from nurture.models import EVENT_TYPES, Event, Lead, Tag
from nurture.segments import values
from nurture.segments.chains import Chain
from nurture.segments.dialect import EmailDomain, JsonKind, JsonText, ToNumber
from nurture.segments.values import Bool, Expr, Facets, Predicate
from nurture.store.views import PROFILE

SCORE_DELTA: Final = "score_delta"
"""The attribute holding the total of ``score +N`` steps; `nurture.runtime.loading` names
it too (not imported: that would load the whole runtime to read a segment)."""

DATES: Final = ("created_at", "last_activity_at")

COLUMNS: Final[dict[str, Expr]] = {
    name: getattr(Lead, name) for name in PROFILE if name not in DATES
}
"""Text columns that `lead.<name>` reads (`nurture.store.views.PROFILE`)."""

DATE_COLUMNS: Final[dict[str, Expr]] = {name: getattr(Lead, name) for name in DATES}


def to_sql(cond: Json, now: datetime) -> Bool:
    """The condition as a boolean expression over `Lead`, for a ``WHERE`` clause.

    `now` is when "within the last N days" ends; it must be aware.
    """
    return _sql(cond, utc(now))


def _sql(cond: Json, now: datetime) -> Bool:
    if not isinstance(cond, dict):
        return false()
    handler = _OPS.get(cond.get("op"))
    return handler(cond, now) if handler is not None else false()


def _and(cond: dict[str, Json], now: datetime) -> Bool:
    chain = Chain.of("and", cond)
    parts = [_sql(c, now) for c in chain.rest]
    if chain.tags:
        parts.append(_all_tagged(chain.tags))
    if chain.untags:
        parts.append(not_(_any_tagged(chain.untags)))
    return and_(true(), *parts)


def _or(cond: dict[str, Json], now: datetime) -> Bool:
    chain = Chain.of("or", cond)
    parts = [_sql(c, now) for c in chain.rest]
    if chain.tags:
        parts.append(_any_tagged(chain.tags))
    if chain.untags:
        parts.append(not_(_all_tagged(chain.untags)))
    for name, wanted in chain.equals.items():
        parts.append(field_where(name, partial(values.equals_any, values=wanted)))
    return or_(false(), *parts)


def _not(cond: dict[str, Json], now: datetime) -> Bool:
    return not_(_sql(cond.get("arg"), now))


def _tagged(cond: dict[str, Json], now: datetime) -> Bool:
    tag = cond.get("tag")
    if not isinstance(tag, str):
        return false()
    return exists().where(Tag.lead_id == Lead.id, Tag.tag == tag)


def _any_tagged(tags: Sequence[str]) -> Bool:
    """Some of `tags`: one ``EXISTS`` with an ``IN`` list (see `chains`)."""
    return exists().where(Tag.lead_id == Lead.id, Tag.tag.in_(tags))


def _all_tagged(tags: Sequence[str]) -> Bool:
    """All of `tags`: the lead's distinct tags among them number as many as they do."""
    found = select(func.count(distinct(Tag.tag))).where(Tag.lead_id == Lead.id, Tag.tag.in_(tags))
    return found.scalar_subquery() == len(set(tags))


def _truthy(cond: dict[str, Json], now: datetime) -> Bool:
    return field_where(str(cond.get("field") or ""), values.truthy)


# ---------------------------------------------------------------- events


def _event(cond: dict[str, Json], now: datetime) -> Bool:
    name = cond.get("name")
    if not isinstance(name, str):
        return false()
    return _events(_named(lambda text: text == name, name), cond, now)


def _engagement(cond: dict[str, Json], now: datetime) -> Bool:
    kind, link, message = cond["op"], cond.get("link"), cond.get("message")
    if message is not None:  # events carry no `as` name (see the module docstring)
        return _none_counted(cond)
    if kind == "bounced":
        kinds = _named(lambda text: or_(text == kind, text.startswith("bounced_", autoescape=True)))
    else:
        kinds = _named(lambda text: text == kind, kind)
    if link is not None:
        wanted = str(link).lower()
        kinds = and_(
            kinds,
            Event.link.is_not(None),
            func.lower(Event.link).contains(wanted, autoescape=True),
        )
    return _events(kinds, cond, now)


def _named(test: Callable[[Any], Bool], name: str | None = None) -> Bool:
    """Events whose name passes `test`: a custom event's own name, else the type.

    `name`, when the test is equality with it, lets the common case use the
    type column alone.
    """
    custom = and_(Event.type == "custom", Event.name.is_not(None), Event.name != "")
    if name == "":
        return false()
    if name is not None and name != "custom":
        by_type = Event.type == name if name in EVENT_TYPES else false()
        return or_(by_type, and_(Event.type == "custom", Event.name == name))
    return or_(and_(custom, test(Event.name)), and_(not_(custom), test(Event.type)))


def _events(which: Bool, cond: dict[str, Json], now: datetime) -> Bool:
    """Some of the events `which` selects happened by `now` (in the last `within`); with a
    `count`, how many of them did, compared with its number."""
    within, count = cond.get("within"), cond.get("count")
    where = [Event.lead_id == Lead.id, Event.occurred_at <= now, which]
    if within is not None:
        try:
            where.append(Event.occurred_at >= now - timedelta(seconds=float(within)))
        except (TypeError, ValueError, OverflowError):
            return false()
    if count is None:
        return exists().where(*where)
    test, number = _count_test(count)
    if test is None:
        return false()
    return test(select(func.count(Event.id)).where(*where).scalar_subquery(), number)


def _count_test(count: Json) -> tuple[Callable[[Any, int], Bool] | None, int]:
    """The comparison of `count <cmp> N` and N (None: a count `conditions` finds false)."""
    if not isinstance(count, dict) or not isinstance(count.get("n"), int):
        return None, 0
    test: Any = COUNT_TESTS.get(count.get("cmp"))  # the operator module's: SQL or ints alike
    return test, int(str(count["n"]))


def _none_counted(cond: dict[str, Json]) -> Bool:
    """An atom that matches no event: false, or with a count, whether 0 passes it."""
    test, number = _count_test(cond.get("count"))
    return true() if test is not None and test(0, number) else false()


# ---------------------------------------------------------------- comparisons


def _compare(cond: dict[str, Json], now: datetime) -> Bool:
    subject, cmp, value = cond.get("subject"), str(cond.get("cmp")), cond.get("value")
    if subject == "stage":
        return _ranked(Lead.stage, cmp, value, _stage_rank(), upper=False)
    if subject in ("grade", "fit_grade"):
        return _ranked(Lead.grade, cmp, value, _grade_rank(), upper=True)
    if subject in ("score", "fit", "interest"):
        number = {"score": score(), "fit": Lead.fit, "interest": Lead.interest}[str(subject)]
        return values.compare(values.number_facets(number), cmp, value)
    if subject == "field":
        field = str(cond.get("field") or "")
        return field_where(field, lambda f: values.compare(f, cmp, value))
    return false()


def score() -> Expr:
    """fit + interest + the manual ``score +N`` total (`LeadView.score`).

    The total counts when it is a JSON number (true counts 1, as Python's
    ``isinstance(True, int)`` has it); anything else counts 0. It is a float,
    as the sum with ``interest`` is anyway: a constant 0 of another type was
    converted again in every row.
    """
    key = literal(SCORE_DELTA, String())
    manual = case(
        {
            "number": cast(ToNumber(JsonText(Lead.attributes, key)), Float()),
            "true": literal(1.0, Float()),
        },
        value=JsonKind(Lead.attributes, key),
        else_=literal(0.0, Float()),
    )
    return Lead.fit + Lead.interest + manual


def _ranked(column: Expr, cmp: str, value: Json, ranks: Mapping[str, int], upper: bool) -> Bool:
    """`compare_ranked`: equality and `in` by name (case aside), ordering by rank."""

    def norm(v: Any) -> str:
        return str(v).upper() if upper else str(v).lower()

    name = func.upper(column) if upper else func.lower(column)
    if cmp in ("in", "not in"):
        if not isinstance(value, list):
            return false()
        found = name.in_(sorted({norm(v) for v in value}))
        return and_(column.is_not(None), found if cmp == "in" else not_(found))
    if cmp in ("==", "!="):
        same = name == norm(value)
        return and_(column.is_not(None), same if cmp == "==" else not_(same))
    right = ranks.get(norm(value))
    if right is None or cmp not in values.ORDER:
        return false()
    rank = case(*((name == n, literal(r, Integer())) for n, r in ranks.items()), else_=None)
    return and_(rank.is_not(None), values.ORDER[cmp](rank, right))


def _stage_rank() -> dict[str, int]:
    return {stage.lower(): rank for stage, rank in STAGE_RANK.items()}


def _grade_rank() -> dict[str, int]:
    return {letter.upper(): len(GRADES) - i for i, letter in enumerate(GRADES)}


# ---------------------------------------------------------------- lead fields


def field_where(name: str, predicate: Predicate) -> Bool:
    """The predicate on `lead.<name>`, as `LeadView.field` finds it."""
    name = name.removeprefix("lead.")
    if name == "stage":
        return predicate(values.text_facets(Lead.stage))
    if name == SCORE_DELTA:
        return predicate(values.MISSING)  # the lead view takes it out of the fields
    if name == "email_domain":
        return _email_domain(predicate)
    return _field(name, predicate)


def _field(name: str, predicate: Predicate) -> Bool:
    attribute = _attribute(name)
    stored: Expr
    if name in COLUMNS:
        stored = COLUMNS[name]
        facets = values.text_facets(stored)
    elif name in DATE_COLUMNS:
        stored = DATE_COLUMNS[name]
        facets = values.date_facets(stored)
    else:
        return predicate(attribute)
    return or_(
        and_(stored.is_not(None), predicate(facets)),
        and_(stored.is_(None), predicate(attribute)),
    )


def _attribute(name: str) -> Facets:
    if '"' in name:
        return values.MISSING  # a SQLite JSON path cannot hold it; the language cannot write it
    return values.attribute_facets(Lead.attributes, name)


def _email_domain(predicate: Predicate) -> Bool:
    """The ``email_domain`` attribute, else the email's text after its last ``@``."""
    stored = _attribute("email_domain")

    def derived(email: Facets) -> Bool:
        domain = values.text_facets(EmailDomain(email.text))  # NULL, so missing, without an @
        return and_(email.string, predicate(domain))

    return or_(
        and_(not_(stored.missing), predicate(stored)),
        and_(stored.missing, _field("email", derived)),
    )


_OPS: dict[Any, Callable[[dict[str, Json], datetime], Bool]] = {
    "and": _and,
    "or": _or,
    "not": _not,
    "opened": _engagement,
    "clicked": _engagement,
    "replied": _engagement,
    "bounced": _engagement,
    "tagged": _tagged,
    "event": _event,
    "truthy": _truthy,
    "compare": _compare,
}
