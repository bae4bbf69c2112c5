"""Hand-written inline SVG charts for the report: a line chart, a grouped bar chart and a
history strip coloured by effect. Each returns one ``<svg>`` element as text, every label
escaped; nothing is fetched from anywhere (fonts are the reader's own sans-serif).

Coordinates are pixels of the SVG's ``viewBox``; the charts scale with the page width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
"""Series colours, in order (the first series is drawn in blue, the second in red...)."""
UP, DOWN, NEUTRAL = (178, 24, 43), (33, 102, 172), (247, 247, 247)
"""Effect colours (RGB): pushes the item up (red), pulls it down (blue), no effect (white),
as in the effects heatmap of ``influrec explain``."""
FONT = 'font-family="system-ui, sans-serif"'
LEFT = 76  # room left of a chart's plot area: the y axis title and tick labels like 0.00125


@dataclass(frozen=True)
class Series:
    """One line of a :func:`line_chart`: ``y[i]`` at ``x[i]``."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    dashed: bool = False


@dataclass(frozen=True)
class StripCell:
    """One past event of a :func:`history_strip`: its effect and how it is named."""

    effect: float
    label: str  # shown under the cell (truncated)
    tooltip: str  # the full description, shown on hover
    mark: str = ""  # a short mark drawn inside the cell (the behaviour's letter)


