"""Marketing costs in: what each lead source and campaign cost per month.

A row names a ``source`` (as leads carry it in ``lead.source``) or a
``campaign`` (by name), the ``month`` (``2026-03``) and the ``amount`` spent.
CSV with a header, or JSON Lines with the same keys. Every row is checked
first, problems named as ``FILE:LINE: field: message``, and then all rows are
stored or none; a row for a (source or campaign, month) already stored
replaces it, so importing a corrected file again is safe. `nurture report
funnel` divides them into cost per lead and per MQL, and won amounts by them
into ROMI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import delete, tuple_
from sqlalchemy.orm import Session

from nurture.intake import Row, RowProblems
from nurture.models import Cost

MAX_AMOUNT: Final = Decimal("999999999999.99")
FIELDS: Final = ("source", "campaign", "month", "amount")


@dataclass(frozen=True, slots=True)
class CostRow:
    kind: str
    name: str
    month: date
    amount: Decimal


def check_costs(rows: Sequence[Row]) -> list[CostRow]:
    """Each row as a cost; `RowProblems` names every problem in every row."""
    problems: list[str] = []
    costs: list[CostRow] = []
    seen: dict[tuple[str, str, date], int] = {}
    for row in rows:
        found = _cost(row, problems)
        if found is None:
            continue
        key = (found.kind, found.name, found.month)
        if key in seen:
            first = seen[key]
            problems.append(
                f"{row.path}:{row.line}: row: the same {found.kind} and month as line {first}"
            )
            continue
        seen[key] = row.line
        costs.append(found)
    if problems:
        raise RowProblems(problems)
    return costs


def _cost(row: Row, problems: list[str]) -> CostRow | None:
    item: Any = row.item
    where = f"{row.path}:{row.line}"
    if not isinstance(item, dict):
        problems.append(f"{where}: row: must be an object with source or campaign, month, amount")
        return None
    before = len(problems)
    unknown = sorted(k for k in item if k not in FIELDS)
    problems += [f"{where}: {k}: unknown column; columns: {', '.join(FIELDS)}" for k in unknown]
    named = [k for k in ("source", "campaign") if str(item.get(k) or "").strip()]
    if len(named) != 1:
        problems.append(f"{where}: source: give a source or a campaign (one of them)")
    month = _month(str(item.get("month") or ""), where, problems)
    amount = _amount(item.get("amount"), where, problems)
    if len(problems) > before or month is None or amount is None:
        return None
    name = str(item[named[0]]).strip()
    if len(name) > 200:
        problems.append(f"{where}: {named[0]}: longer than 200 characters")
        return None
    return CostRow(named[0], name, month, amount)


def _month(text: str, where: str, problems: list[str]) -> date | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        problems.append(f"{where}: month: {text.strip()!r} is not a month such as 2026-03")
        return None


def _amount(value: Any, where: str, problems: list[str]) -> Decimal | None:
    try:
        amount = Decimal(str(value).strip().replace(",", "")) if value is not None else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT:
        problems.append(f"{where}: amount: {value!r} is not an amount from 0 to {MAX_AMOUNT:,}")
        return None
    return amount.quantize(Decimal("0.01"))


def store_costs(session: Session, costs: Sequence[CostRow], now: datetime) -> int:
    """Store `costs`, replacing the same (kind, name, month); how many rows were stored."""
    keys = [(c.kind, c.name, c.month) for c in costs]
    if keys:
        session.execute(delete(Cost).where(tuple_(Cost.kind, Cost.name, Cost.month).in_(keys)))
    session.add_all(
        Cost(kind=c.kind, name=c.name, month=c.month, amount=c.amount, imported_at=now)
        for c in costs
    )
    session.flush()
    return len(costs)
