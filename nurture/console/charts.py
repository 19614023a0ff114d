"""The funnel page's charts as plain geometry for its inline SVG (no script, no font).

`stage_bars` lays out one group of bars per month, one bar per funnel stage;
`rate_bars` one bar per month above or below a zero line (the lead velocity
rate). The template draws the rectangles and puts each number in a
``<title>``, so the numbers on the page are the report's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from nurture.funnel_months import Month
from nurture.funnel_tally import STAGES

COLOURS: Final = dict(
    zip(STAGES, ("#9ecbff", "#54aeff", "#0969da", "#8250df", "#1a7f37"), strict=True)
)
HEIGHT: Final = 100.0
"""The charts' drawing height in SVG units; a month's group is `GROUP` wide."""
GROUP: Final = 30.0


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: float
    bars: tuple[Bar, ...]
    labels: tuple[tuple[float, str], ...]
    """(x of the month's middle, ``YYYY-MM``)."""
    zero: float = HEIGHT
    """The y of the zero line."""


def stage_bars(rows: Sequence[Month]) -> Chart:
    """Each month's leads reaching each stage, as grouped bars scaled to the largest."""
    top = max((m.reached[s] for m in rows for s in STAGES), default=0) or 1
    width = GROUP / (len(STAGES) + 1)
    bars = []
    for i, m in enumerate(rows):
        for j, stage in enumerate(STAGES):
            n = m.reached[stage]
            h = HEIGHT * n / top
            x = i * GROUP + (j + 0.5) * width
            bars.append(Bar(x, HEIGHT - h, width, h, COLOURS[stage], f"{m.month} {stage}: {n}"))
    return Chart(len(rows) * GROUP, tuple(bars), _labels(rows))


def rate_bars(rows: Sequence[Month]) -> Chart:
    """Each month's lead velocity rate, above (growth) or below (fewer MQLs) the zero line."""
    rates = [m.lead_velocity_rate for m in rows]
    up = max((r for r in rates if r is not None and r > 0), default=0.0)
    down = -min((r for r in rates if r is not None and r < 0), default=0.0)
    scale = HEIGHT / ((up + down) or 1.0)
    zero = up * scale if up or down else HEIGHT / 2
    bars = []
    for i, (m, rate) in enumerate(zip(rows, rates, strict=True)):
        if rate is None:
            continue
        h = abs(rate) * scale
        y = zero - h if rate > 0 else zero
        colour = "#1a7f37" if rate >= 0 else "#cf222e"
        title = f"{m.month} lead velocity rate: {rate:+.0%}"
        bars.append(Bar(i * GROUP + GROUP / 4, y, GROUP / 2, h, colour, title))
    return Chart(len(rows) * GROUP, tuple(bars), _labels(rows), zero)


def _labels(rows: Sequence[Month]) -> tuple[tuple[float, str], ...]:
    return tuple((i * GROUP + GROUP / 2, m.month) for i, m in enumerate(rows))
