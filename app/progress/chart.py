"""The progress chart: ratings over time with the step-completion line, as a small SVG.

Pure: data in, SVG text out. Built with ElementTree, so whatever the user typed is escaped.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

WIDTH, HEIGHT = 600, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 548, 78, 252
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
INK, MUTED, FAINT, GRID = "#1f2937", "#6b7280", "#9ca3af", "#eef0f4"
RATING = "#4f46e5"
STEPS, STEPS_FILL = "#f59e0b", "#fef3c7"
TITLE_CHARS = 50
Scale = Callable[..., float]


@dataclass(frozen=True)
class ChartData:
    title: str
    ratings: Sequence[tuple[dt.datetime, int]]  # oldest first
    completions: Sequence[dt.datetime]  # completed_at of the steps that are done
    steps_total: int
    start: dt.datetime  # the goal's creation
    end: dt.datetime  # now
    timezone: str = "UTC"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    element = ET.SubElement(
        parent, tag, {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items()}
    )
    if text is not None:
        element.text = text
    return element


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def render_progress_svg(data: ChartData) -> str:
    times = [data.start, data.end, *(t for t, _ in data.ratings), *data.completions]
    t0, t1 = min(times), max(times)
    if t1 - t0 < dt.timedelta(days=2):
        t0 = t1 - dt.timedelta(days=2)
    span = (t1 - t0).total_seconds()

    def x(at: dt.datetime) -> float:
        return LEFT + (RIGHT - LEFT) * (at - t0).total_seconds() / span

    def y(fraction: float) -> float:
        return BOTTOM - (BOTTOM - TOP) * fraction

    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {WIDTH} {HEIGHT}",
            "width": str(WIDTH),
            "height": str(HEIGHT),
            "role": "img",
            "font-family": FONT,
        },
    )
    done = len(data.completions)
    latest = data.ratings[-1][1] if data.ratings else None
    summary = (f"Latest rating {latest} of 10" if latest is not None else "No reviews yet") + (
        f" \u00b7 {done} of {data.steps_total} steps done" if data.steps_total else ""
    )
    _el(svg, "title", f"Progress: {data.title}. {summary}.")
    _el(
        svg,
        "rect",
        x=0.5,
        y=0.5,
        width=WIDTH - 1,
        height=HEIGHT - 1,
        rx=14,
        fill="#ffffff",
        stroke="#e5e7eb",
    )
    _el(
        svg,
        "text",
        _shorten(data.title, TITLE_CHARS),
        x=24,
        y=32,
        font_size=17,
        font_weight=600,
        fill=INK,
        class_="chart-title",
    )
    _el(svg, "text", summary, x=24, y=54, font_size=12, fill=MUTED, class_="chart-subtitle")
    _legend(svg)
    _grid(svg, y)
    _date_labels(svg, t0, t1, x, _zone(data.timezone))
    if data.steps_total:
        _steps_line(svg, data, t0, t1, x, y)
    if data.ratings:
        _ratings_line(svg, data.ratings, x, y)
    else:
        _empty_state(svg)
    ET.indent(svg, space=" ")
    return ET.tostring(svg, encoding="unicode", xml_declaration=False) + "\n"


def _legend(svg: ET.Element) -> None:
    legend = _el(svg, "g", class_="legend", font_size=12, fill=MUTED)
    _el(
        legend,
        "line",
        x1=366,
        y1=50,
        x2=386,
        y2=50,
        stroke=RATING,
        stroke_width=2.5,
        stroke_linecap="round",
    )
    _el(legend, "circle", cx=376, cy=50, r=3.5, fill="#ffffff", stroke=RATING, stroke_width=2)
    _el(legend, "text", "Rating (0\u201310)", x=392, y=54)
    _el(
        legend,
        "line",
        x1=486,
        y1=50,
        x2=506,
        y2=50,
        stroke=STEPS,
        stroke_width=2.5,
        stroke_linecap="round",
    )
    _el(legend, "text", "Steps done", x=512, y=54)


def _grid(svg: ET.Element, y: Scale) -> None:
    grid = _el(svg, "g", class_="grid", font_size=11, fill=FAINT)
    for rating in range(0, 11, 2):
        level = y(rating / 10)
        color = "#d1d5db" if rating == 0 else GRID
        _el(
            grid,
            "line",
            x1=LEFT,
            y1=_fmt(level),
            x2=RIGHT,
            y2=_fmt(level),
            stroke=color,
            stroke_width=1,
        )
        _el(
            grid,
            "text",
            str(rating),
            x=LEFT - 10,
            y=_fmt(level + 4),
            text_anchor="end",
            class_="axis-rating",
        )
        _el(grid, "text", f"{rating * 10}%", x=RIGHT + 10, y=_fmt(level + 4), class_="axis-percent")


def _date_labels(
    svg: ET.Element, t0: dt.datetime, t1: dt.datetime, x: Scale, zone: ZoneInfo
) -> None:
    """Up to five dates at the client's local midnights, evenly stepped in whole days."""
    labels = _el(svg, "g", class_="axis-dates", font_size=11, fill=MUTED, text_anchor="middle")
    first, last = t0.astimezone(zone).date(), t1.astimezone(zone).date()
    if dt.datetime.combine(first, dt.time(), zone) < t0:
        first += dt.timedelta(days=1)
    days = (last - first).days
    step = max(1, -(-days // 4))
    long_span = days > 300
    for offset in range(0, days + 1, step):
        day = first + dt.timedelta(days=offset)
        at = dt.datetime.combine(day, dt.time(), zone)
        if not t0 <= at <= t1:
            continue
        text = f"{day:%b} {day.year}" if long_span else f"{day:%b} {day.day}"
        _el(
            labels,
            "line",
            x1=_fmt(x(at)),
            y1=BOTTOM,
            x2=_fmt(x(at)),
            y2=BOTTOM + 5,
            stroke="#d1d5db",
        )
        pos = x(at)
        anchor = "start" if pos < LEFT + 22 else "end" if pos > RIGHT - 22 else "middle"
        _el(labels, "text", text, x=_fmt(pos), y=BOTTOM + 20, text_anchor=anchor)


def _steps_line(
    svg: ET.Element, data: ChartData, t0: dt.datetime, t1: dt.datetime, x: Scale, y: Scale
) -> None:
    total = data.steps_total
    points: list[tuple[float, float]] = [(x(t0), y(0))]
    for count, at in enumerate(sorted(data.completions), start=1):
        px = x(at)
        points.append((px, points[-1][1]))
        points.append((px, y(min(count, total) / total)))
    points.append((x(t1), points[-1][1]))
    line = " ".join(
        f"{'M' if i == 0 else 'L'}{_fmt(px)},{_fmt(py)}" for i, (px, py) in enumerate(points)
    )
    area = f"{line} L{_fmt(points[-1][0])},{BOTTOM} L{_fmt(points[0][0])},{BOTTOM} Z"
    group = _el(svg, "g", class_="steps")
    _el(group, "path", d=area, fill=STEPS_FILL, fill_opacity=0.75, stroke="none")
    _el(
        group,
        "path",
        d=line,
        fill="none",
        stroke=STEPS,
        stroke_width=2.5,
        stroke_linejoin="round",
        class_="steps-line",
    )


def _ratings_line(
    svg: ET.Element, ratings: Sequence[tuple[dt.datetime, int]], x: Scale, y: Scale
) -> None:
    points = [(x(at), y(rating / 10)) for at, rating in ratings]
    group = _el(svg, "g", class_="ratings")
    if len(points) > 1:
        line = " ".join(
            f"{'M' if i == 0 else 'L'}{_fmt(px)},{_fmt(py)}" for i, (px, py) in enumerate(points)
        )
        _el(
            group,
            "path",
            d=line,
            fill="none",
            stroke=RATING,
            stroke_width=3,
            stroke_linejoin="round",
            stroke_linecap="round",
            class_="ratings-line",
        )
    # Many reviews: smaller points, so the line stays readable.
    radius = 4.5 if len(points) <= 30 else 3 if len(points) <= 60 else 2
    for px, py in points:
        _el(
            group,
            "circle",
            cx=_fmt(px),
            cy=_fmt(py),
            r=radius,
            fill="#ffffff",
            stroke=RATING,
            stroke_width=2.5 if radius > 3 else 1.5,
            class_="rating-point",
        )
    last_x, last_y = points[-1]
    _el(group, "circle", cx=_fmt(last_x), cy=_fmt(last_y), r=5.5, fill=RATING)
    label_y = last_y - 12 if last_y - 12 > TOP - 4 else last_y + 20
    _el(
        group,
        "text",
        str(ratings[-1][1]),
        x=_fmt(last_x),
        y=_fmt(label_y),
        font_size=13,
        font_weight=700,
        fill=RATING,
        text_anchor="middle",
        class_="latest-rating",
    )


def _empty_state(svg: ET.Element) -> None:
    group = _el(svg, "g", class_="empty-state", text_anchor="middle")
    cx, cy = (LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2
    _el(
        group,
        "rect",
        x=_fmt(cx - 170),
        y=_fmt(cy - 30),
        width=340,
        height=60,
        rx=12,
        fill="#f9fafb",
        stroke="#e5e7eb",
    )
    _el(
        group,
        "text",
        "No reviews yet",
        x=_fmt(cx),
        y=_fmt(cy - 5),
        font_size=15,
        font_weight=600,
        fill=INK,
    )
    _el(
        group,
        "text",
        "Add a check-in to see how it is going over time.",
        x=_fmt(cx),
        y=_fmt(cy + 16),
        font_size=12,
        fill=MUTED,
    )
