"""The report's overview sections: the data, the training curves, accuracy against the
baselines and how much each behaviour type drives the recommendations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from influrec.data.times import readable_time
from influrec.evaluation.runs import RunEvaluation, evaluate_run
from influrec.inference import Recommender
from influrec.influence.api import explain_groups
from influrec.influence.groups import MAX_GROUPS
from influrec.progress import steps
from influrec.report.html import Section, paragraph, table
from influrec.report.svg import Series, bar_chart, line_chart

BASELINES = ("popularity", "markov", "itemknn")
"""The baselines the model is compared with (each fitted on the run's training events)."""
SHARE_K = 10  # top items whose behaviour-type effects are summed per user


def data_section(rec: Recommender) -> Section:
    """Events, users, items, behaviour types and the time range of the run's dataset."""
    stats = rec.dataset.stats
    counts: dict[str, int] = stats.get("behaviors", {})
    total = sum(counts.values()) or 1
    rows: list[list[object]] = [
        ["events", rec.dataset.events.num_rows],
        ["users", rec.n_users],
        ["items", rec.n_items],
        ["behaviour types", ", ".join(counts) or "none"],
    ]
    span = stats.get("time_range", {})
    if stats.get("time_kind") == "timestamp" and span.get("min") is not None:
        rows.append(["first event (UTC)", readable_time(span["min"])])
        rows.append(["last event (UTC)", readable_time(span["max"])])
    per_user = stats.get("events_per_user", {})
    if per_user:
        rows.append(
            [
                "events per user",
                f"{per_user['min']} to {per_user['max']}, median {per_user['median']:g}",
            ]
        )
    split = rec.info.split
    if split:
        rows.append(["split", _split_words(split)])
    body = table(["", "value"], rows)
    body += table(
        ["behaviour", "events", "share of events"],
        [[b, n, f"{n / total:.1%}"] for b, n in counts.items()],
    )
    return Section(
        "data",
        "The data",
        "What the model was trained on: the prepared dataset copied into the run folder "
        "(counts of events, users and items; times in UTC).",
        body,
    )


def _split_words(split: dict[str, Any]) -> str:
    kind = str(split.get("kind", "")).replace("_", "-")
    counts = ", ".join(f"{split[p]:,} {p}" for p in ("train", "valid", "test") if p in split)
    return f"{kind} ({counts} targets)" if counts else kind


def training_section(run_dir: Path, rec: Recommender) -> Section:
    """Training loss and validation metric per epoch, from the run's metrics.jsonl."""
    info = rec.info
    monitor = info.config.train.monitor
    what = (
        "How training went, epoch by epoch (from metrics.jsonl): the mean training loss "
        f"(cross-entropy in nats per predicted event) and the validation {monitor} the run "
        "early-stopped on (full ranking over all items, between 0 and 1)."
    )
    records = read_metrics(run_dir / "metrics.jsonl")
    if not records:
        return Section("training", "Training", what, skipped="the run has no metrics.jsonl")
    epochs = [float(r["epoch"]) for r in records]
    loss = line_chart(
        [Series("training loss", epochs, [float(r.get("loss", np.nan)) for r in records])],
        title="training loss per epoch",
        x_label="epoch",
        y_label="loss (nats)",
    )
    valid = [float(r.get("valid", {}).get(monitor, np.nan)) for r in records]
    metric = line_chart(
        [Series(f"validation {monitor}", epochs, valid)],
        title=f"validation {monitor} per epoch",
        x_label="epoch",
        y_label=monitor,
    )
    best = info.best_valid or {}
    summary = (
        f"{info.config.model.architecture} model with {info.parameters or 0:,} parameters; "
        f"{info.epochs_run} epochs in {info.train_seconds:.0f} s on {info.device or 'cpu'}; "
        f"best epoch {info.best_epoch}"
        + "".join(f" ({k} {v:.4f} on validation)" for k, v in best.items())
        + "."
    )
    body = paragraph(summary) + f'<div class="charts">{loss}{metric}</div>'
    return Section("training", "Training", what, body)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The epoch records of a metrics.jsonl (lines that are not JSON objects are left out)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            records.append(record)
    return records


def accuracy_section(run_dir: Path) -> tuple[Section, RunEvaluation]:
    """The model against the baselines on the test split, both seen-item conventions."""
    found = evaluate_run(run_dir, split="test", baselines=BASELINES)
    k = 10 if any(key.endswith("@10") for key in found.model.unmasked) else None
    names = [m for m in found.model.unmasked if k is None or m.endswith(f"@{k}")]
    names = [m for m in names if not m.startswith("Recall")]  # equals HR with one target
    scorers = {"model": found.model, **found.baselines}
    rows = [
        [name, *(m.unmasked[n] for n in names), *(m.masked[n] for n in names)]
        for name, m in scorers.items()
    ]
    header = ["scorer", *(f"{n}, seen kept" for n in names), *(f"{n}, seen masked" for n in names)]
    ndcg = next((n for n in names if n.startswith("NDCG")), names[0])
    chart = bar_chart(
        list(scorers),
        {
            "seen items kept": [m.unmasked[ndcg] for m in scorers.values()],
            "seen items masked": [m.masked[ndcg] for m in scorers.values()],
        },
        title=f"test {ndcg} by scorer",
        y_label=ndcg,
    )
    what = (
        f"Next-event accuracy on the test split ({found.targets:,} targets, "
        f"{found.split_kind.replace('_', '-')}), {found.protocol}; metrics between 0 and 1, "
        "higher is better. 'Seen kept': items the user already interacted with compete; "
        "'seen masked': they are removed from the ranking (a target seen before then counts "
        f"as a miss; {found.targets_seen:.1%} of the targets were seen before). The baselines "
        "are fitted on the same training events."
    )
    return Section(
        "accuracy", "Accuracy against the baselines", what, table(header, rows) + chart
    ), found


def behaviour_shares(rec: Recommender, user_ids: Sequence[str]) -> Section:
    """How much each behaviour type drives the top items, over ``user_ids``."""
    names = rec.dataset.behaviors[1:]
    what = (
        f"How much each behaviour type drives the recommendations: for each of {len(user_ids)} "
        f"users (drawn at random, seeded) and each of their top {SHARE_K} items, the exact "
        "Shapley value of every behaviour type (all of the user's events of that type removed "
        "and restored together) on the item's rank margin, in rank-margin points. A type's "
        "share of influence is its summed absolute Shapley value over all of them; beside it, "
        "its share of the events the model saw."
    )
    if len(names) < 2 or len(names) > MAX_GROUPS:
        reason = (
            f"the data has one behaviour type ({names[0] if names else 'none'}): all the "
            "influence is its own"
            if len(names) < 2
            else f"more than {MAX_GROUPS} behaviour types: exact group Shapley values are "
            "limited to that many groups"
        )
        return Section(
            "behaviours", "What drives recommendations: behaviour types", what, skipped=reason
        )
    influence, signed, seen = _shares(rec, user_ids)
    total, total_seen = influence.sum() or 1.0, seen.sum() or 1.0
    chart = bar_chart(
        names,
        {
            "share of influence": (influence / total).tolist(),
            "share of events": (seen / total_seen).tolist(),
        },
        title="behaviour types: share of influence vs share of events",
        y_label="share (0 to 1)",
        value_format="{:.0%}",
    )
    per_event = signed / np.maximum(seen, 1)
    rows = [
        [b, f"{influence[i] / total:.1%}", f"{seen[i] / total_seen:.1%}", float(per_event[i])]
        for i, b in enumerate(names)
    ]
    header = ["behaviour", "share of influence", "share of events seen", "mean Shapley per event"]
    note = paragraph(
        "Mean Shapley per event: the type's summed (signed) Shapley value divided by its events "
        "the model saw, in rank-margin points per event and per top item.",
        "small",
    )
    return Section(
        "behaviours",
        "What drives recommendations: behaviour types",
        what,
        table(header, rows) + note + chart,
    )


def _shares(rec: Recommender, user_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per behaviour type (index 0 = the first real type): summed |Shapley|, summed Shapley
    (over users and top items) and events in the model's windows."""
    n = len(rec.dataset.behaviors) - 1
    influence, signed, seen = np.zeros(n), np.zeros(n), np.zeros(n)
    index = {b: i for i, b in enumerate(rec.dataset.behaviors[1:])}
    window = rec.model.config.max_len
    with steps(len(user_ids), "behaviour types") as bar:
        for user in user_ids:
            bar.advance()
            history = rec.user_history(user)
            if len(history) == 0:
                continue
            result = explain_groups(rec, history, by="behavior", k=SHARE_K)
            counts = np.bincount(history.behaviors[-window:] - 1, minlength=n)[:n]
            seen += counts * len(result.recommendations)
            for item in result.recommendations:
                for group in item.groups:
                    influence[index[group.group]] += abs(group.shapley)
                    signed[index[group.group]] += group.shapley
    return influence, signed, seen
