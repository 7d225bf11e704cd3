"""Geometry for the dashboard's server-rendered SVG charts (no chart library, no script).

Each function returns plain dicts the templates draw as `<rect>`/`<polyline>` elements, so
the charts work with the strict CSP and print as they look.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

WIDTH = 640
HEIGHT = 200
PAD_LEFT = 36
PAD_RIGHT = 8
PAD_TOP = 10
PAD_BOTTOM = 24


def nice_max(value: float) -> float:
    """The next 'round' number ≥ value (1, 2, 2.5, 5 × 10^n), so the axis reads cleanly."""
    if value <= 0:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)


def _format(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def stacked_bars(
    *,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    label_every: int | None = None,
) -> dict:
    """Bars per label, each stacking `series` = [(name, css_class, values), …] bottom-up."""
    count = len(labels)
    totals = [sum(values[index] for _name, _css, values in series) for index in range(count)]
    top = nice_max(max(totals, default=0))
    plot_width = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_width / max(count, 1)
    bar_width = max(2.0, slot * 0.7)
    label_every = label_every or max(1, math.ceil(count / 8))
    bars, ticks = [], []
    for index, label in enumerate(labels):
        x = PAD_LEFT + index * slot + (slot - bar_width) / 2
        base = PAD_TOP + plot_height
        for name, css, values in series:
            value = values[index]
            height = plot_height * value / top if top else 0
            if height > 0:
                bars.append(
                    {
                        "x": round(x, 2),
                        "y": round(base - height, 2),
                        "width": round(bar_width, 2),
                        "height": round(height, 2),
                        "css": css,
                        "title": f"{label}: {_format(value)} {name}",
                    }
                )
            base -= height
        if index % label_every == 0:
            ticks.append({"x": round(x + bar_width / 2, 2), "label": label})
    grid = [
        {"y": round(PAD_TOP + plot_height * (1 - fraction), 2), "label": _format(top * fraction)}
        for fraction in (0, 0.5, 1)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "bars": bars,
        "ticks": ticks,
        "grid": grid,
        "grid_x1": PAD_LEFT,
        "grid_x2": WIDTH - PAD_RIGHT,
        "label_y": HEIGHT - 6,
        "empty": not any(totals),
    }


def share(*parts: float) -> list[float]:
    """Percentages of each part of the total (all zeros when the total is zero)."""
    total = sum(parts)
    return [round(100 * part / total, 1) if total else 0.0 for part in parts]
