"""The report's checks: how faithful the explanations are to the model (deletion and
insertion curves against a random ranking), and the training interactions that hurt the
model most (TracIn over the run's checkpoints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from influrec.data.item_names import ItemNames
from influrec.data.times import readable_time
from influrec.data_influence import DataInfluence
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence.api import faithfulness_curves
from influrec.report.html import Section, cell, paragraph, table
from influrec.report.svg import Series, line_chart
from influrec.run import saved_checkpoints

FAITHFULNESS_METHODS = ("loo", "random")
"""Exact leave-one-out and the random ranking it is judged against."""
HARMFUL = 10  # training interactions listed


def faithfulness_section(rec: Recommender, *, users: int, seed: int) -> Section:
    """Mean deletion and insertion curves of each method over a seeded sample of users."""
    found = faithfulness_curves(rec, FAITHFULNESS_METHODS, users=users, seed=seed)
    shares = [100 * s for s in found.shares]
    charts = [
        line_chart(
            [Series(m, shares, curve, dashed=m == "random") for m, curve in curves.items()],
            title=f"{name}: p(top item) as events are {verb}",
            x_label=f"% of the model's window {verb}",
            y_label="mean p(top item)",
        )
        for name, verb, curves in (
            ("deletion", "deleted", found.deletion),
            ("insertion", "inserted", found.insertion),
        )
    ]
    rows = [
        [m, float(np.mean(found.deletion[m])), float(np.mean(found.insertion[m]))]
        for m in FAITHFULNESS_METHODS
    ]
    header = ["method", "DEL-AUC (lower: more faithful)", "INS-AUC (higher: more faithful)"]
    what = (
        f"Are the explanations faithful to the model? For {found.users} users (drawn at "
        f"random, seeded {found.seed}) the explained item is {found.explained}. Each method "
        "orders the events the model sees, most supportive first; deleting them in that order "
        "should make the item's probability p (softmax over all items, 0 to 1) fall fast "
        "(deletion), and keeping only them should bring it back fast (insertion). "
        "loo: exact leave-one-out, the effects shown in this report; random: a random order, "
        "the bar a method must clear. AUC: the mean of a curve."
    )
    body = table(header, rows) + f'<div class="charts">{"".join(charts)}</div>'
    return Section("faithfulness", "Faithfulness of the explanations", what, body)


def harmful_section(run_dir: Path, *, checkpoints: int = 1, enabled: bool = True) -> Section:
    """The training interactions whose TracIn influence on the validation loss is most
    negative (training on them raised it) over at most ``checkpoints`` of the run's saved
    checkpoints (0: all; the last is always used), or why the section was skipped."""
    title = "Training data: the most harmful interactions"
    what = (
        "Which logged training interactions hurt the model most: TracIn sums, over the run's "
        "saved checkpoints, the learning rate times the gradient dot product of each training "
        "interaction with the mean validation loss (last layer). Negative: training on it "
        "raised the validation loss. The value is in nats of validation loss per unit of "
        "gradient step; compare values with each other, not with a threshold."
    )
    if not enabled:
        return Section("harmful", title, what, skipped="not asked for (training data turned off)")
    saved = saved_checkpoints(run_dir)
    if not saved:
        reason = (
            "the run kept no checkpoints, which TracIn reads (train with "
            "train.keep_checkpoints of 1 or more)"
        )
        return Section("harmful", title, what, skipped=reason)
    try:
        analysis = DataInfluence(run_dir, checkpoints=checkpoints)
        scores = analysis.tracin(validation=True)
    except InputError as exc:
        return Section("harmful", title, what, skipped=str(exc))
    order = np.argsort(scores.validation, kind="stable")[:HARMFUL]
    names = ItemNames.from_items(analysis.dataset.items)
    rows = [
        [
            str(entry["user"]),
            entry["position"],
            cell(names.label(entry["item"]), title=f"item id {entry['item']}"),
            entry["behavior"],
            readable_time(entry["timestamp"]),
            float(scores.validation[row]),
        ]
        for entry, row in zip(analysis.describe(scores.events[order]), order, strict=True)
    ]
    used = ", ".join(str(c["epoch"]) for c in scores.checkpoints)
    kept = ", ".join(str(c.epoch) for c in saved)
    summary = paragraph(
        f"{len(scores.events):,} training interactions scored over the checkpoint(s) of epoch "
        f"{used} (saved: {kept}) in {scores.seconds:.1f} s; the {len(rows)} most harmful:"
    )
    header = ["user", "position in the user's events", "item", "behaviour", "time (UTC)"]
    header.append("TracIn on the validation loss")
    return Section("harmful", title, what, summary + table(header, rows))
