"""Segments: a condition over leads compiled to one SQL query, counted and exported.

`to_sql` turns the condition JSON that `dsl` compiles (a ``segment`` block or
a ``--where`` expression, see `parse_where`) into a ``WHERE`` clause over
``leads`` that means what `nurture.engine.conditions` means in Python, on
SQLite and PostgreSQL alike. `count` and `export` run it: one ``COUNT`` and
one streamed query for the rows, written as CSV or JSONL.
"""

from __future__ import annotations

from nurture.segments.export import (
    DEFAULT_FIELDS,
    Sizes,
    columns,
    count,
    count_query,
    export,
    known_fields,
    profile_fields,
    rows_query,
    sizes,
)
from nurture.segments.source import WHERE, WhereError, fields_source, parse_where, wrap
from nurture.segments.sql import score, to_sql

__all__ = [
    "DEFAULT_FIELDS",
    "WHERE",
    "Sizes",
    "WhereError",
    "columns",
    "count",
    "count_query",
    "export",
    "fields_source",
    "known_fields",
    "parse_where",
    "profile_fields",
    "rows_query",
    "score",
    "sizes",
    "to_sql",
    "wrap",
]
