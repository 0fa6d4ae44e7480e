"""Geometry of the CX page's server-rendered SVG charts (no JavaScript). Pure functions: they
turn scores into coordinates in a fixed viewBox; the template draws them and adds the
accessible title and description, and the same numbers in a table.

Scores here are on the -100..100 scale of NPS and CES (CSAT% fits in it too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOW, HIGH = -100.0, 100.0
GRID = (-100, -50, 0, 50, 100)


@dataclass(frozen=True)
class Box:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom

    def y(self, value: float, low: float = LOW, high: float = HIGH) -> float:
        value = min(high, max(low, value))
        return round(self.top + (high - value) / (high - low) * self.plot_height, 1)

    def grid(self, values=GRID, low: float = LOW, high: float = HIGH) -> list[dict]:
        return [{"value": v, "y": self.y(v, low, high)} for v in values]


TREND_BOX = Box(width=1240, height=250, left=44, right=12, top=12, bottom=34)
BARS_BOX = Box(width=520, height=230, left=44, right=8, top=18, bottom=50)
MAX_X_LABELS = 12


def trend(points: list[dict], box: Box = TREND_BOX, *, grid=GRID) -> dict:
    """A line of the scores over the periods. `points`: [{"label", "value" (None: no
    answers), "small" (bool)}]; returns the path (broken where there is no value), the
    markers and the x labels (at most MAX_X_LABELS, evenly spread). `grid`: the grid lines,
    whose first and last values are the scale's ends (default -100..100)."""
    low, high = grid[0], grid[-1]
    count = max(1, len(points))
    step = box.plot_width / count
    markers, path, pen_down = [], [], False
    for i, point in enumerate(points):
        x = round(box.left + (i + 0.5) * step, 1)
        value = point.get("value")
        if value is None:
            pen_down = False
            continue
        y = box.y(value, low, high)
        path.append(f"{'L' if pen_down else 'M'}{x} {y}")
        pen_down = True
        markers.append({**point, "x": x, "y": y})
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    labels = [
        {"x": round(box.left + (i + 0.5) * step, 1), "text": p["label"]}
        for i, p in enumerate(points)
        if i % every == 0
    ]
    return {
        "box": box,
        "path": " ".join(path),
        "markers": markers,
        "labels": labels,
        "grid": box.grid(grid, low, high),
        "zero": box.y(0, low, high),
        "label_y": box.height - box.bottom + 20,
    }


def bars(items: list[dict], box: Box = BARS_BOX, *, grid=GRID) -> dict:
    """Vertical bars of signed scores from the zero line. `items`: [{"label", "value" (None:
    no bar), "n", "small"}]; returns each bar's rectangle and where its texts go. `grid` as
    for `trend`."""
    low, high = grid[0], grid[-1]
    count = max(1, len(items))
    slot = box.plot_width / count
    width = round(min(64.0, slot * 0.6), 1)
    zero = box.y(0, low, high)
    result = []
    for i, item in enumerate(items):
        centre = round(box.left + (i + 0.5) * slot, 1)
        bar = {**item, "x": round(centre - width / 2, 1), "centre": centre, "width": width}
        value = item.get("value")
        if value is not None:
            top = box.y(max(value, 0), low, high)
            bottom = box.y(min(value, 0), low, high)
            bar.update(y=top, height=max(1.0, round(bottom - top, 1)))
            # the value above a positive bar; above the zero line for a negative one, where
            # it cannot run into the category labels under the plot
            bar["text_y"] = round(top - 5, 1) if value >= 0 else round(zero - 5, 1)
        else:
            bar.update(y=zero, height=0, text_y=round(zero - 5, 1))
        result.append(bar)
    return {
        "box": box,
        "bars": result,
        "grid": box.grid(grid, low, high),
        "zero": zero,
        "label_y": box.height - box.bottom + 18,
        "n_y": box.height - box.bottom + 36,
    }
