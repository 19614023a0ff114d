"""The SQL that SQLite and PostgreSQL spell differently, as constructs compiled per dialect.

Everything else in a segment query is plain SQLAlchemy. These constructs are
built without knowing the database, so `to_sql` returns one expression that
runs on both (any other database gets a `CompileError` naming the two).

Conditions:

- `JsonKind`, `JsonText`: a custom field in ``leads.attributes`` by key;
  `ElementKind`, `ElementText`: one element inside `JsonArrayAny`, an
  ``EXISTS`` over the elements of a list field. Kinds are normalised to
  ``string``, ``number``, ``true``, ``false``, ``null``, ``array``, ``object``
  (NULL when the key is absent).
- `ToNumber`: text known to be a number, as REAL (SQLite) or NUMERIC
  (PostgreSQL, which never overflows where a double would).
- `RegexSearch`: Python's ``re.search`` on SQLite (SQLAlchemy's pysqlite
  dialect registers it on every connection as ``regexp``, so nothing else
  needs registering), ``~`` on PostgreSQL with the pattern translated
  (`postgres_pattern`).
- `Bytewise`: text ordered by code point, as Python orders ``str``.
- `Strip`, `EmailDomain`: ``str.strip()`` and the part after the last ``@``.

The cells of an export have constructs of their own, in `cells`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import Boolean, String, Text
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Numeric

NUMBER_PATTERN = (
    r"^[ \t\n\r\f\v]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?[ \t\n\r\f\v]*$"
)
"""What Python's ``float()`` reads, in the syntax both databases' regexes share (ASCII digits;
no ``inf``, ``nan`` or ``1_000``), with at most four exponent digits so a cast cannot overflow."""

_SQLITE_KINDS = (
    "CASE {type} WHEN 'text' THEN 'string' WHEN 'integer' THEN 'number' "
    "WHEN 'real' THEN 'number' WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
    "WHEN 'null' THEN 'null' WHEN 'array' THEN 'array' WHEN 'object' THEN 'object' END"
)
_PG_KINDS = (
    "CASE jsonb_typeof({node}) WHEN 'boolean' THEN ({node})::text WHEN 'string' THEN 'string' "
    "WHEN 'number' THEN 'number' WHEN 'null' THEN 'null' WHEN 'array' THEN 'array' "
    "WHEN 'object' THEN 'object' END"
)
"""The JSON type, but ``true``/``false`` for booleans (a jsonb boolean's text): the node is
looked up once (twice for a boolean), where ``coalesce(nullif(...))`` looked an absent key up
twice, in every row the score is read."""
ELEMENT = "nurture_element"
"""The alias of the element rows inside `JsonArrayAny`."""

Render = Callable[..., str]
"""A construct's SQL on one dialect, from its arguments' SQL."""


class Construct(FunctionElement[Any]):
    """A function-like SQL piece, written per dialect with `renders`; elsewhere a `CompileError`."""

    inherit_cache = True

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        compiles(cls)(unsupported)


def renders(construct: type[Construct], dialect: str) -> Callable[[Render], Render]:
    """Register a function of the construct's compiled arguments as its SQL on `dialect`."""

    def register(render: Render) -> Render:
        def compile_(element: Construct, compiler: SQLCompiler, **kw: Any) -> str:
            return render(*(compiler.process(arg, **kw) for arg in element.clauses))

        compiles(construct, dialect)(compile_)
        return render

    return register


def unsupported(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    name = compiler.dialect.name
    raise CompileError(f"segment queries run on SQLite and PostgreSQL, not {name}")


def sqlite_path(key: str) -> str:
    return f"""('$."' || {key} || '"')"""


# ---------------------------------------------------------------- custom fields


class JsonKind(Construct):
    """The normalised JSON kind of ``doc[key]``; NULL when the key is absent."""

    type = String()
    name = "nurture_json_kind"
    inherit_cache = True


class JsonText(Construct):
    """``doc[key]`` as text: a string itself, a number's digits, a list or object as JSON."""

    type = Text()
    name = "nurture_json_text"
    inherit_cache = True


@renders(JsonKind, "sqlite")
def _json_kind_sqlite(doc: str, key: str) -> str:
    return _SQLITE_KINDS.format(type=f"json_type({doc}, {sqlite_path(key)})")


@renders(JsonKind, "postgresql")
def _json_kind_pg(doc: str, key: str) -> str:
    return _PG_KINDS.format(node=f"({doc} -> {key})")


@renders(JsonText, "sqlite")
def _json_text_sqlite(doc: str, key: str) -> str:
    return f"CAST(json_extract({doc}, {sqlite_path(key)}) AS TEXT)"


@renders(JsonText, "postgresql")
def _json_text_pg(doc: str, key: str) -> str:
    return f"({doc} ->> {key})"


class JsonArrayAny(Construct):
    """Whether ``doc[key]`` is a list with an element for which the condition holds.

    The condition is written with `ElementKind` and `ElementText`.
    """

    type = Boolean()
    name = "nurture_json_array_any"
    inherit_cache = True


class ElementKind(Construct):
    """The normalised JSON kind of the current element inside `JsonArrayAny`."""

    type = String()
    name = "nurture_element_kind"
    inherit_cache = True


class ElementText(Construct):
    """The current element inside `JsonArrayAny`, as text (like `JsonText`)."""

    type = Text()
    name = "nurture_element_text"
    inherit_cache = True


@renders(JsonArrayAny, "sqlite")
def _array_any_sqlite(doc: str, key: str, cond: str) -> str:
    path = sqlite_path(key)
    return (
        f"EXISTS (SELECT 1 FROM json_each({doc}, {path}) AS {ELEMENT} "
        f"WHERE json_type({doc}, {path}) = 'array' AND ({cond}))"
    )


@renders(JsonArrayAny, "postgresql")
def _array_any_pg(doc: str, key: str, cond: str) -> str:
    node = f"({doc} -> {key})"
    items = f"CASE WHEN jsonb_typeof({node}) = 'array' THEN {node} ELSE '[]'::jsonb END"
    return f"EXISTS (SELECT 1 FROM jsonb_array_elements({items}) AS {ELEMENT}(value) WHERE {cond})"


@renders(ElementKind, "sqlite")
def _element_kind_sqlite() -> str:
    return _SQLITE_KINDS.format(type=f"{ELEMENT}.type")


@renders(ElementKind, "postgresql")
def _element_kind_pg() -> str:
    return _PG_KINDS.format(node=f"{ELEMENT}.value")


@renders(ElementText, "sqlite")
def _element_text_sqlite() -> str:
    return f"CAST({ELEMENT}.value AS TEXT)"


@renders(ElementText, "postgresql")
def _element_text_pg() -> str:
    return f"({ELEMENT}.value #>> '{{}}')"


# ---------------------------------------------------------------- text and numbers


class ToNumber(Construct):
    """Text that is a number (see `NUMBER_PATTERN`) as a number: REAL, or NUMERIC on PostgreSQL."""

    type = Numeric(asdecimal=False)
    name = "nurture_to_number"
    inherit_cache = True


@renders(ToNumber, "sqlite")
def _to_number_sqlite(text: str) -> str:
    return f"CAST({text} AS REAL)"


@renders(ToNumber, "postgresql")
def _to_number_pg(text: str) -> str:
    return f"CAST({text} AS NUMERIC)"


class RegexSearch(Construct):
    """``re.search(pattern, text)``: args are text, the Python pattern, the PostgreSQL one."""

    type = Boolean()
    name = "nurture_regex_search"
    inherit_cache = True


# RegexSearch compiles only the pattern its dialect reads: a bound parameter compiled but
# left out of the text would shift SQLite's positional parameters.
@compiles(RegexSearch, "sqlite")
def _regex_sqlite(element: RegexSearch, compiler: SQLCompiler, **kw: Any) -> str:
    text, python, _postgres = list(element.clauses)
    return f"regexp({compiler.process(python, **kw)}, {compiler.process(text, **kw)})"


@compiles(RegexSearch, "postgresql")
def _regex_pg(element: RegexSearch, compiler: SQLCompiler, **kw: Any) -> str:
    text, _python, postgres = list(element.clauses)
    return f"({compiler.process(text, **kw)} ~ {compiler.process(postgres, **kw)})"


class Bytewise(Construct):
    """Text that compares by code point, as Python compares strings."""

    type = Text()
    name = "nurture_bytewise"
    inherit_cache = True


@renders(Bytewise, "sqlite")
def _bytewise_sqlite(text: str) -> str:
    return text  # SQLite's default BINARY collation is code point order for UTF-8


@renders(Bytewise, "postgresql")
def _bytewise_pg(text: str) -> str:
    return f'({text} COLLATE "C")'


class Strip(Construct):
    """``str.strip()`` for ASCII whitespace."""

    type = Text()
    name = "nurture_strip"
    inherit_cache = True


@renders(Strip, "sqlite")
def _strip_sqlite(text: str) -> str:
    return f"trim({text}, ' ' || char(9, 10, 11, 12, 13))"


@renders(Strip, "postgresql")
def _strip_pg(text: str) -> str:
    return f"btrim({text}, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13))"


class FormulaSafe(Construct):
    """The text with ``'`` in front when it starts with ``= + - @``, a tab or a CR (OWASP's
    CSV-injection advice). `text` is read two or three times: pass a column."""

    type = Text()
    name = "nurture_formula_safe"
    inherit_cache = True


@renders(FormulaSafe, "sqlite")
def _formula_safe_sqlite(text: str) -> str:
    starts = "'=', '+', '-', '@', char(9), char(13)"
    return f"CASE WHEN substr({text}, 1, 1) IN ({starts}) THEN '''' || {text} ELSE {text} END"


@renders(FormulaSafe, "postgresql")
def _formula_safe_pg(text: str) -> str:
    starts = "'=', '+', '-', '@', chr(9), chr(13)"
    return f"CASE WHEN left({text}, 1) IN ({starts}) THEN '''' || {text} ELSE {text} END"


class EmailDomain(Construct):
    """The text after the last ``@``, lower-cased; NULL without an ``@``."""

    type = Text()
    name = "nurture_email_domain"
    inherit_cache = True


@renders(EmailDomain, "sqlite")
def _email_domain_sqlite(text: str) -> str:
    # rtrim(t, t-without-@) keeps everything up to the last @; removing that leaves the domain
    domain = f"replace({text}, rtrim({text}, replace({text}, '@', '')), '')"
    return f"CASE WHEN instr({text}, '@') > 0 THEN lower({domain}) END"


@renders(EmailDomain, "postgresql")
def _email_domain_pg(text: str) -> str:
    # the last field is the whole text when there is no @; then nullif makes it NULL
    return f"lower(nullif(split_part({text}, '@', -1), {text}))"


def postgres_pattern(pattern: str) -> str:
    r"""A Python regular expression in PostgreSQL's dialect.

    Word boundaries ``\b``/``\B`` become ``\y``/``\Y`` and named groups
    ``(?P<name>...)`` plain groups; the rest of the common syntax (classes,
    ``\d \w \s``, ``(?i)`` at the start, groups, lookarounds) reads the same.
    Where the same text means something else, it is rewritten to Python's
    meaning: ``.`` does not match a newline (unless ``(?s)``), ``$`` also
    matches before a final newline (unless ``(?m)``), and ``{,n}`` is
    ``{0,n}``; the flags at the start become PostgreSQL's (``(?m)``, which is
    newline-sensitive matching there, is ``(?w)``). What PostgreSQL lacks
    (atomic groups, possessive quantifiers, quantified lookarounds) fails the
    query with PostgreSQL's message.
    """
    flags = re.match(r"\(\?([aiLmsux]+)\)", pattern)
    letters = flags.group(1) if flags is not None else ""
    dotall, multiline = "s" in letters, "m" in letters
    out: list[str] = []
    i, in_class = 0, False
    if flags is not None:
        kept = "".join(_FLAGS.get(letter, "") for letter in dict.fromkeys(letters))
        out.append(f"(?{kept})" if kept else "")
        i = flags.end()
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            pair = pattern[i : i + 2]
            out.append(pair if in_class else {"\\b": "\\y", "\\B": "\\Y"}.get(pair, pair))
            i += 2
            continue
        if not in_class and pattern.startswith("(?P<", i) and ">" in pattern[i:]:
            out.append("(")
            i = pattern.index(">", i) + 1
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            i += 1
            for literal in ("^", "]"):  # `[]a]` and `[^]a]` hold a literal ]
                if pattern.startswith(literal, i):
                    out.append(literal)
                    i += 1
            continue
        if char == "]" and in_class:
            in_class = False
        elif not in_class:
            rewritten = _python_meaning(pattern, i, dotall, multiline)
            if rewritten is not None:
                text, i = rewritten
                out.append(text)
                continue
        out.append(char)
        i += 1
    return "".join(out)


_FLAGS = {"i": "i", "m": "w", "x": "x"}
"""Python's flags as PostgreSQL's; `s` is PostgreSQL's default, `a`, `L`, `u` have none."""
_UP_TO = re.compile(r"\{,([0-9]+)\}")


def _python_meaning(pattern: str, i: int, dotall: bool, multiline: bool) -> tuple[str, int] | None:
    """What Python means by the text at `i` (outside a class), in PostgreSQL; None: the same."""
    char = pattern[i]
    if char == "." and not dotall:
        return "[^\\n]", i + 1  # PostgreSQL's `.` matches a newline too
    if char == "$" and not multiline:
        return "(?=\\n?$)", i + 1  # Python's `$` matches before a final newline too
    up_to = _UP_TO.match(pattern, i) if char == "{" else None
    if up_to is not None:
        return f"{{0,{up_to.group(1)}}}", up_to.end()  # PostgreSQL reads `{,n}` as text
    return None
