"""What a template may compute: the limits, the render's deadline, and the size rules.

`dsl.sandbox.BoundedSandbox` calls these before each operator, call, filter,
output and loop round; each raises `TemplateLimitError` before the memory or
the time is spent. Sizes are checked before a value is made, from what it
is made of (`'a' * n` is `n` long), not after.

The deadline lives in a context variable set by `bounded()`, so one
environment serves many worker threads at once, each with its own render.
Outside `bounded()` the size rules hold with the default `Limits` and there
is no deadline.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from jinja2.exceptions import SecurityError

__all__ = [
    "MAX_DIGITS",
    "WIDTH_CALLS",
    "WIDTH_FILTERS",
    "Limits",
    "TemplateLimitError",
    "bounded",
    "check_binop",
    "check_filter",
    "check_numbers",
    "check_size",
    "check_str_method",
    "check_text",
    "current",
    "over",
    "text_size",
    "tick",
]

MAX_DIGITS: Final = 4300
"""The longest whole number a template may make (Python prints none longer)."""
_MAX_BITS: Final = math.ceil(MAX_DIGITS * math.log2(10))
_SEQUENCES = (str, list, tuple, dict, set, frozenset)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one rendered message may cost."""

    size: int = 1_000_000
    """Characters in any value a template makes, and in the whole rendered message."""
    seconds: float = 2.0
    """Time to render one message, all its parts together."""


class TemplateLimitError(SecurityError):
    """Raised when a template would make a value over a limit, or runs past its time."""


@dataclass(slots=True)
class _Budget:
    limits: Limits
    deadline: float


_ACTIVE: ContextVar[_Budget | None] = ContextVar("nurture_template_budget", default=None)
_DEFAULT = Limits()


@contextlib.contextmanager
def bounded(limits: Limits) -> Iterator[None]:
    """Renders inside this block share one deadline, `limits.seconds` from now."""
    token = _ACTIVE.set(_Budget(limits, time.monotonic() + limits.seconds))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def current() -> Limits:
    """The limits of the render in progress; the defaults outside `bounded()`."""
    budget = _ACTIVE.get()
    return _DEFAULT if budget is None else budget.limits


def tick() -> None:
    """Raise `TemplateLimitError` once the render in progress is past its deadline."""
    budget = _ACTIVE.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise TemplateLimitError(f"rendering took longer than {budget.limits.seconds:g} s")


def over(what: str, size: int) -> TemplateLimitError:
    """The error for `what` that would be `size` long."""
    limit = current().size
    return TemplateLimitError(f"{what} would be {size:,} long, over the limit of {limit:,}")


def check_size(value: Any) -> Any:
    """`value`, unless it is a text, list or mapping over the size limit or a huge number."""
    if isinstance(value, _SEQUENCES) and len(value) > current().size:
        raise over("a value", len(value))
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise TemplateLimitError(f"a number would have more than {MAX_DIGITS:,} digits")
    return value


def text_size(value: Any) -> int:
    """About how long `str(value)` is, walking containers; stops counting past the limit."""
    limit, total, stack = current().size, 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() * 3 // 10 + 1
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 24
    return total


def check_text(value: Any, what: str = "the text") -> None:
    size = text_size(value)
    if size > current().size:
        raise over(what, size)


WIDTH_FILTERS: Final = frozenset({"center", "indent", "batch", "slice"})
"""Filters whose number arguments are widths or counts of what they make."""
WIDTH_CALLS: Final = frozenset(
    {"center", "ljust", "rjust", "zfill", "lipsum", "generate_lorem_ipsum", "range", "safe_range"}
)
"""Text methods and globals likewise; other numbers (a lead's revenue) may be any size."""


def check_numbers(args: Iterable[Any]) -> None:
    """A width, count or length above the size limit could only make something too big."""
    limit = current().size
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > limit:
            raise TemplateLimitError(f"the number {arg:,} is over the limit of {limit:,}")


_DIGITS = re.compile(r"\d+")
_FIELDS = re.compile(r"\{([^{}]*)\}")
_PRINTF = re.compile(r"%[-#0 +]*(\d+|\*)?(?:\.(\d+|\*))?")


def _check_printf(fmt: str, args: Any) -> None:
    """`fmt % args`: each `%` makes at most its width or the longest argument."""
    specs = _PRINTF.findall(fmt)
    widths = [int(n) for spec in specs for n in spec if n.isdigit()]
    values = args if isinstance(args, tuple) else (args,)
    check_numbers(widths)
    if any("*" in spec for spec in specs):  # widths taken from the arguments
        check_numbers(values)
    longest = max([0, *widths, *(text_size(v) for v in values)])
    size = len(fmt) + len(specs) * longest
    if size > current().size:
        raise over("the formatted text", size)


def check_binop(op: str, left: Any, right: Any) -> None:
    limit = current().size
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, _SEQUENCES) and isinstance(n, int) and len(seq) * n > limit:
                raise over("the repeated value", len(seq) * n)
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and (left.bit_length() + right.bit_length() > _MAX_BITS)
        ):
            raise TemplateLimitError(f"a number would have more than {MAX_DIGITS:,} digits")
    elif op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
        if right * left.bit_length() > _MAX_BITS:
            raise TemplateLimitError(f"a number would have more than {MAX_DIGITS:,} digits")
    elif op == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        if len(left) + len(right) > limit:
            raise over("the joined value", len(left) + len(right))
    elif op == "%" and isinstance(left, str):
        _check_printf(left, right)


def check_str_method(name: str, text: str, args: tuple[Any, ...]) -> None:
    """Methods of a text whose result can be much longer than the text and its arguments."""
    if name in ("format", "format_map"):
        values = [*args, *(args[0].values() if name == "format_map" and args else ())]
        fields = _FIELDS.findall(text)  # `{:>999}` pads to 999; digits outside are text
        widths = [int(n) for field in fields for n in _DIGITS.findall(field)]
        check_numbers(widths)
        longest = max([0, *widths, *(text_size(v) for v in values)])
        size = len(text) + text.count("{") * longest
        if size > current().size:
            raise over("the formatted text", size)
    elif name == "replace" and len(args) >= 2:
        size = len(text) + text.count(str(args[0])) * len(str(args[1]))
        if not args[0]:
            size = len(text) + (len(text) + 1) * len(str(args[1]))
        if size > current().size:
            raise over("the replaced text", size)
    elif name == "expandtabs":
        size = len(text) + text.count("\t") * int(args[0] if args else 8)
        if size > current().size:
            raise over("the expanded text", size)
    elif name == "join" and args:
        check_text(list(args[0]), "the joined text")


def check_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    value, rest = (args[0] if args else None), args[1:]
    if name in WIDTH_FILTERS:
        check_numbers([*rest, *kwargs.values()])
    if name in ("join", "string", "tojson", "pprint", "list", "urlize") and value is not None:
        check_text(value, f"the `{name}` result")
    elif name == "format" and isinstance(value, str):
        _check_printf(value, tuple(rest) or dict(kwargs))
    elif name == "replace" and isinstance(value, str) and len(rest) >= 2:
        check_str_method("replace", value, tuple(rest))
    elif name == "indent" and isinstance(value, str):
        width = rest[0] if rest else kwargs.get("width", 4)
        width = len(width) if isinstance(width, str) else int(width)
        size = len(value) + (value.count("\n") + 1) * width
        if size > current().size:
            raise over("the indented text", size)
