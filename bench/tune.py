"""A configuration search from a plain space against the committed hand-tuned config.

    python bench/tune.py ml-100k --minutes 60 --seeds 3      # what the comparison asks for
    python bench/tune.py ml-100k --minutes 10 --seeds 1 --hand-minutes 5   # a short version

Both sides train on the same prepared dataset (bench/train.py's preparation: 5-core,
leave-one-out) with full ranking over all items, seen items not masked. The search
(``influrec tune``'s library: Optuna TPE, median pruner) starts from the library's default
config with only the dataset's history length and cut-offs set, over bench/spaces/plain.toml,
and scores trials on VALIDATION NDCG@10. Its best configuration is then trained with each seed
(seed 0 is the best trial's own run) and, like the hand-tuned config
(bench/configs/DATASET.toml), evaluated on the test targets once, at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

from influrec.config import ExperimentConfig, load_config
from influrec.data.dataset import EventDataset
from influrec.evaluation.runs import evaluate_run
from influrec.training.loop import train
from influrec.tuning.space import SearchSpace
from influrec.tuning.study import SCORE, TuneSettings, tune
from influrec.tuning.summary import summarize
from train import OUT, ROOT, machine_line, prepared

SPACE = ROOT / "bench" / "spaces" / "plain.toml"
# the plain start: defaults, plus what the data dictates (history length, cut-offs) and a
# per-trial cap so that one trial cannot take the whole budget
PLAIN = [
    "model.max_len=50",
    "train.epochs=100",
    "train.patience=5",
    "train.max_minutes=4",
    "eval.ks=[1,5,10,20,50,200]",
]


def with_seed(config: ExperimentConfig, seed: int, minutes: float | None) -> ExperimentConfig:
    changes: dict[str, object] = {"seed": seed}
    if minutes:
        changes["max_minutes"] = minutes
    return config.replace(train=config.train.replace(**changes))


def measure(run: Path, dataset: EventDataset, config: ExperimentConfig | None) -> dict[str, float]:
    """Train ``config`` into ``run`` (None: the run exists), then its valid and test NDCG@10."""
    started = time.perf_counter()
    if config is not None:
        shutil.rmtree(run, ignore_errors=True)
        train(dataset, config, run, progress=False)
    valid = evaluate_run(run, split="valid").model.unmasked[SCORE]
    test = evaluate_run(run, split="test").model.unmasked[SCORE]
    return {"valid": valid, "test": test, "seconds": time.perf_counter() - started}


def row(name: str, results: list[dict[str, float]]) -> str:
    def spread(key: str) -> str:
        values = [r[key] for r in results]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {sd:.4f}"

    return f"{name:24} {len(results):>5}  {spread('valid'):>17}  {spread('test'):>17}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", choices=["ml-100k", "beauty"])
    parser.add_argument("--minutes", type=float, default=60.0, help="the search's budget")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--hand-minutes", type=float, default=None, help="cap on each hand-tuned run"
    )
    parser.add_argument("--trials", type=int, default=10_000)
    args = parser.parse_args()
    print(f"machine: {machine_line()} (shared and loaded: timings are indicative only)")
    print(f"command: python bench/tune.py {' '.join(sys.argv[1:])}")
    dataset = prepared(args.dataset)
    out = OUT / f"tune-{args.dataset}"
    shutil.rmtree(out, ignore_errors=True)
    seeds = range(args.seeds)

    hand_path = ROOT / "bench" / "configs" / f"{args.dataset}.toml"
    hand = load_config(hand_path)
    hand_results = [
        measure(out / f"hand-seed{s}", dataset, with_seed(hand, s, args.hand_minutes))
        for s in seeds
    ]
    print(f"hand-tuned {hand_path.name}: {hand_results}", flush=True)

    base = load_config(None, PLAIN)
    space = SearchSpace.load(SPACE, base)
    started = time.perf_counter()
    settings = TuneSettings(trials=args.trials, minutes=args.minutes, pruner="median", seed=0)
    study = tune(dataset, space, base, out=out / "study", settings=settings)
    summary = summarize(study, out / "study")
    search_minutes = (time.perf_counter() - started) / 60
    assert summary.best is not None, "no trial completed"
    best_trial = max((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    best = load_config(out / "study" / "best.toml")
    found = [measure(Path(best_trial.user_attrs["run_dir"]), dataset, None)]
    found += [
        measure(out / f"found-seed{s}", dataset, with_seed(best, s, None)) for s in seeds if s > 0
    ]

    print(
        f"\nsearch: {len(summary.rows)} trials in {search_minutes:.1f} min, {summary.pruned} pruned, "
        f"{sum(r.state == 'FAIL' for r in summary.rows)} failed; best trial {summary.best.number} "
        f"(validation {SCORE} {summary.best.value:.4f}); space {SPACE.relative_to(ROOT)}"
    )
    print(f"best params: {summary.best.params}")
    print(f"\n{args.dataset}, leave-one-out, full ranking over all items, seen items not masked")
    print(f"{'config':24} {'seeds':>5}  {'valid ' + SCORE:>17}  {'test ' + SCORE:>17}")
    print(row(f"hand-tuned ({hand_path.name})", hand_results))
    print(row("found by the search", found))
    print(f"files: {out / 'study'} (trials.csv, best.toml, history.png, importances.png)")


if __name__ == "__main__":
    main()
