"""Properties of the record's chart geometry (pure): inside the viewBox, no NaN, bars proportional, gaps for None."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.clock import IsoWeek
from rewards.errors import Invalid
from rewards.stats.charts import axis, bar_chart, line_chart, nice_ceiling
from rewards.stats.figures import Counts, Figures, hours_text, percent
from rewards.stats.periods import current_month, parse_month, parse_week, recent_months, recent_weeks

TZ = ZoneInfo("Asia/Shanghai")
values = st.one_of(
    st.none(),
    st.floats(min_value=0, max_value=1e9, allow_nan=False),
    st.sampled_from([0.0, float("nan"), float("inf"), -5.0]),
)
labels = st.text(min_size=1, max_size=6)


def finite(*numbers: float) -> bool:
    return all(math.isfinite(n) for n in numbers)


@given(st.lists(st.tuples(labels, values), max_size=60), st.booleans())
def test_a_line_stays_inside_its_plot_area(data: list[tuple[str, float | None]], percent_axis: bool) -> None:
    chart = line_chart(data, percent=percent_axis)
    assert 0 <= chart.left < chart.right <= chart.width and 0 <= chart.top < chart.bottom <= chart.height
    for p in chart.points:
        assert finite(p.x, p.y)
        assert chart.left <= p.x <= chart.right and chart.top <= p.y <= chart.bottom
    for segment in chart.segments:
        for pair in segment.split():
            x, y = (float(v) for v in pair.split(","))
            assert finite(x, y) and chart.left <= x <= chart.right and chart.top <= y <= chart.bottom
    for t in chart.ticks:
        assert finite(t.y) and chart.top <= t.y <= chart.bottom
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs)  # oldest first, left to right
    # one point per finite value; a missing value breaks the line (segments = runs of finite values)
    present = [v is not None and math.isfinite(v) for _, v in data]
    assert len(chart.points) == sum(present)
    runs = sum(1 for i, ok in enumerate(present) if ok and (i == 0 or not present[i - 1]))
    assert len(chart.segments) == runs


@given(st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=1, max_size=30))
def test_a_higher_value_is_drawn_higher(data: list[float]) -> None:
    chart = line_chart([(str(i), v) for i, v in enumerate(data)])
    for a, b in zip(chart.points, chart.points[1:], strict=False):
        if a.value < b.value:
            assert a.y >= b.y
    assert chart.ticks[-1].y == chart.top  # the axis reaches a round number at or above the largest value
    step, steps = axis(max(data))
    assert step * steps >= max(data) and steps <= 5 and len(chart.ticks) == steps + 1
    assert max(data) == 0 or step * (steps - 1) < max(data)  # no empty step at the top


@given(st.lists(st.tuples(labels, st.floats(min_value=-10, max_value=1e9, allow_nan=False)), max_size=40))
def test_bars_are_proportional_to_their_values_and_inside_the_view(data: list[tuple[str, float]]) -> None:
    chart = bar_chart([(name, v, f"{v:g}") for name, v in data])
    assert chart.height > 0 and len(chart.bars) == len(data)
    peak = max((max(v, 0.0) for _, v in data), default=0.0)
    for bar, (_, v) in zip(chart.bars, data, strict=True):
        assert finite(bar.x, bar.y, bar.width, bar.height, bar.value_x, bar.label_y)
        assert bar.x >= 0 and bar.x + bar.width <= chart.width + 1e-9
        assert bar.y >= 0 and bar.y + bar.height <= chart.height
        assert bar.value_x <= chart.width and bar.label_y <= chart.height
        if peak > 0:  # width / value is the same for every bar: proportional
            assert bar.width == pytest.approx(chart.plot_width * max(v, 0.0) / peak, abs=1e-3)
        else:
            assert bar.width == 0
    ys = [b.y for b in chart.bars]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)  # one row each, no overlap


def test_empty_and_zero_data_draw_empty_charts() -> None:
    assert line_chart([]).points == () and line_chart([]).segments == ()
    flat = line_chart([("W1", 0.0), ("W2", 0.0)])
    assert [p.y for p in flat.points] == [flat.bottom, flat.bottom]
    assert bar_chart([]).bars == () and bar_chart([]).height > 0
    assert all(b.width == 0 for b in bar_chart([("城关区", 0.0, "0"), ("西固区", 0.0, "0")]).bars)
    single = line_chart([("W48", 5.0)])
    assert single.points[0].x == (single.left + single.right) / 2
    assert [t.label for t in line_chart([("W1", 0.5)], percent=True).ticks] == ["0%", "25%", "50%", "75%", "100%"]


@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False))
def test_a_nice_ceiling_is_round_and_close(value: float) -> None:
    top = nice_ceiling(value)
    assert value <= top * (1 + 1e-9) and top <= value * 2.5 * (1 + 1e-9)
    mantissa = top / 10 ** math.floor(math.log10(top) + 1e-12)
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5, 10))


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_rates_are_ratios_or_dashes(filed: int, refused: int, rated: int, satisfied: int) -> None:
    satisfied = min(satisfied, rated)
    f = Figures("city", "", Counts(filed=filed, refused=refused, rated=rated, satisfied=satisfied))
    assert f.valid_rate == (filed / (filed + refused) if filed + refused else None)
    assert f.satisfaction_rate == (satisfied / rated if rated else None)
    text = percent(f.valid_rate)
    assert text == "—" if filed + refused == 0 else text.endswith("%")
    assert hours_text(None) == "—" and hours_text(5400 / 3600) == "1.5 小时"


def test_periods_parse_and_refuse_with_a_reason() -> None:
    week = parse_week("2026-W48", TZ)
    assert week.start == datetime(2026, 11, 22, 16, tzinfo=UTC) and week.label == "2026年第48周"
    month = parse_month("2026-11", TZ)
    assert (month.start, month.end) == (datetime(2026, 10, 31, 16, tzinfo=UTC), datetime(2026, 11, 30, 16, tzinfo=UTC))
    december = parse_month("2026-12", TZ)
    assert december.end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    for bad in ("2026-13", "2026-1", "26-11", "1999-01", "2026-00"):
        with pytest.raises(Invalid) as exc:
            parse_month(bad, TZ)
        assert exc.value.code == "invalid_month" and exc.value.status == 422
    with pytest.raises(Invalid) as exc:
        parse_week("2026-W54", TZ)
    assert exc.value.code == "invalid_week"


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2998, 1, 1), timezones=st.just(UTC)))
def test_recent_periods_are_contiguous_and_end_with_the_current_one(now: datetime) -> None:
    weeks = recent_weeks(now, TZ, 12)
    assert len(weeks) == 12 and weeks[-1].start <= now < weeks[-1].end
    assert all(a.end == b.start for a, b in itertools.pairwise(weeks))
    assert weeks[-1].key == str(IsoWeek.parse(weeks[-1].key))
    months = recent_months(now, TZ, 13)
    assert months[-1] == current_month(now, TZ) and months[-1].start <= now < months[-1].end
    assert all(a.end == b.start for a, b in itertools.pairwise(months))
