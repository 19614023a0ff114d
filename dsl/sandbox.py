"""A Jinja sandbox that bounds what a template computes: sizes, numbers and time.

Jinja folds constant expressions while it compiles: `{{ 'a' * 10**9 }}` is
computed by `Environment.compile`, and by `jinja2.meta` in the checker, so a
limit at render time alone comes too late. `BoundedSandbox` leaves nothing
to fold: every operator is intercepted (the sandbox's `intercepted_binops`
hook, which Jinja's folding respects), every filter and the output
`finalize` take the context (Jinja folds neither then), and `~` and `for`
compile to calls into the environment. At run time each of these checks
what it is about to make against `Limits` and the render's deadline, and
raises `TemplateLimitError` before the memory or the time is spent:

- no text, list or mapping longer than `Limits.size`, no whole number of
  more than `MAX_DIGITS` digits, no number argument (a width, a count)
  above `Limits.size`;
- every operator, call, filter, output and loop round looks at the
  deadline set by `bounded()` for the render in progress.

The deadline lives in a context variable, so one environment serves many
worker threads at once, each with its own render.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "MAX_DIGITS",
    "BoundedSandbox",
    "Limits",
    "TemplateLimitError",
    "bounded",
    "constant_problems",
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


def _limits() -> Limits:
    budget = _ACTIVE.get()
    return _DEFAULT if budget is None else budget.limits


def _tick() -> None:
    budget = _ACTIVE.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise TemplateLimitError(f"rendering took longer than {budget.limits.seconds:g} s")


def _over(what: str, size: int) -> TemplateLimitError:
    limit = _limits().size
    return TemplateLimitError(f"{what} would be {size:,} long, over the limit of {limit:,}")


def _check_size(value: Any) -> Any:
    """`value`, unless it is a text, list or mapping over the size limit or a huge number."""
    if isinstance(value, _SEQUENCES) and len(value) > _limits().size:
        raise _over("a value", len(value))
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise TemplateLimitError(f"a number would have more than {MAX_DIGITS:,} digits")
    return value


def text_size(value: Any) -> int:
    """About how long `str(value)` is, walking containers; stops counting past the limit."""
    limit, total, stack = _limits().size, 0, [value]
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


def _check_text(value: Any, what: str = "the text") -> None:
    size = text_size(value)
    if size > _limits().size:
        raise _over(what, size)


_WIDTH_FILTERS: Final = frozenset({"center", "indent", "batch", "slice"})
"""Filters whose number arguments are widths or counts of what they make."""
_WIDTH_CALLS: Final = frozenset(
    {"center", "ljust", "rjust", "zfill", "lipsum", "generate_lorem_ipsum", "range", "safe_range"}
)
"""Text methods and globals likewise; other numbers (a lead's revenue) may be any size."""


def _check_numbers(args: Iterable[Any]) -> None:
    """A width, count or length above the size limit could only make something too big."""
    limit = _limits().size
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
    _check_numbers(widths)
    if any("*" in spec for spec in specs):  # widths taken from the arguments
        _check_numbers(values)
    longest = max([0, *widths, *(text_size(v) for v in values)])
    size = len(fmt) + len(specs) * longest
    if size > _limits().size:
        raise _over("the formatted text", size)


def _check_binop(op: str, left: Any, right: Any) -> None:
    limit = _limits().size
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, _SEQUENCES) and isinstance(n, int) and len(seq) * n > limit:
                raise _over("the repeated value", len(seq) * n)
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
            raise _over("the joined value", len(left) + len(right))
    elif op == "%" and isinstance(left, str):
        _check_printf(left, right)


def _check_str_method(name: str, text: str, args: tuple[Any, ...]) -> None:
    """Methods of a text whose result can be much longer than the text and its arguments."""
    if name in ("format", "format_map"):
        values = [*args, *(args[0].values() if name == "format_map" and args else ())]
        fields = _FIELDS.findall(text)  # `{:>999}` pads to 999; digits outside are text
        widths = [int(n) for field in fields for n in _DIGITS.findall(field)]
        _check_numbers(widths)
        longest = max([0, *widths, *(text_size(v) for v in values)])
        size = len(text) + text.count("{") * longest
        if size > _limits().size:
            raise _over("the formatted text", size)
    elif name == "replace" and len(args) >= 2:
        size = len(text) + text.count(str(args[0])) * len(str(args[1]))
        if not args[0]:
            size = len(text) + (len(text) + 1) * len(str(args[1]))
        if size > _limits().size:
            raise _over("the replaced text", size)
    elif name == "expandtabs":
        size = len(text) + text.count("\t") * int(args[0] if args else 8)
        if size > _limits().size:
            raise _over("the expanded text", size)
    elif name == "join" and args:
        _check_text(list(args[0]), "the joined text")


def _check_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    value, rest = (args[0] if args else None), args[1:]
    if name in _WIDTH_FILTERS:
        _check_numbers([*rest, *kwargs.values()])
    if name in ("join", "string", "tojson", "pprint", "list", "urlize") and value is not None:
        _check_text(value, f"the `{name}` result")
    elif name == "format" and isinstance(value, str):
        _check_printf(value, tuple(rest) or dict(kwargs))
    elif name == "replace" and isinstance(value, str) and len(rest) >= 2:
        _check_str_method("replace", value, tuple(rest))
    elif name == "indent" and isinstance(value, str):
        width = rest[0] if rest else kwargs.get("width", 4)
        width = len(width) if isinstance(width, str) else int(width)
        size = len(value) + (value.count("\n") + 1) * width
        if size > _limits().size:
            raise _over("the indented text", size)


