"""The public API of `nurture.segments`: what `__all__` exports, pinned."""

from __future__ import annotations

import nurture.segments


def test_the_public_api_is_pinned() -> None:
    assert nurture.segments.__all__ == [
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
    for name in nurture.segments.__all__:
        assert getattr(nurture.segments, name) is not None


def test_the_score_total_attribute_is_the_runtimes() -> None:
    from nurture.segments.sql import SCORE_DELTA as READ
    from nurture.store.views import SCORE_DELTA

    assert READ == SCORE_DELTA
