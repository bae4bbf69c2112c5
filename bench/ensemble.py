"""Full-ranking accuracy of several trained runs on the same data, alone and as an ensemble.

    python bench/ensemble.py bench/out/run-beauty-ms-keep bench/out/run-beauty-ms-seed1 \
        bench/out/run-beauty-ms-seed2

The ensemble ranks items by the mean of the runs' log-softmax scores. Every run must have been
trained on the same prepared dataset and split (checked: item and event counts, split sizes).
Prints validation and test HR/NDCG@10 with and without seen items masked.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from influrec.data.dataset import EventDataset
from influrec.data.sequences import SequenceData
from influrec.data.splits import make_split
from influrec.evaluation.protocol import ScoreFn, evaluate_targets, model_score_fn
from influrec.run import load_model

HEADER = "| runs | split | HR@10 masked | NDCG@10 masked | HR@10 not masked | NDCG@10 not masked |"


def mean_log_softmax(fns: list[ScoreFn]) -> ScoreFn:
    def score(targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        total = sum(torch.log_softmax(fn(targets)[0], dim=-1) for fn in fns)
        return total / len(fns), None

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    fns, split, data, shape = [], None, None, None
    for run in args.runs:
        model, info = load_model(run)
        data = SequenceData.from_dataset(EventDataset.load(run / "data"))
        split = make_split(data, info.config.data)
        run_shape = (data.n_items, len(data.item), len(split.valid), len(split.test))
        if shape is not None and run_shape != shape:
            raise SystemExit(f"{run}: not the same data as {args.runs[0]}: {run_shape} != {shape}")
        shape = run_shape
        fns.append(model_score_fn(model.eval(), data, device=torch.device("cpu")))
    assert split is not None and data is not None
    rows = [(run.name, [fn]) for run, fn in zip(args.runs, fns, strict=True)]
    rows.append((f"ensemble of {len(fns)}", fns))
    print(HEADER)
    print("|---|---|---:|---:|---:|---:|")
    for name, members in rows:
        fn = members[0] if len(members) == 1 else mean_log_softmax(members)
        for split_name, targets in (("valid", split.valid), ("test", split.test)):
            r = evaluate_targets(fn, data, targets, ks=(10,))
            m, u = r.metrics.masked, r.metrics.unmasked
            print(
                f"| {name} | {split_name} | {m['HR@10']:.4f} | {m['NDCG@10']:.4f} "
                f"| {u['HR@10']:.4f} | {u['NDCG@10']:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
