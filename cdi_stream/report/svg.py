"""Charts as inline SVG text, so the report opens anywhere with no network and no script.

Four kinds are enough for the report: proportions with confidence intervals, a
histogram, stacked counts and a weekly line. Each chart carries a ``<title>`` and a
``<desc>`` for screen readers, and scales with the page through its ``viewBox``; the
tables beside each chart hold the exact numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

WIDTH: Final = 720
FONT: Final = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\""
INK: Final = "#1b1f24"
MUTED: Final = "#5b6470"
GRID: Final = "#dfe3e8"
BLUE: Final = "#1f5fa8"
BLUE_LIGHT: Final = "#c9dbf0"
ORANGE: Final = "#b85a00"
RED: Final = "#b3261e"
GREEN: Final = "#2e7d32"
GREY: Final = "#9aa1a9"


@dataclass(frozen=True, slots=True)
class RateBar:
    label: str
    value: float | None
    low: float | None
    high: float | None
    note: str


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    count: int
    late: bool


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    colour: str
    values: Sequence[float | None]
    lows: Sequence[float | None] | None = None
    highs: Sequence[float | None] | None = None


def _t(text: str) -> str:
    return escape(text, quote=False)


def _a(text: str) -> str:
    return escape(text, quote=True)


def _open(height: float, title: str, desc: str) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="100%" role="img" aria-label="{_a(title)}" {FONT} font-size="13">'
        f"<title>{_t(title)}</title><desc>{_t(desc)}</desc>"
    )


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def nice_step(top: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving at most ``ticks`` intervals."""
    if top <= 0:
        return 1.0
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return float(m * power)
    return float(10 * power)


def rate_bars(bars: Sequence[RateBar], *, title: str, desc: str) -> str:
    """Horizontal bars from 0 to 100% with the 95% interval as a whisker."""
    left, right, row = 200.0, 500.0, 34.0
    top = 28.0
    height = top + row * len(bars) + 12
    span = right - left
    out = [_open(height, title, desc)]
    for p in range(0, 101, 25):
        x = left + span * p / 100
        out.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 10:.1f}" '
            f'stroke="{GRID}"/><text x="{x:.1f}" y="{top - 10}" text-anchor="middle" '
            f'fill="{MUTED}" font-size="11">{p}%</text>'
        )
    for i, bar in enumerate(bars):
        y = top + i * row
        mid = y + row / 2
        out.append(
            f'<text x="{left - 10}" y="{mid + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"{_t(bar.label)}</text>"
        )
        if bar.value is None:
            out.append(
                f'<text x="{left + 6}" y="{mid + 4:.1f}" fill="{MUTED}">no crimes owed</text>'
            )
            continue
        w = span * bar.value
        out.append(
            f'<rect x="{left}" y="{mid - 8:.1f}" width="{w:.1f}" height="16" fill="{BLUE}" rx="2"/>'
        )
        if bar.low is not None and bar.high is not None:
            x1, x2 = left + span * bar.low, left + span * bar.high
            out.append(
                f'<g stroke="{INK}" stroke-width="1.5"><line x1="{x1:.1f}" y1="{mid:.1f}" '
                f'x2="{x2:.1f}" y2="{mid:.1f}"/><line x1="{x1:.1f}" y1="{mid - 6:.1f}" '
                f'x2="{x1:.1f}" y2="{mid + 6:.1f}"/><line x1="{x2:.1f}" y1="{mid - 6:.1f}" '
                f'x2="{x2:.1f}" y2="{mid + 6:.1f}"/></g>'
            )
        out.append(
            f'<text x="{right + 10}" y="{mid + 4:.1f}" fill="{INK}">'
            f'<tspan font-weight="600">{_pct(bar.value)}</tspan>'
            f'<tspan fill="{MUTED}" font-size="11"> {_t(bar.note)}</tspan></text>'
        )
    out.append("</svg>")
    return "".join(out)


def histogram(
    columns: Sequence[Column], *, title: str, desc: str, deadline_label: str, y_label: str
) -> str:
    """Columns on a shared axis; late columns, twice as wide so their labels fit, in
    another colour after a dashed deadline line."""
    left, right, top, bottom = 56.0, WIDTH - 12.0, 26.0, 250.0
    height = bottom + 58
    gap = 12.0
    widths = [2.0 if c.late else 1.0 for c in columns]
    first_late = next((i for i, c in enumerate(columns) if c.late), len(columns))
    has_late = first_late < len(columns)
    slot = (right - left - (gap if has_late else 0.0)) / max(sum(widths), 1.0)
    peak = max((c.count for c in columns), default=0)
    step = nice_step(peak)
    y_top = step * math.ceil(peak / step) if peak else step
    out = [_open(height, title, desc)]
    for k in range(round(y_top / step) + 1):
        v = step * k
        y = bottom - (bottom - top) * v / y_top
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}" '
            f'font-size="11">{v:,.0f}</text>'
        )
    out.append(
        f'<text x="14" y="{(top + bottom) / 2:.1f}" transform="rotate(-90 14 '
        f'{(top + bottom) / 2:.1f})" text-anchor="middle" fill="{MUTED}" font-size="11">'
        f"{_t(y_label)}</text>"
    )
    x = left
    for i, c in enumerate(columns):
        if i == first_late:
            deadline_x = x + gap / 2
            x += gap
        w = slot * widths[i]
        h = (bottom - top) * c.count / y_top
        colour = ORANGE if c.late else BLUE
        out.append(
            f'<rect x="{x + 1:.1f}" y="{bottom - h:.1f}" width="{w - 2:.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{_t(c.label)}: {c.count:,}</title></rect>'
        )
        if c.late:
            out.append(_tick(x + w / 2, bottom, _short(c.label)))
        elif i % 6 == 0:
            out.append(_tick(x, bottom, f"{i}h"))
        x += w
    if has_late:
        out.append(
            f'<line x1="{deadline_x:.1f}" y1="{top - 8}" x2="{deadline_x:.1f}" y2="{bottom}" '
            f'stroke="{RED}" stroke-dasharray="4 3" stroke-width="1.5"/><text '
            f'x="{deadline_x - 4:.1f}" y="{top - 12}" text-anchor="end" fill="{RED}" '
            f'font-size="11">{_t(deadline_label)}</text>'
        )
    out.append(
        f'<text x="{(left + right) / 2:.1f}" y="{bottom + 40}" text-anchor="middle" '
        f'fill="{MUTED}" font-size="11">hours from clock start to first record</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _tick(x: float, bottom: float, label: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" fill="{MUTED}" '
        f'font-size="11">{_t(label)}</text>'
    )