def text(x: float, y: float, content: str, **attrs: str | float) -> str:
    """An escaped ``<text>`` element; ``attrs`` with ``_`` for ``-`` (``text_anchor``)."""
    extra = " ".join(f'{k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" {extra}>{escape(content)}</text>'


def truncate(label: str, limit: int) -> str:
    """``label`` cut to ``limit`` characters, ending in an ellipsis when cut."""
    return label if len(label) <= limit else label[: max(1, limit - 1)] + "…"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (1, 2 or 5 times a power of 10)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else [0.0]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def number(value: float) -> str:
    """A tick label: few digits, no trailing zeros."""
    return f"{value:.4g}"


def _open(width: int, height: int, label: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}" {FONT} '
        f'font-size="12"><title>{escape(label)}</title>'
    )


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart and its linear scales."""

    left: float
    top: float
    width: float
    height: float
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def x(self, value: float) -> float:
        low, high = self.x_range
        return self.left + (value - low) / ((high - low) or 1.0) * self.width

    def y(self, value: float) -> float:
        low, high = self.y_range
        return self.top + self.height - (value - low) / ((high - low) or 1.0) * self.height


def _axes(frame: _Frame, x_ticks: Sequence[float], y_ticks: Sequence[float]) -> list[str]:
    """Grid lines, tick labels and the axis lines of ``frame``."""
    out = []
    bottom = frame.top + frame.height
    for v in y_ticks:
        y = frame.y(v)
        out.append(
            f'<line x1="{frame.left:.1f}" x2="{frame.left + frame.width:.1f}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#e4e4e4"/>'
        )
        out.append(text(frame.left - 6, y + 4, number(v), text_anchor="end", fill="#444"))
    for v in x_ticks:
        x = frame.x(v)
        out.append(text(x, bottom + 16, number(v), text_anchor="middle", fill="#444"))
    out.append(
        f'<path d="M{frame.left:.1f},{frame.top:.1f} V{bottom:.1f} H{frame.left + frame.width:.1f}"'
        ' fill="none" stroke="#888"/>'
    )
    return out


def _legend(
    names: Sequence[str], x: float, y: float, *, dashed: Sequence[bool] = (), boxes: bool = False
) -> list[str]:
    """One row per series: a coloured line (or, for bars, a box) and its name."""
    out = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if i < len(dashed) and dashed[i] else ""
        row = y + 16 * i
        out.append(
            f'<rect x="{x + 4:.1f}" y="{row - 5:.1f}" width="10" height="10" fill="{colour}"/>'
            if boxes
            else f'<line x1="{x:.1f}" x2="{x + 18:.1f}" y1="{row:.1f}" y2="{row:.1f}" '
            f'stroke="{colour}" stroke-width="2.5"{dash}/>'
        )
        out.append(text(x + 24, row + 4, truncate(name, 28)))
    return out


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 490,
    height: int = 300,
) -> str:
    """Lines with points, axes with round ticks, axis labels and, for several series, a
    legend to the right."""
    xs = [v for s in series for v in s.x]
    ys = [v for s in series for v in s.y if math.isfinite(v)]
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0))
    y_ticks = nice_ticks(min(ys, default=0.0), max(ys, default=1.0))
    legend_width = 110 if len(series) > 1 else 10
    frame = _Frame(
        LEFT,
        34,
        width - LEFT - legend_width,
        height - 34 - 50,
        (x_ticks[0], x_ticks[-1]),
        (y_ticks[0], y_ticks[-1]),
    )
    out = [_open(width, height, title), text(width / 2, 18, title, text_anchor="middle")]
    out += _axes(frame, x_ticks, y_ticks)
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        points = [
            (frame.x(a), frame.y(b)) for a, b in zip(s.x, s.y, strict=True) if math.isfinite(b)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        for (x, y), a, b in zip(points, s.x, s.y, strict=False):
            tip = escape(f"{s.name}: {number(b)} at {x_label} {number(a)}")
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{tip}</title>'
                "</circle>"
            )
    bottom = frame.top + frame.height
    out.append(text(frame.left + frame.width / 2, bottom + 36, x_label, text_anchor="middle"))
    out.append(
        text(
            12,
            frame.top + frame.height / 2,
            y_label,
            text_anchor="middle",
            transform=f"rotate(-90 12 {frame.top + frame.height / 2:.1f})",
        )
    )
    if len(series) > 1:
        names = [s.name for s in series]
        dashed = [s.dashed for s in series]
        out += _legend(names, width - legend_width + 14, frame.top + 8, dashed=dashed)
    return "".join(out) + "</svg>"


def bar_chart(
    groups: Sequence[str],
    bars: Mapping[str, Sequence[float]],
    *,
    title: str,
    y_label: str,
    value_format: str = "{:.3f}",
    width: int = 560,
    height: int = 300,
) -> str:
    """Grouped bars: for each of ``groups`` (along the x axis) one bar per series of ``bars``
    (series name -> one value per group), each labelled with its value; legend to the right."""
    values = [v for vs in bars.values() for v in vs if math.isfinite(v)]
    y_ticks = nice_ticks(min(0.0, *values) if values else 0.0, max(values, default=1.0))
    legend_width = 170
    frame = _Frame(
        LEFT, 34, width - LEFT - legend_width, height - 34 - 56, (0, 1), (y_ticks[0], y_ticks[-1])
    )
    out = [_open(width, height, title), text(width / 2, 18, title, text_anchor="middle")]
    out += _axes(frame, [], y_ticks)
    slot = frame.width / max(1, len(groups))
    bar = slot * 0.8 / max(1, len(bars))
    zero = frame.y(0.0)
    for g, group in enumerate(groups):
        centre = frame.left + slot * (g + 0.5)
        out.append(
            text(centre, frame.top + frame.height + 16, truncate(group, 16), text_anchor="middle")
        )
        for s, (name, series) in enumerate(bars.items()):
            value = series[g]
            if not math.isfinite(value):
                continue
            x = centre - slot * 0.4 + bar * s
            top, bottom = sorted((frame.y(value), zero))
            shown = value_format.format(value)
            out.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{bar * 0.92:.1f}" '
                f'height="{max(bottom - top, 0.5):.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(f'{group}, {name}: {shown}')}</title></rect>"
            )
            if bar >= 22:
                out.append(text(x + bar * 0.46, top - 3, shown, text_anchor="middle", font_size=10))
    middle = frame.top + frame.height / 2
    out.append(
        text(12, middle, y_label, text_anchor="middle", transform=f"rotate(-90 12 {middle:.1f})")
    )
    out += _legend(list(bars), width - legend_width + 14, frame.top + 8, boxes=True)
    return "".join(out) + "</svg>"


def effect_colour(effect: float, limit: float) -> str:
    """``#rrggbb`` between :data:`DOWN` (-limit), :data:`NEUTRAL` (0) and :data:`UP` (+limit)."""
    share = 0.0 if limit <= 0 else max(-1.0, min(1.0, effect / limit))
    end = UP if share >= 0 else DOWN
    rgb = [round(n + (e - n) * abs(share)) for n, e in zip(NEUTRAL, end, strict=True)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _colour_legend(x: float, y: float, limit: float, unit: str, uid: str) -> list[str]:
    """A gradient bar from -limit (pulls down) to +limit (pushes up), labelled with the unit."""
    stops = "".join(
        f'<stop offset="{o}" stop-color="{effect_colour((o - 0.5) * 2 * limit, limit)}"/>'
        for o in (0, 0.25, 0.5, 0.75, 1)
    )
    width = 240
    return [
        f'<defs><linearGradient id="{uid}">{stops}</linearGradient></defs>',
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width}" height="12" fill="url(#{uid})" '
        'stroke="#888"/>',
        text(x, y + 26, f"{-limit:+.3g} pulls down", font_size=11),
        text(x + width / 2, y + 26, "0", text_anchor="middle", font_size=11),
        text(x + width, y + 26, f"{limit:+.3g} pushes up", text_anchor="end", font_size=11),
        text(x + width + 14, y + 11, f"effect in {unit}", font_size=11),
    ]


def history_strip(
    cells: Sequence[StripCell],
    *,
    title: str,
    unit: str,
    start: str,
    end: str,
    uid: str,
    width: int = 960,
) -> str:
    """One cell per past event, oldest left, coloured by its effect (red pushes the item up,
    blue pulls it down), its mark inside, its label under it (cut to fit; the whole
    description on hover); ``start``/``end`` name the first and last event's dates, ``uid``
    makes the colour legend's id unique in the page."""
    left = 70  # room for the first labels, which hang down to the left
    cell = min(30.0, (width - left - 20) / max(1, len(cells)))
    limit = max((abs(c.effect) for c in cells), default=0.0) or 1.0
    longest = max((len(truncate(c.label, 18)) for c in cells), default=1)
    label_room = 24 + 6 * longest  # labels at 60 degrees, about 6 px a character
    height = 34 + 30 + label_room + 44
    out = [_open(width, height, title), text(20, 18, title)]
    top = 34
    for i, c in enumerate(cells):
        x = left + i * cell
        out.append(
            f'<g><title>{escape(c.tooltip)}</title><rect x="{x:.1f}" y="{top}" '
            f'width="{cell - 1:.1f}" height="30" fill="{effect_colour(c.effect, limit)}" '
            'stroke="#999" stroke-width="0.5"/>'
        )
        if c.mark:
            out.append(
                text(x + cell / 2 - 0.5, top + 19, c.mark, text_anchor="middle", font_size=10)
            )
        anchor_x, anchor_y = x + cell / 2, top + 38
        out.append(
            text(
                anchor_x,
                anchor_y,
                truncate(c.label, 18),
                text_anchor="end",
                font_size=10,
                transform=f"rotate(-60 {anchor_x:.1f} {anchor_y:.1f})",
            )
            + "</g>"
        )
    bottom = top + 30 + label_room
    dates = f"oldest (left): {start}; newest (right): {end}"
    out.append(text(left, bottom, dates, font_size=11, fill="#444"))
    out += _colour_legend(left, bottom + 12, limit, unit, uid)
    return "".join(out) + "</svg>"
