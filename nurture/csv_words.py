"""How the problems of a CSV file of leads are worded, for both readers of such files:
`nurture leads import` (`nurture.intake`) and the simulator's `--profile`
(`nurture.simulate.leads`), so one file gets one message from either."""

from __future__ import annotations

import csv
from collections.abc import Sequence


def csv_words(error: csv.Error) -> str:
    """The csv module's complaint, in words for the person who wrote the file."""
    if str(error) == "unexpected end of data":
        return 'a quoted cell is never closed (look for a lone " on this line or before it)'
    return str(error)


def separator_words(header: Sequence[str]) -> str | None:
    """What is wrong with a header of one column that holds `;` or a tab, in words; else None.

    Excel saves "CSV" with semicolons in many countries: read with commas, such a
    file is one column named after the whole header, and every row one cell. The
    words are those `nurture leads import` prints for the same file.
    """
    if len(header) != 1:
        return None
    other = next((sep for sep in (";", "\t") if sep in header[0]), None)
    if other is None:
        return None
    return (
        f"the header is one column, {header[0]!r}: separate the columns with commas, not {other!r}"
    )