def _short(label: str) -> str:
    return label.replace(" days", "d").replace("over ", ">").replace(" h", "h")


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[int]]],
    *,
    parts: Sequence[tuple[str, str]],
    title: str,
    desc: str,
) -> str:
    """One horizontal bar per row, split into ``parts`` (name, colour), with a legend."""
    left, right, row, top = 230.0, 640.0, 28.0, 34.0
    height = top + row * len(rows) + 10
    peak = max((sum(c) for _, c in rows), default=0) or 1
    out = [_open(height, title, desc)]
    x = left
    for name, colour in parts:
        out.append(
            f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="16" fill="{INK}" font-size="12">{_t(name)}</text>'
        )
        x += 16 + 8 * len(name) + 18
    for i, (label, counts) in enumerate(rows):
        y = top + i * row
        mid = y + row / 2
        out.append(
            f'<text x="{left - 10}" y="{mid + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"{_t(label)}</text>"
        )
        x = left
        for (name, colour), count in zip(parts, counts, strict=True):
            w = (right - left) * count / peak
            if w > 0:
                out.append(
                    f'<rect x="{x:.1f}" y="{mid - 8:.1f}" width="{w:.1f}" height="16" '
                    f'fill="{colour}"><title>{_t(label)}, {_t(name)}: {count:,}</title></rect>'
                )
            x += w
        out.append(
            f'<text x="{x + 8:.1f}" y="{mid + 4:.1f}" fill="{MUTED}" font-size="12">'
            f"{sum(counts):,}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def weekly_lines(labels: Sequence[str], series: Sequence[Series], *, title: str, desc: str) -> str:
    """Percent lines by week, the first series with its interval as a band; the y axis
    starts at a round level below the lowest value so week-to-week change is visible."""
    left, right, top, bottom = 56.0, WIDTH - 16.0, 34.0, 230.0
    height = bottom + 44
    values = [v for s in series for v in [*s.values, *(s.lows or ())] if v is not None]
    floor = max(0.0, math.floor((min(values, default=0.0) - 0.02) * 10) / 10)
    n = len(labels)
    out = [_open(height, title, desc)]

    def px(i: int) -> float:
        return left + (right - left) * (i + 0.5) / max(n, 1)

    def py(v: float) -> float:
        return bottom - (bottom - top) * (v - floor) / (1.0 - floor or 1.0)

    level = floor
    while level <= 1.0 + 1e-9:
        y = py(level)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}" '
            f'font-size="11">{100 * level:.0f}%</text>'
        )
        level = round(level + (0.05 if floor >= 0.5 else 0.1), 6)
    x = left
    for s in series:
        out.append(
            f'<line x1="{x}" y1="14" x2="{x + 18}" y2="14" stroke="{s.colour}" '
            f'stroke-width="2.5"/><text x="{x + 24}" y="18" fill="{INK}" font-size="12">'
            f"{_t(s.name)}</text>"
        )
        x += 24 + 7.5 * len(s.name) + 24
    every = max(1, math.ceil(n / 12))
    for i, label in enumerate(labels):
        if i % every == 0:
            out.append(
                f'<text x="{px(i):.1f}" y="{bottom + 18}" text-anchor="middle" '
                f'fill="{MUTED}" font-size="11">{_t(label)}</text>'
            )
    for s in series:
        if s.lows is not None and s.highs is not None:
            out.append(_band(s, px, py))
        points = [(px(i), py(v)) for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2.5"/>'
            )
        for (x, y), v in zip(points, [v for v in s.values if v is not None], strict=True):
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{s.colour}">'
                f"<title>{_t(s.name)}: {_pct(v)}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)


def _band(s: Series, px: Callable[[int], float], py: Callable[[float], float]) -> str:
    assert s.lows is not None and s.highs is not None
    upper = [(px(i), py(h)) for i, h in enumerate(s.highs) if h is not None]
    lower = [(px(i), py(lo)) for i, lo in enumerate(s.lows) if lo is not None]
    if not upper or len(upper) != len(lower):
        return ""
    if len(upper) == 1:
        (x, y1), (_, y2) = upper[0], lower[0]
        return (
            f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" '
            f'stroke="{BLUE_LIGHT}" stroke-width="8"/>'
        )
    ring = upper + lower[::-1]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in ring)
    return f'<polygon points="{path}" fill="{BLUE_LIGHT}" opacity="0.8"/>'
