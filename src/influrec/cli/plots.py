"""The images ``explain --plot`` draws: per-event effects, or group Shapley values.

Each names whose history it explains (``who``: ``user 42``), each recommended item (its title,
else id and category), the method or grouping, and the unit of the values; event labels give
the item's title, the behaviour and the date, in a figure that grows with the number of events
so that 50 or more stay readable.
matplotlib is an extra (``influrec[plot]``), imported only here, when a plot is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from influrec.data.times import readable_time
from influrec.errors import InputError
from influrec.influence.measurement import MEASURES
from influrec.influence.results import ExplainResult, GroupExplainResult

LABEL_CHARS = 40  # an event or item label is cut to this many characters (with an ellipsis)

GROUPING_WORDS = {"behavior": "behaviour type", "time": "time window", "category": "item category"}
"""``explain --groups`` value -> what one group is, in words."""

Label = Callable[[str], str]
"""item id -> what to show for it (``Recommender.item_label``)."""


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or an InputError naming the extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InputError("--plot needs matplotlib: pip install 'influrec[plot]'") from exc
    return plt


def short(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unit_words(measure: str) -> str:
    """``rank-margin points``: the short name of a measure's unit."""
    return MEASURES[measure].unit.split(":")[0] if measure in MEASURES else "measure points"


def _heatmap(
    plt: Any, matrix: np.ndarray, rows: list[str], columns: list[str], *, upright: bool = True
) -> Any:
    """A figure with a diverging heatmap of ``matrix`` (len(rows), len(columns)), sized so
    each row label and each column label (``upright``: rotated) has room; returns (figure,
    axes, image, limit of the colour scale)."""
    longest = max(map(len, columns), default=0)
    per_column = 0.28 if upright else max(0.28, 0.055 * longest + 0.2)
    width = max(7.0, per_column * len(columns) + 0.09 * max(map(len, rows), default=0) + 3.5)
    height = max(3.5, 0.42 * len(rows) + (0.075 * longest if upright else 0.3) + 1.8)
    fig, ax = plt.subplots(figsize=(width, height))
    finite = np.abs(matrix[np.isfinite(matrix)]) if matrix.size else np.zeros(0)
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xticks(range(len(columns)), columns, rotation=90 if upright else 0, fontsize=7)
    return fig, ax, image, limit


def save(fig: Any, path: Path) -> None:
    """Write ``fig`` to ``path`` (the type by its suffix) and close it; an SVG keeps its text
    as text, so it can be searched and read by tools."""
    plt = _pyplot()
    fig.tight_layout()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path, dpi=120)
    plt.close(fig)


def effects_figure(result: ExplainResult, *, who: str, label: Label) -> Any:
    """The (recommendations x events) effects of an ``explain`` result, as a figure.

    Rows are the recommended items (rank and title), columns the events the model saw, oldest
    left (title, behaviour, date); the colour is the effect, in the measure's unit.
    """
    plt = _pyplot()
    recs = result.recommendations
    events = recs[0].events if recs else []
    matrix = np.array([[e.effect for e in r.events] for r in recs]).reshape(len(recs), -1)
    rows = [f"{r.rank}. {short(label(r.item))}" for r in recs]
    columns = [
        f"{short(label(e.item))} ({e.behavior}, {readable_time(e.timestamp)[:10]})" for e in events
    ]
    fig, ax, image, _ = _heatmap(plt, matrix, rows, columns)
    ax.set_xlabel(f"the {len(events)} past events the model saw (oldest left)")
    ax.set_title(
        f"{who}: effect of each past event on each recommendation\n"
        f"{result.method}, measure {result.measure}; red pushes the item up",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label=f"effect ({unit_words(result.measure)})")
    return fig


def groups_figure(result: GroupExplainResult, *, who: str, label: Label) -> Any:
    """The (recommendations x groups) exact Shapley values of an ``explain --groups`` result,
    as a figure, each cell written out (groups are few: at most six)."""
    plt = _pyplot()
    recs = result.recommendations
    names = [g.group for g in recs[0].groups] if recs else []
    sizes = [g.events for g in recs[0].groups] if recs else []
    matrix = np.array([[g.shapley for g in r.groups] for r in recs]).reshape(len(recs), -1)
    rows = [f"{r.rank}. {short(label(r.item))}" for r in recs]
    columns = [f"{n} ({s} events)" for n, s in zip(names, sizes, strict=True)]
    fig, ax, image, limit = _heatmap(plt, matrix, rows, columns, upright=False)
    for (i, j), value in np.ndenumerate(matrix):  # white on the darkest cells
        colour = "white" if abs(value) > 0.6 * limit else "black"
        ax.text(j, i, f"{value:+.2f}", ha="center", va="center", fontsize=8, color=colour)
    grouping = GROUPING_WORDS.get(result.by, result.by)
    ax.set_xlabel(f"groups of past events, by {grouping}")
    ax.set_title(
        f"{who}: Shapley value of each {grouping} on each recommendation\n"
        f"measure {result.measure}; red pushes the item up",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label=f"Shapley value ({unit_words(result.measure)})")
    return fig
