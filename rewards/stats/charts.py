"""The geometry of the record's charts (pure): a trend line and horizontal bars, drawn as inline SVG by templates.

Everything is computed here, in the chart's own coordinates (its viewBox): the templates only write the numbers
out. Every coordinate is finite and inside the viewBox whatever the data (empty, all zero, huge, missing values);
bars are proportional to their values; a missing value (None: nothing to rate that week) breaks the line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LINE_WIDTH, LINE_HEIGHT = 340, 180
LINE_LEFT, LINE_RIGHT, LINE_TOP, LINE_BOTTOM = 40, 10, 12, 30  # room for the axis labels
BAR_WIDTH = 340
BAR_ROW, BAR_GAP = 22, 6  # px per bar, px between bars
BAR_LABEL, BAR_VALUE = 78, 44  # px for the name on the left, for the number on the right
TICKS = 4


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k not below value (1 for zero or less): a round top for an axis."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10.0**exponent
        if top >= value * (1 - 1e-12):
            return top
    return 10.0 ** (exponent + 1)


def axis(peak: float) -> tuple[float, int]:
    """A round axis for values up to `peak`: (step, steps) with step 1, 2, 2.5 or 5 × 10^k, at most TICKS + 1 steps,
    and step × steps >= peak (one step of 1 when there is nothing to show)."""
    if not math.isfinite(peak) or peak <= 0:
        return 1.0, 1
    step = nice_ceiling(peak / (TICKS + 1))
    steps = max(1, math.ceil(peak / step - 1e-9))
    return step, steps


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class Tick:
    """A horizontal grid line of a line chart and its label."""

    y: float
    label: str


@dataclass(frozen=True)
class Point:
    """A value of a line chart."""

    x: float
    y: float
    label: str  # the x label (the week)
    value: float


@dataclass(frozen=True)
class LineChart:
    """A trend line: the polyline segments (broken where a value is missing), points, x labels and y ticks."""

    width: int
    height: int
    left: float
    right: float  # x of the plot area's right edge
    top: float
    bottom: float  # y of the plot area's bottom edge (the x axis)
    segments: tuple[str, ...]  # SVG polyline "points" attributes
    points: tuple[Point, ...]
    x_labels: tuple[tuple[float, str], ...]
    ticks: tuple[Tick, ...]


def line_chart(
    values: Sequence[tuple[str, float | None]],
    *,
    percent: bool = False,
    width: int = LINE_WIDTH,
    height: int = LINE_HEIGHT,
    label_every: int | None = None,
) -> LineChart:
    """Lay out a trend: (x label, value or None) oldest first; a percent chart's axis runs 0-100 %."""
    left, right = float(LINE_LEFT), float(width - LINE_RIGHT)
    top, bottom = float(LINE_TOP), float(height - LINE_BOTTOM)
    finite = [f for _, v in values if (f := _finite(v)) is not None]
    step, steps = (1.0 / TICKS, TICKS) if percent else axis(max([0.0, *finite]))
    peak = step * steps
    n = len(values)
    dx = (right - left) / (n - 1) if n > 1 else 0.0

    def x_of(i: int) -> float:
        return left + i * dx if n > 1 else (left + right) / 2

    def y_of(v: float) -> float:
        share = min(max(v / peak, 0.0), 1.0)
        return bottom - share * (bottom - top)

    points: list[Point] = []
    segments: list[str] = []
    current: list[str] = []
    for i, (label, raw) in enumerate(values):
        v = _finite(raw)
        if v is None:
            if current:
                segments.append(" ".join(current))
            current = []
            continue
        p = Point(round(x_of(i), 2), round(y_of(v), 2), label, v)
        points.append(p)
        current.append(f"{p.x},{p.y}")
    if current:
        segments.append(" ".join(current))
    every = label_every or max(1, math.ceil(n / 6))
    x_labels = tuple((round(x_of(i), 2), label) for i, (label, _) in enumerate(values) if (n - 1 - i) % every == 0)
    ticks = []
    for k in range(steps + 1):
        v = step * k
        text = f"{v * 100:.0f}%" if percent else _number(v)
        ticks.append(Tick(round(y_of(v), 2), text))
    return LineChart(width, height, left, right, top, bottom, tuple(segments), tuple(points), x_labels, tuple(ticks))


def _number(v: float) -> str:
    if v >= 10_000:
        return f"{v / 10_000:g}万"
    return f"{v:g}"


@dataclass(frozen=True)
class Bar:
    """One bar: its rectangle, its name and its value as text, and where to write them."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: float
    text: str
    label_y: float  # baseline of the name and the value
    value_x: float


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, one row each, longest for the largest value."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    plot_left: float
    plot_width: float


def bar_chart(
    items: Sequence[tuple[str, float, str]], *, width: int = BAR_WIDTH, label_width: int = BAR_LABEL
) -> BarChart:
    """Lay out (name, value, value as text) rows: lengths proportional to the values, zero and negatives empty."""
    left = float(label_width)
    plot = float(width - label_width - BAR_VALUE)
    finite = [max(v, 0.0) for _, v, _ in items if math.isfinite(v)]
    peak = max(finite, default=0.0)
    bars = []
    for i, (label, raw, text) in enumerate(items):
        v = max(raw, 0.0) if math.isfinite(raw) else 0.0
        length = plot * v / peak if peak > 0 else 0.0
        y = BAR_GAP / 2 + i * (BAR_ROW + BAR_GAP)
        bars.append(
            Bar(
                left,
                round(y, 2),
                round(length, 4),
                float(BAR_ROW),
                label,
                v,
                text,
                round(y + BAR_ROW * 0.7, 2),
                round(left + length + 4, 2),
            )
        )
    height = max(1, len(items)) * (BAR_ROW + BAR_GAP)
    return BarChart(width, height, tuple(bars), left, plot)
