"""The cells of an export, rendered by the database: SQL constructs compiled per dialect.

- `AttributeText`, `AttributeJson`: a custom field as a CSV cell (text as
  is, numbers, ``true``/``false``, lists as JSON) or as a JSON value;
- `TextAsJson`: text as a JSON string;
- `JsonObject`: a row as one JSON object (SQLite; PostgreSQL turns a whole
  row into JSON with ``row_to_json``, see `export.rows_query`);
- `DateText`: an instant as Python's ``datetime.isoformat()`` writes it;
- `TagArray`, `EmptyArray`: tags aggregated into a JSON array.
"""

from __future__ import annotations

from sqlalchemy import Text

from nurture.segments.dialect import ELEMENT, Construct, renders, sqlite_path


class AttributeText(Construct):
    """``doc[key]`` for a CSV cell: text as is, numbers, ``true``/``false``, lists as JSON."""

    type = Text()
    name = "nurture_attribute_text"
    inherit_cache = True


@renders(AttributeText, "sqlite")
def _attribute_text_sqlite(doc: str, key: str) -> str:
    path = sqlite_path(key)
    return (
        f"CASE json_type({doc}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        f"{_sqlite_containers(doc, path)} ELSE json_extract({doc}, {path}) END"
    )


def _sqlite_containers(doc: str, path: str) -> str:
    """``WHEN`` arms that rebuild a list or object one level deep.

    SQLAlchemy stores JSON with non-ASCII text escaped (``"\\u6570"``), and SQLite
    hands a list back as stored; rebuilt from its elements, ``"数据"`` reads as itself
    (lists inside lists keep the escapes: valid JSON, less readable).
    """
    element = (
        f"CASE {ELEMENT}.type WHEN 'true' THEN json('true') WHEN 'false' THEN json('false') "
        f"ELSE {ELEMENT}.value END"
    )
    each = f"FROM json_each({doc}, {path}) AS {ELEMENT}"
    return (
        f"WHEN 'array' THEN (SELECT json_group_array({element}) {each}) "
        f"WHEN 'object' THEN (SELECT json_group_object({ELEMENT}.key, {element}) {each})"
    )


@renders(AttributeText, "postgresql")
def _attribute_text_pg(doc: str, key: str) -> str:
    return f"({doc} ->> {key})"


class AttributeJson(Construct):
    """``doc[key]`` as a JSON value for `JsonObject` (null when absent)."""

    type = Text()
    name = "nurture_attribute_json"
    inherit_cache = True


@renders(AttributeJson, "sqlite")
def _attribute_json_sqlite(doc: str, key: str) -> str:
    path = sqlite_path(key)
    return (
        f"CASE json_type({doc}, {path}) {_sqlite_containers(doc, path)} "
        f"WHEN 'text' THEN json_quote(json_extract({doc}, {path})) "
        f"ELSE json({doc} -> {path}) END"
    )


@renders(AttributeJson, "postgresql")
def _attribute_json_pg(doc: str, key: str) -> str:
    return f"({doc} -> {key})"


class TextAsJson(Construct):
    """Text as a JSON string value for `JsonObject` (null for NULL)."""

    type = Text()
    name = "nurture_text_as_json"
    inherit_cache = True


@renders(TextAsJson, "sqlite")
def _text_as_json_sqlite(text: str) -> str:
    return f"CASE WHEN {text} IS NOT NULL THEN json_quote({text}) END"


@renders(TextAsJson, "postgresql")
def _text_as_json_pg(text: str) -> str:
    return f"to_jsonb(CAST({text} AS TEXT))"


class JsonObject(Construct):
    """A JSON object from name, value, name, value, ...: compact, keys in order (SQLite).

    PostgreSQL turns a whole row into JSON instead (``row_to_json``), which is
    faster than building an object a row (`nurture.segments.export.rows_query`).
    """

    type = Text()
    name = "nurture_json_object"
    inherit_cache = True


@renders(JsonObject, "sqlite")
def _json_object_sqlite(*pairs: str) -> str:
    return f"json_object({', '.join(pairs)})"


class DateText(Construct):
    """A date column as Python's ``datetime.isoformat()`` writes an aware UTC instant."""

    type = Text()
    name = "nurture_date_text"
    inherit_cache = True


@renders(DateText, "sqlite")
def _date_text_sqlite(col: str) -> str:
    # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
    micro = f"substr({col}, 21, 6)"
    return (
        f"substr({col}, 1, 10) || 'T' || substr({col}, 12, 8) "
        f"|| CASE WHEN {micro} IN ('', '000000') THEN '' ELSE '.' || {micro} END || '+00:00'"
    )


@renders(DateText, "postgresql")
def _date_text_pg(col: str) -> str:
    utc = f"({col} AT TIME ZONE 'UTC')"
    micro = f"to_char({utc}, 'US')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
        f"|| CASE WHEN {micro} = '000000' THEN '' ELSE '.' || {micro} END || '+00:00'"
    )


class TagArray(Construct):
    """The aggregate of a tag column into a JSON array (NULL when there are none)."""

    type = Text()
    name = "nurture_tag_array"
    inherit_cache = True


@renders(TagArray, "sqlite")
def _tag_array_sqlite(tag: str) -> str:
    return f"json_group_array({tag})"


@renders(TagArray, "postgresql")
def _tag_array_pg(tag: str) -> str:
    return f"json_agg({tag})"


class EmptyArray(Construct):
    """A JSON array, or ``[]`` for NULL (a lead without tags)."""

    type = Text()
    name = "nurture_empty_array"
    inherit_cache = True


@renders(EmptyArray, "sqlite")
def _empty_array_sqlite(value: str) -> str:
    return f"json(coalesce({value}, '[]'))"


@renders(EmptyArray, "postgresql")
def _empty_array_pg(value: str) -> str:
    return f"coalesce({value}, '[]'::json)"