def _checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @pass_context
    def checked(context: Context, *args: Any, **kwargs: Any) -> Any:
        _tick()
        _check_filter(name, args, kwargs)
        return _check_size(context.call(func, *args, **kwargs))

    checked.__name__ = getattr(func, "__name__", name)
    return checked


class _Ticking:
    """An iterable whose every round looks at the deadline; `len` as the wrapped one's."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            _tick()
            yield item


class _Output(list[str]):
    """A macro's or a block's output, refusing to grow past the size limit."""

    __slots__ = ("_size",)

    def __init__(self) -> None:
        super().__init__()
        self._size = 0

    def append(self, part: str) -> None:
        self._grow(len(part))
        super().append(part)

    def extend(self, parts: Iterable[str]) -> None:
        parts = list(parts)
        self._grow(sum(map(len, parts)))
        super().extend(parts)

    def _grow(self, size: int) -> None:
        _tick()
        self._size += size
        if self._size > _limits().size:
            raise _over("the output", self._size)


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator with `~`, `for` and output buffers routed through checks."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat(context, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        rounds = nodes.Call(nodes.EnvironmentAttribute("checked_iter"), [node.iter], [], None, None)
        rounds.set_lineno(node.lineno)
        fields = (node.target, rounds, node.body, node.else_, node.test, node.recursive)
        super().visit_For(nodes.For(*fields, lineno=node.lineno), frame)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with nothing folded at compile time and every step bounded."""

    intercepted_binops = frozenset(ImmutableSandboxedEnvironment.default_binop_table)
    intercepted_unops = frozenset(ImmutableSandboxedEnvironment.default_unop_table)
    code_generator_class = _CodeGenerator

    def __init__(self, *, finalize: Callable[[Any], Any] | None = None, **options: Any) -> None:
        inner = finalize or (lambda value: value)

        @pass_context
        def checked_finalize(context: Context, value: Any) -> Any:
            _tick()
            _check_text(value, "a printed value")
            return inner(value)

        super().__init__(finalize=checked_finalize, optimized=False, **options)
        self.filters = {name: _checked_filter(name, f) for name, f in self.filters.items()}

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """Joins a block's or a macro's output, refusing more than the size limit."""
        parts = list(parts)
        size = sum(map(len, parts))
        if size > _limits().size:
            raise _over("the output", size)
        return "".join(parts)

    def checked_concat(self, context: Context, values: tuple[Any, ...]) -> str:
        """`a ~ b ~ ...`, refusing a text over the size limit before it is made."""
        _tick()
        _check_text(list(values), "the joined text")
        join = markup_join if context.eval_ctx.autoescape else str_join
        return join(values)

    @staticmethod
    def output_buffer() -> list[str]:
        """Where a macro, a `set` block or a filter block collects its output."""
        return _Output()

    def checked_iter(self, items: Any) -> _Ticking:
        """What a `for` loop goes over, looking at the deadline every round."""
        return _Ticking(items)

    def call_binop(self, context: Context | None, op: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(op, left, right)
        return _check_size(self.binop_table[op](left, right))

    def call_unop(self, context: Context | None, op: str, arg: Any) -> Any:
        _tick()
        return self.unop_table[op](arg)

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        _tick()
        method = getattr(__obj, "__wrapped__", __obj)
        if getattr(method, "__name__", "") in _WIDTH_CALLS:
            _check_numbers([*args, *kwargs.values()])
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            _check_str_method(getattr(method, "__name__", ""), owner, args)
        return _check_size(super().call(__context, __obj, *args, **kwargs))


_CHECKER = BoundedSandbox()


class _NotConstant(Exception):
    pass


def constant_problems(template: nodes.Template) -> Iterator[tuple[int, str]]:
    """`(line, why)` for each constant expression in a template that would break a limit.

    The checker's view of `TemplateLimitError`: `{{ 'a' * 10**9 }}` and
    `{{ 'a' | center(10**9) }}` are found without computing anything big.
    """
    seen: set[int] = set()
    with bounded(Limits(seconds=1.0)):
        for node in template.find_all(
            (nodes.BinExpr, nodes.UnaryExpr, nodes.Concat, nodes.Call, nodes.Filter)
        ):
            try:
                _fold(node)
            except _NotConstant:
                continue
            except TemplateLimitError as e:
                if node.lineno not in seen:
                    seen.add(node.lineno)
                    yield node.lineno, str(e)
            except Exception:
                continue


def _fold(node: nodes.Node) -> Any:
    """The value of a constant expression, through the sandbox's checked operators."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_fold(item) for item in node.items]
        return items if isinstance(node, nodes.List) else tuple(items)
    if isinstance(node, nodes.BinExpr):
        return _CHECKER.call_binop(None, node.operator, _fold(node.left), _fold(node.right))
    if isinstance(node, nodes.UnaryExpr):
        return _CHECKER.call_unop(None, node.operator, _fold(node.node))
    if isinstance(node, nodes.Concat):
        values = [_fold(item) for item in node.nodes]
        _check_text(values, "the joined text")
        return "".join(map(str, values))
    if isinstance(node, nodes.Call | nodes.Filter) and _name(node) in _WIDTH_FILTERS | _WIDTH_CALLS:
        _check_numbers(_constant_args(node))
    raise _NotConstant


def _name(node: nodes.Call | nodes.Filter) -> str:
    """`center` for `x | center(...)` and `x.center(...)`, `range` for `range(...)`."""
    if isinstance(node, nodes.Filter):
        return node.name
    func = node.node
    if isinstance(func, nodes.Getattr):
        return func.attr
    return func.name if isinstance(func, nodes.Name) else ""


def _constant_args(node: nodes.Call | nodes.Filter) -> Iterator[Any]:
    for arg in [*node.args, *(kw.value for kw in node.kwargs)]:
        with contextlib.suppress(_NotConstant):
            yield _fold(arg)
