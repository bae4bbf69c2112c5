"""Unlearning: `influrec forget` (approximate) against training again without the users (exact).

    OMP_NUM_THREADS=1 python bench/unlearn.py ml-100k --fraction 0.01

From the prepared dataset, a seeded ``--fraction`` of users is set aside as never seen (no
model ever trains on them) and another as the users to forget. The original run trains on
everyone but the never-seen users; `forget` removes the chosen users from it (gradient ascent,
the default), and `forget --exact` trains again from scratch without them (same config, same
seed): the reference an unlearning method should come close to.

Reported, for the original, the unlearned and the retrained model:

* distance to the retrained model's scores: per user, the L2 distance between the two models'
  next-item log-probabilities (all items) after the user's training history (every event but
  the last two), averaged over the forgotten users and over a sample of other users; and the
  overlap of the two top-10 lists;
* membership inference by a loss threshold: the AUC of telling the forgotten users' training
  interactions (the original trained on them) from the never-seen users' by the model's loss
  on each (lower loss: member); 0.5 means indistinguishable. Per interaction, and per user (mean
  loss);
* test NDCG@10 (full ranking, seen items not masked) on the run's own users;
* wall time of the step against the retraining (the machine is shared: ratios only).

Prints a markdown table and writes results.json under --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from influrec.config import load_config
from influrec.data.batching import batch_windows
from influrec.data.dataset import EventDataset
from influrec.data.sequences import SequenceData, history_windows
from influrec.data.splits import make_split
from influrec.evaluation.runs import evaluate_run
from influrec.folders import remove_dir
from influrec.models.protocol import SequenceModel
from influrec.run import RUN_FOLDER, load_model
from influrec.training.loop import train
from influrec.unlearning.runs import dataset_without, forget
from train import ROOT, machine_line, prepared

BATCH = 512


@torch.no_grad()
def log_probs(model: SequenceModel, data: SequenceData, ends: np.ndarray) -> torch.Tensor:
    """(U, I) next-item log-probabilities after the events before each of ``ends``."""
    starts, ends = history_windows(data, ends, max_len=model.config.max_len)
    out = []
    for begin in range(0, len(ends), BATCH):
        s, e = starts[begin : begin + BATCH], ends[begin : begin + BATCH]
        batch = batch_windows(data, s, e, time_buckets=model.config.time_buckets)
        hidden = model.encode(batch.items, batch.behaviors, batch.gaps, batch.values)[:, -1]
        out.append(torch.log_softmax(model.item_scores(hidden)[:, 1:].float(), dim=-1))
    return torch.cat(out)


def target_losses(model: SequenceModel, data: SequenceData, targets: np.ndarray) -> np.ndarray:
    """Cross-entropy of each target event (position) from the events before it."""
    logp = log_probs(model, data, targets)
    wanted = torch.from_numpy(data.item[targets] - 1)
    return (-logp.gather(1, wanted[:, None])[:, 0]).numpy()


def auc(members: np.ndarray, others: np.ndarray) -> float:
    """P(a member's loss is below a non-member's): the loss-threshold attack's AUC."""
    below = (members[:, None] < others[None, :]).mean()
    ties = (members[:, None] == others[None, :]).mean()
    return float(below + 0.5 * ties)


def measure(
    model: SequenceModel,
    reference: SequenceModel,
    data: SequenceData,
    groups: dict[str, np.ndarray],
    train_targets: np.ndarray,
) -> dict[str, float]:
    """Distances to the reference model's scores and the membership-inference AUCs."""
    row: dict[str, float] = {}
    valid_end = data.user_end - 2  # each user's history before the validation event
    for name in ("forgotten", "others"):
        users = groups[name]
        mine, theirs = (log_probs(m, data, valid_end[users]) for m in (model, reference))
        row[f"l2_{name}"] = float((mine - theirs).norm(dim=1).mean())
        top_a, top_b = mine.topk(10).indices, theirs.topk(10).indices
        overlap = [
            len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(top_a, top_b, strict=True)
        ]
        row[f"top10_{name}"] = float(np.mean(overlap))
    losses = {}
    for name in ("forgotten", "never_seen"):
        targets = train_targets[np.isin(data.user[train_targets], groups[name])]
        values = target_losses(model, data, targets)
        owners = data.user[targets]
        losses[name] = (values, np.array([values[owners == u].mean() for u in groups[name]]))
    row["mia_auc"] = auc(losses["forgotten"][0], losses["never_seen"][0])
    row["mia_auc_users"] = auc(losses["forgotten"][1], losses["never_seen"][1])
    row["loss_forgotten"] = float(losses["forgotten"][0].mean())
    row["loss_never_seen"] = float(losses["never_seen"][0].mean())
    return row


