"""Chart building blocks on QtCharts (PySide6-Addons), styled from the application palette so
they follow the light and dark themes: bars per day (stacked per device, with a second axis in
USD), a running total in steps per day, and a horizontal bar comparison.

Everything here runs on the GUI thread and only draws numbers it is given (no data access).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Sequence

from PySide6.QtCharts import (
    QAreaSeries, QBarCategoryAxis, QBarSet, QCategoryAxis, QChart, QChartView, QHorizontalBarSeries, QLineSeries,
    QStackedBarSeries, QValueAxis,
)
from PySide6.QtCore import QMargins

from ui.qt import QColor, QFont, QPainter, QPalette, QPen, Qt, QWidget

SERIES_COLORS = ("#2f80ed", "#27ae60", "#9b51e0", "#f2994a", "#eb5757", "#56ccf2", "#6fcf97", "#bb6bd9")
KNOWLEDGE_COLOR = "#27ae60"
COIN_NOW_COLOR = "#f2994a"
COIN_HISTORICAL_COLOR = "#95a5a6"


def nice_max(v: float) -> float:
    """A round axis maximum at or above `v` (1, 2, 2.5, 5 x 10^n); 1 for nothing."""
    if not v > 0:
        return 1.0
    exp = math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        top = m * 10**exp
        if top >= v * 1.0001:
            return float(top)
    return float(10 ** (exp + 1))


def nice_ticks(top: float) -> int:
    """How many ticks split 0..`top` (a nice_max value) into round steps: 5 for 2 x 10^n
    (steps of 0.5 x 10^n), else 6 (0, 1, 2, 3, 4, 5 rather than 0, 1.25, 2.5...)."""
    if not top > 0:
        return 5
    m = top / 10 ** math.floor(math.log10(top))
    return 5 if abs(m - 2) < 1e-6 else 6


def day_labels(days: Sequence[str]) -> list[str]:
    """Short unique labels for ISO days: "Mon 16" for a week, the day of the month for longer
    periods (unique for any period under 32 days; the chart's title names the months)."""
    out = []
    for d in days:
        dt = date.fromisoformat(d)
        out.append(dt.strftime("%a %d").replace(" 0", " ") if len(days) <= 10 else str(dt.day))
    return out


def _muted(palette: QPalette, alpha: int) -> QColor:
    c = QColor(palette.color(QPalette.ColorRole.WindowText))
    c.setAlpha(alpha)
    return c


def style_chart(chart: QChart, palette: QPalette) -> None:
    """Transparent background, text and grid in the palette's colours, compact margins."""
    chart.setBackgroundVisible(False)
    chart.setPlotAreaBackgroundVisible(False)
    chart.setMargins(QMargins(4, 4, 4, 4))
    chart.layout().setContentsMargins(0, 0, 0, 0)
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    text = palette.color(QPalette.ColorRole.WindowText)
    chart.setTitleBrush(text)
    chart.legend().setLabelColor(text)
    for axis in chart.axes():
        axis.setLabelsColor(text)
        axis.setTitleBrush(text)
        axis.setLinePen(QPen(_muted(palette, 90), 1))
        axis.setGridLinePen(QPen(_muted(palette, 35), 1))
        axis.setShadesVisible(False)
        f = axis.labelsFont()
        f.setPointSizeF(max(7.0, QFont().pointSizeF() * 0.85))
        axis.setLabelsFont(f)


def chart_view(chart: QChart | None, min_height: int = 220) -> QChartView:
    view = QChartView(chart) if chart is not None else QChartView()
    view.setRenderHint(QPainter.RenderHint.Antialiasing)
    view.setMinimumHeight(min_height)
    view.setStyleSheet("background: transparent;")
    return view


def stacked_days_chart(days: Sequence[str], rows: Sequence[tuple[str, Sequence[float]]], *, unit: str,
                       second_unit: str | None = None, second_factor: float = 0.0,
                       palette: QPalette, colors: Sequence[str] = SERIES_COLORS) -> QChart:
    """Stacked bars per day, one QBarSet per row (name, values per day), value axis in `unit`
    on the left and, when `second_factor` > 0, the same scale in `second_unit` on the right."""
    chart = QChart()
    series = QStackedBarSeries()
    series.setBarWidth(0.7)
    for i, (name, values) in enumerate(rows):
        bs = QBarSet(name)
        bs.append([float(v) for v in values])
        bs.setColor(QColor(colors[i % len(colors)]))
        bs.setBorderColor(QColor(colors[i % len(colors)]))
        series.append(bs)
    chart.addSeries(series)
    x = QBarCategoryAxis()
    x.append(day_labels(days))
    chart.addAxis(x, Qt.AlignmentFlag.AlignBottom)
    series.attachAxis(x)
    totals = [sum(float(r[1][i]) for r in rows) for i in range(len(days))] if rows else [0.0]
    top = nice_max(max(totals, default=0.0))
    y = QValueAxis()
    y.setRange(0, top)
    y.setTitleText(unit)
    y.setLabelFormat("%.4g")
    y.setTickCount(nice_ticks(top))
    chart.addAxis(y, Qt.AlignmentFlag.AlignLeft)
    series.attachAxis(y)
    if second_unit and second_factor > 0:
        y2 = QValueAxis()
        y2.setRange(0, top * second_factor)
        y2.setTitleText(second_unit)
        y2.setLabelFormat("%.3g")
        y2.setTickCount(nice_ticks(top))   # the same grid lines as the left axis
        chart.addAxis(y2, Qt.AlignmentFlag.AlignRight)
    chart.legend().setVisible(len(rows) > 1)
    chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
    style_chart(chart, palette)
    return chart


def running_total_chart(days: Sequence[str], values: Sequence[float], *, unit: str, palette: QPalette,
                        color: str = SERIES_COLORS[0]) -> QChart:
    """A filled running total drawn as steps: one flat stretch per day at the total by that
    day's end, rising at the day's start. Payments arrive as whole amounts on a day, so a line
    sloping from day to day would suggest earnings trickling in between. Day slots line up
    with the daily bars (x: day index, the label centred on its day)."""
    chart = QChart()
    line = QLineSeries()
    base = QLineSeries()
    for i, v in enumerate(values):
        line.append(float(i), float(v))       # the rise at the day's start (vertical from the day before)
        line.append(float(i + 1), float(v))   # flat to its end
    base.append(0.0, 0.0)
    base.append(float(max(len(values), 1)), 0.0)
    area = QAreaSeries(line, base)
    line.setParent(area)  # the area does not own its boundary series; without a parent Python frees them
    base.setParent(area)
    fill = QColor(color)
    fill.setAlpha(60)
    area.setBrush(fill)
    area.setPen(QPen(QColor(color), 2))
    chart.addSeries(area)
    x = QCategoryAxis()
    x.setLabelsPosition(QCategoryAxis.AxisLabelsPosition.AxisLabelsPositionCenter)
    x.setStartValue(0.0)
    for i, label in enumerate(day_labels(days)):
        x.append(label, float(i + 1))
    x.setRange(0.0, float(max(len(days), 1)))
    chart.addAxis(x, Qt.AlignmentFlag.AlignBottom)
    area.attachAxis(x)
    y = QValueAxis()
    top = nice_max(max(values, default=0.0))
    y.setRange(0, top)
    y.setTitleText(unit)
    y.setLabelFormat("%.4g")
    y.setTickCount(nice_ticks(top))
    chart.addAxis(y, Qt.AlignmentFlag.AlignLeft)
    area.attachAxis(y)
    chart.legend().setVisible(False)
    style_chart(chart, palette)
    return chart


def comparison_chart(rows: Sequence[tuple[str, float, str]], *, unit: str, palette: QPalette) -> QChart:
    """Horizontal bars, one per (label, value, colour), values may be negative (a loss);
    each bar is labelled with its value in `unit`."""
    chart = QChart()
    series = QHorizontalBarSeries()
    series.setBarWidth(0.9)
    series.setLabelsVisible(True)
    series.setLabelsPosition(QHorizontalBarSeries.LabelsPosition.LabelsOutsideEnd)
    series.setLabelsFormat("@value USD")
    series.setLabelsPrecision(3)
    for label, value, color in reversed(rows):  # first row on top
        bs = QBarSet(label)
        bs.append([float(value)])
        bs.setColor(QColor(color))
        bs.setBorderColor(QColor(color))
        bs.setLabelColor(palette.color(QPalette.ColorRole.WindowText))
        series.append(bs)
    chart.addSeries(series)
    y = QBarCategoryAxis()
    y.append([""])
    y.setVisible(False)
    chart.addAxis(y, Qt.AlignmentFlag.AlignLeft)
    series.attachAxis(y)
    lo = min([0.0] + [v for _, v, _ in rows])
    hi = max([0.0] + [v for _, v, _ in rows])
    span = nice_max(max(abs(lo), abs(hi)) * 1.25)
    x = QValueAxis()
    x.setRange(-span if lo < 0 else 0.0, span if hi > 0 else 0.0 if lo < 0 else span)
    x.setTitleText(unit)
    x.setLabelFormat("%.3g")
    x.setTickCount(5)
    chart.addAxis(x, Qt.AlignmentFlag.AlignBottom)
    series.attachAxis(x)
    chart.legend().setVisible(True)
    chart.legend().setAlignment(Qt.AlignmentFlag.AlignRight)
    chart.legend().setReverseMarkers(True)
    style_chart(chart, palette)
    return chart


__all__ = ["QChartView", "QWidget", "chart_view", "comparison_chart", "day_labels", "nice_max",
           "running_total_chart", "stacked_days_chart", "style_chart", "SERIES_COLORS", "KNOWLEDGE_COLOR",
           "COIN_NOW_COLOR", "COIN_HISTORICAL_COLOR"]
