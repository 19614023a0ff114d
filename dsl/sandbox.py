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

The limits and the rules themselves are in `dsl.limits`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dsl.limits import (
    MAX_DIGITS,
    WIDTH_CALLS,
    WIDTH_FILTERS,
    Limits,
    TemplateLimitError,
    bounded,
    check_binop,
    check_filter,
    check_numbers,
    check_size,
    check_str_method,
    check_text,
    current,
    over,
    tick,
)

__all__ = [
    "MAX_DIGITS",
    "BoundedSandbox",
    "Limits",
    "TemplateLimitError",
    "bounded",
    "constant_problems",
]


def _checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @pass_context
    def checked(context: Context, *args: Any, **kwargs: Any) -> Any:
        tick()
        check_filter(name, args, kwargs)
        return check_size(context.call(func, *args, **kwargs))

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
            tick()
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
        tick()
        self._size += size
        if self._size > current().size:
            raise over("the output", self._size)


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
            tick()
            check_text(value, "a printed value")
            return inner(value)

        super().__init__(finalize=checked_finalize, optimized=False, **options)
        self.filters = {name: _checked_filter(name, f) for name, f in self.filters.items()}

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """Joins a block's or a macro's output, refusing more than the size limit."""
        parts = list(parts)
        size = sum(map(len, parts))
        if size > current().size:
            raise over("the output", size)
        return "".join(parts)

    def checked_concat(self, context: Context, values: tuple[Any, ...]) -> str:
        """`a ~ b ~ ...`, refusing a text over the size limit before it is made."""
        tick()
        check_text(list(values), "the joined text")
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
        tick()
        check_binop(op, left, right)
        return check_size(self.binop_table[op](left, right))

    def call_unop(self, context: Context | None, op: str, arg: Any) -> Any:
        tick()
        return self.unop_table[op](arg)

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        tick()
        method = getattr(__obj, "__wrapped__", __obj)
        if getattr(method, "__name__", "") in WIDTH_CALLS:
            check_numbers([*args, *kwargs.values()])
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            check_str_method(getattr(method, "__name__", ""), owner, args)
        return check_size(super().call(__context, __obj, *args, **kwargs))


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
        check_text(values, "the joined text")
        return "".join(map(str, values))
    if isinstance(node, nodes.Call | nodes.Filter) and _name(node) in WIDTH_FILTERS | WIDTH_CALLS:
        check_numbers(_constant_args(node))
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