def trained(dataset: EventDataset, config: Any, out: Path) -> float:
    if out.exists():
        remove_dir(out, RUN_FOLDER)
    started = time.perf_counter()
    train(dataset, config, out, progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", choices=["ml-100k", "ml-1m", "beauty"])
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--fraction", type=float, default=0.01, help="users forgotten")
    parser.add_argument("--others", type=int, default=200, help="other users measured")
    parser.add_argument("--steps", type=int, default=20, help="forget --steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "unlearn")
    args = parser.parse_args()
    config_path = args.config or ROOT / "bench" / "configs" / f"{args.dataset}.toml"
    config = load_config(config_path, args.set)
    print(f"machine: {machine_line()}")
    print(f"config: {config_path} {' '.join(args.set)}; fraction {args.fraction}, seed {args.seed}")
    full = prepared(args.dataset)
    data = SequenceData.from_dataset(full)
    rng = np.random.default_rng(args.seed)
    count = max(2, round(args.fraction * full.users.num_rows))
    chosen = rng.permutation(np.arange(1, full.users.num_rows + 1))
    forgotten, never_seen = np.sort(chosen[:count]), np.sort(chosen[count : 2 * count])
    others = np.sort(chosen[2 * count : 2 * count + args.others])
    ids = full.users.column("user_id").to_pylist()
    seen = dataset_without(full, never_seen, note={"edit": "never seen"})
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {name: args.out / name for name in ("original", "unlearned", "retrained")}
    seconds = {"train original": trained(seen, config, runs["original"])}
    users = [str(ids[u - 1]) for u in forgotten]
    for name, exact in (("unlearned", False), ("retrained", True)):
        started = time.perf_counter()
        forget(
            runs["original"], users, runs[name], overwrite=True, exact=exact,
            progress=False, **({} if exact else {"settings": _settings(args)}),
        )  # fmt: skip
        seconds[f"forget ({name})"] = time.perf_counter() - started
    split = make_split(data, config.data)
    groups = {"forgotten": forgotten, "never_seen": never_seen, "others": others}
    reference, _ = load_model(runs["retrained"])
    results: dict[str, Any] = {"machine": machine_line(), "users_forgotten": len(users)}
    results["seconds"] = seconds
    for name, folder in runs.items():
        model, _ = load_model(folder)
        row = measure(model, reference, data, groups, split.train)
        row["test_ndcg10"] = evaluate_run(folder, split="test", progress=False).model.unmasked[
            "NDCG@10"
        ]
        results[name] = row
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def _settings(args: argparse.Namespace) -> Any:
    from influrec.unlearning.ascent import AscentSettings

    return AscentSettings(steps=args.steps, seed=args.seed)


def print_table(results: dict[str, Any]) -> None:
    columns = [
        ("L2 to retrained, forgotten", "l2_forgotten", "{:.3f}"),
        ("L2 to retrained, others", "l2_others", "{:.3f}"),
        ("top-10 overlap, forgotten", "top10_forgotten", "{:.2f}"),
        ("top-10 overlap, others", "top10_others", "{:.2f}"),
        ("MIA AUC (interactions)", "mia_auc", "{:.3f}"),
        ("MIA AUC (users)", "mia_auc_users", "{:.3f}"),
        ("loss forgotten / never seen", None, ""),
        ("test NDCG@10", "test_ndcg10", "{:.4f}"),
    ]
    print("| model | " + " | ".join(c[0] for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name in ("original", "unlearned", "retrained"):
        row = results[name]
        cells = [
            f"{row['loss_forgotten']:.3f} / {row['loss_never_seen']:.3f}"
            if key is None
            else fmt.format(row[key])
            for _, key, fmt in columns
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    times = results["seconds"]
    print(
        "\nseconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in times.items())
        + f"; forget is {times['forget (retrained)'] / times['forget (unlearned)']:.0f}x faster"
        " than retraining"
    )


if __name__ == "__main__":
    main()
