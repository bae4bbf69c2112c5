"""Training-data influence benchmarks (issue #6): noise detection, cleaning, speed, ground truth.

    python bench/data_influence.py noise beauty     # inject 10% random interactions, flag them
                                                    # with TracIn, retrain clean/noisy/denoised
                                                    # (--train-seeds 0,1,2: each with 3 seeds)
    python bench/data_influence.py real beauty      # no injected noise: does removing the most
                                                    # harmful 2% help validation and test?
    python bench/data_influence.py speed ml-1m      # time TracIn scores of every interaction
    python bench/data_influence.py groundtruth      # synthetic: remove 20 groups, retrain, and
                                                    # correlate predicted/actual validation loss
    python bench/data_influence.py agreement ml-1m  # TracIn vs influence function, 5 users

Runs go to bench/out/di/<name>-<variant>; a finished run with the same config is reused, so an
interrupted experiment continues where it stopped. Results are printed and written as JSON
next to the runs. Datasets come from ../shared/datasets (see bench/train.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from influrec import run as run_folder
from influrec.config import ExperimentConfig, load_config
from influrec.data.dataset import EventDataset
from influrec.data.synthesize import synthesize_dataset
from influrec.data.synthetic import SynthConfig
from influrec.data_influence import DataInfluence, TracInScores, spearman
from influrec.data_influence.cleaning import (
    SCORES,
    remove_events,
    signal,
    worst,
)
from influrec.evaluation.runs import evaluate_run
from influrec.training.loop import train
from noise import flag_quality, inject_noise, training_targets
from train import OUT, ROOT, machine_line, prepared

DI = OUT / "di"
EPOCHS = {"beauty": 20, "ml-1m": 14, "ml-100k": 30, "sports": 20, "yelp": 20}


def experiment_config(name: str, overrides: list[str], epochs: int) -> ExperimentConfig:
    """The dataset's committed config, run for a fixed number of epochs (no time cap, so a busy
    machine changes the duration, never the result) with a checkpoint kept every 2 epochs."""
    base = [
        f"train.epochs={epochs}",
        f"train.patience={epochs}",
        "train.max_minutes=0",
        "train.keep_every=2",
        "train.threads=2",
    ]
    return load_config(ROOT / "bench" / "configs" / f"{name}.toml", [*base, *overrides])


def run_prefix(args: argparse.Namespace) -> Path:
    """bench/out/di/<dataset>, or <dataset>-e<N> for a non-default epoch budget."""
    custom = args.epochs and args.epochs != EPOCHS[args.dataset]
    return DI / (f"{args.dataset}-e{args.epochs}" if custom else args.dataset)


def trained(dataset: EventDataset, config: ExperimentConfig, run_dir: Path) -> Path:
    """Train into ``run_dir`` unless a finished run with this config is already there."""
    if (run_dir / run_folder.RUN_FILE).exists():
        info = run_folder.read_run_info(run_dir)
        same_config = info.config == config
        same_data = EventDataset.load(run_dir / "data").events.equals(dataset.events)
        if info.finished and same_config and same_data:
            print(f"  reusing {run_dir}")
            return run_dir
        raise SystemExit(f"{run_dir} exists with other data, another config or unfinished")
    started = time.perf_counter()
    train(dataset, config, run_dir, progress=False)
    print(f"  trained {run_dir.name} in {time.perf_counter() - started:.0f} s")
    return run_dir


def tracin_scores(run_dir: Path) -> tuple[TracInScores, float]:
    """TracIn (self, validation, loss) of a run, cached in the run folder; and its seconds."""
    cache = run_dir / "tracin-scores.npz"
    saved = np.load(cache, allow_pickle=False) if cache.exists() else None
    if saved is not None and "context" in saved:  # caches from before ``context`` are redone
        scores = TracInScores(
            saved["events"],
            saved["self_influence"],
            saved["validation"],
            np.zeros((len(saved["events"]), 0)),
            saved["loss"],
            saved["context"],
            json.loads(str(saved["checkpoints"])),
            float(saved["seconds"]),
        )
        print(f"  reusing TracIn scores of {run_dir.name} ({scores.seconds:.0f} s when computed)")
        return scores, scores.seconds
    scores = DataInfluence(run_dir).tracin(validation=True)
    np.savez(
        cache,
        events=scores.events,
        self_influence=scores.self_influence,
        validation=scores.validation,
        loss=scores.loss,
        context=scores.context,
        checkpoints=json.dumps(scores.checkpoints),
        seconds=scores.seconds,
    )
    return scores, scores.seconds


def test_metrics(run_dir: Path) -> dict[str, float]:
    out = {}
    for split in ("valid", "test"):
        result = evaluate_run(run_dir, split=split, ks=[10])
        for convention, values in (
            ("unmasked", result.model.unmasked),
            ("masked", result.model.masked),
        ):
            for metric in ("NDCG@10", "HR@10"):
                out[f"{split} {metric} {convention}"] = float(values[metric])
    return out


def print_table(rows: dict[str, dict[str, float]]) -> None:
    columns = list(next(iter(rows.values())))
    print(f"{'':>10} " + " ".join(f"{c:>24}" for c in columns))
    for name, row in rows.items():
        print(f"{name:>10} " + " ".join(f"{row[c]:>24.4f}" for c in columns))


def noise(args: argparse.Namespace) -> dict[str, Any]:
    """Clean, noisy and denoised training, each retrained with every seed of ``--train-seeds``.

    The flags come from the seed-0 noisy model (what a user would run once); the training seeds
    then measure how much of the test gap is the data and how much the seed."""
    config = experiment_config(args.dataset, args.set, args.epochs or EPOCHS[args.dataset])
    seeds = [int(s) for s in args.train_seeds.split(",")]
    clean_data = prepared(args.dataset)
    prefix = run_prefix(args)
    noisy_data = inject_noise(clean_data, config, fraction=args.fraction, seed=args.seed)
    injected = int(noisy_data.injected.sum())
    print(f"  injected {injected:,} random interactions ({args.fraction:.0%} of training targets)")
    noisy = trained(noisy_data.dataset, config, Path(f"{prefix}-noisy"))
    scores, seconds = tracin_scores(noisy)
    rate = injected / len(scores.events)
    flags = {}
    signals = {by: signal(scores, by) for by in SCORES}
    for by, values in signals.items():
        flagged = worst(scores.events, values, fraction=rate, by=by)
        flags[by] = flag_quality(flagged, noisy_data.injected)
    share = args.remove_share or rate
    flagged = worst(scores.events, signals[args.by], fraction=share, by=args.by)
    denoised_data = remove_events(
        noisy_data.dataset, flagged, note={"edit": "denoise", "by": args.by, "fraction": share}
    )
    label = f"{prefix}-denoised-{args.by}" + (f"-{share:.3f}" if args.remove_share else "")
    conditions = {
        "clean": (clean_data, f"{prefix}-clean"),
        "noisy": (noisy_data.dataset, f"{prefix}-noisy"),
        "denoised": (denoised_data, label),
    }
    per_seed: dict[str, dict[int, dict[str, float]]] = {name: {} for name in conditions}
    for seed in seeds:
        config_seed = config.replace(train=config.train.replace(seed=seed))
        for name, (data, folder) in conditions.items():
            run_dir = Path(folder if seed == 0 else f"{folder}-trainseed{seed}")
            per_seed[name][seed] = test_metrics(trained(data, config_seed, run_dir))
    metrics = {
        name: {key: float(np.mean([m[key] for m in runs.values()])) for key in runs[seeds[0]]}
        for name, runs in per_seed.items()
    }
    recovered = {}
    for convention in ("unmasked", "masked"):
        key = f"test NDCG@10 {convention}"
        gap = metrics["clean"][key] - metrics["noisy"][key]
        gained = metrics["denoised"][key] - metrics["noisy"][key]
        recovered[convention] = gained / gap if gap > 0 else float("nan")
    print(
        f"\nflagging the {injected:,} injected among {len(scores.events):,} training interactions"
        f" (TracIn over {len(scores.checkpoints)} checkpoints, {seconds:.0f} s):"
    )
    for by, quality in flags.items():
        print(f"  {by:>22}: precision {quality['precision']:.3f} recall {quality['recall']:.3f}")
    print(f"\ndenoised = noisy minus the top {share:.1%} by {args.by}; training seeds {seeds}")
    if len(seeds) > 1:
        key = "test NDCG@10 unmasked"
        print(f"per seed, {key}:")
        for name, runs in per_seed.items():
            values = [runs[seed][key] for seed in seeds]
            spread = f"mean {np.mean(values):.4f} sd {np.std(values, ddof=1):.4f}"
            print(f"  {name:>10} " + " ".join(f"{v:.4f}" for v in values) + f"  ({spread})")
        print("mean over the seeds:")
    print_table(metrics)
    for convention, gained_share in recovered.items():
        print(f"gap recovered (test NDCG@10 {convention}): {gained_share:.2f} (target >= 0.5)")
    return {
        "dataset": args.dataset,
        "config": config.to_dict(),
        "train_seeds": seeds,
        "injected": injected,
        "training_interactions": len(scores.events),
        "tracin_seconds": seconds,
        "checkpoints": scores.checkpoints,
        "flags": flags,
        "metrics": metrics,
        "metrics_per_seed": per_seed,
        "gap_recovered": recovered,
    }


def real(args: argparse.Namespace) -> dict[str, Any]:
    config = experiment_config(args.dataset, args.set, args.epochs or EPOCHS[args.dataset])
    data = prepared(args.dataset)
    prefix = run_prefix(args)
    clean = trained(data, config, Path(f"{prefix}-clean"))
    scores, _ = tracin_scores(clean)
    removed = worst(scores.events, scores.validation, fraction=args.remove, by="harm")
    cleaned = remove_events(data, removed, note={"edit": "denoise", "by": "harm"})
    label = f"{prefix}-minus-harm-{round(args.remove * 1000):03d}"
    cleaned_run = trained(cleaned, config, Path(label))
    metrics = {"clean": test_metrics(clean), f"-{args.remove:.0%} harm": test_metrics(cleaned_run)}
    print(f"\nremoving the {len(removed):,} most harmful of {len(scores.events):,} interactions:")
    print_table(metrics)
    return {"dataset": args.dataset, "remove": args.remove, "metrics": metrics}


def speed(args: argparse.Namespace) -> dict[str, Any]:
    run = Path(args.run) if args.run else OUT / f"run-{args.dataset}"
    started = time.perf_counter()
    analysis = DataInfluence(run, checkpoints=args.checkpoints)
    load = time.perf_counter() - started
    scores = analysis.tracin(validation=True, queries=[(1, 1)])
    n = len(scores.events)
    print(f"{run}: {n:,} training interactions, {len(scores.checkpoints)} checkpoints")
    print(
        f"  load {load:.1f} s, TracIn (self + validation + 1 query) {scores.seconds:.1f} s,"
        f" {scores.seconds / len(scores.checkpoints):.1f} s per checkpoint"
    )
    return {
        "run": str(run),
        "interactions": n,
        "checkpoints": len(scores.checkpoints),
        "seconds": scores.seconds,
        "load_seconds": load,
    }


def groundtruth(args: argparse.Namespace) -> dict[str, Any]:
    dataset = synthesize_dataset(
        SynthConfig(n_users=args.users, n_items=args.items, seed=args.seed)
    )
    overrides = [
        "model.d_model=32",
        "model.layers=1",
        "model.max_len=30",
        "model.dropout=0.1",
        "model.attn_dropout=0.1",
        f"train.epochs={args.epochs or 6}",
        "train.batch_size=64",
        "train.warmup_steps=20",
        "train.keep_every=1",
        f"train.patience={args.epochs or 6}",
        "train.threads=2",
        "eval.ks=[10]",
    ]
    config = load_config(None, overrides)
    full = trained(dataset, config, DI / "synth-full")
    analysis = DataInfluence(full)
    final = run_folder.list_checkpoints(full)[-1] / run_folder.MODEL_FILE
    analysis.load_weights(final)
    base_loss = analysis.validation_direction()[1]
    scores = analysis.tracin(validation=True)
    if_scores, infos = analysis.influence_function(validation=True, weights=final)
    targets = training_targets(dataset, config)
    assert np.array_equal(targets, scores.events)
    rng = np.random.default_rng(args.seed)
    size = round(args.group * len(targets))
    groups, kinds = [], []
    for _ in range(args.groups // 2):
        groups.append(np.sort(rng.choice(len(targets), size, replace=False)))
        kinds.append("random")
    order = np.argsort(scores.validation, kind="stable")
    quantiles = np.linspace(0, len(order) - size, args.groups - len(groups)).astype(int)
    for q in quantiles:
        groups.append(np.sort(order[q : q + size]))
        kinds.append("ranked")
    rows = []
    for g, (rows_of_group, kind) in enumerate(zip(groups, kinds, strict=True)):
        events = targets[rows_of_group]
        reduced = remove_events(dataset, events, note={"edit": "group", "group": g})
        run = trained(reduced, config, DI / f"synth-minus-{g:02d}")
        check = DataInfluence(run)
        check.load_weights(run_folder.list_checkpoints(run)[-1] / run_folder.MODEL_FILE)
        actual = check.validation_direction()[1] - base_loss
        rows.append(
            {
                "group": g,
                "kind": kind,
                "size": len(events),
                "actual": actual,
                "tracin": float(scores.validation[rows_of_group].sum()),
                "influence_function": float(if_scores[rows_of_group, -1].sum()) / len(targets),
            }
        )
        print(
            f"  group {g:2d} {kind:>6}: actual {actual:+.5f} TracIn {rows[-1]['tracin']:+.5f}"
            f" IF {rows[-1]['influence_function']:+.5f}"
        )
    summary = {}
    for label, subset in (("all", rows), ("random", [r for r in rows if r["kind"] == "random"])):
        actual = np.array([r["actual"] for r in subset])
        for method in ("tracin", "influence_function"):
            predicted = np.array([r[method] for r in subset])
            summary[f"{label} {method}"] = {
                "pearson": float(np.corrcoef(predicted, actual)[0, 1]),
                "spearman": spearman(predicted, actual),
            }
    print("\ncorrelation of predicted and actual change in validation loss:")
    for label, value in summary.items():
        print(f"  {label:>26}: pearson {value['pearson']:+.3f} spearman {value['spearman']:+.3f}")
    agreement = spearman(scores.validation, if_scores[:, -1])
    print(f"TracIn vs influence function over all interactions: spearman {agreement:.3f}")
    return {
        "groups": rows,
        "summary": summary,
        "tracin_if_spearman": agreement,
        "if_solve": [vars(i) for i in infos],
        "config": config.to_dict(),
    }


def agreement(args: argparse.Namespace) -> dict[str, Any]:
    """TracIn against the influence function on recommendations of a few users."""
    run = Path(args.run) if args.run else DI / f"{args.dataset}-clean"
    analysis = DataInfluence(run)
    rng = np.random.default_rng(args.seed)
    users = rng.choice(np.arange(1, analysis.dataset.n_users + 1), args.queries, replace=False)
    analysis.load_weights(run / run_folder.MODEL_FILE)
    top = analysis.query_activations([(int(u), 1) for u in users]).hidden
    items = (top @ analysis.model.item_table().detach().T)[:, 1:].argmax(1) + 1
    queries = [(int(u), int(i)) for u, i in zip(users, items, strict=True)]
    started = time.perf_counter()
    tracin = analysis.tracin(queries=queries, validation=False).queries
    tracin_seconds = time.perf_counter() - started
    started = time.perf_counter()
    influence, infos = analysis.influence_function(queries, damping=args.damping)
    if_seconds = time.perf_counter() - started
    rows = []
    for q, (user, item) in enumerate(queries):
        a, b = tracin[:, q], influence[:, q]
        top_a = set(np.argsort(-a)[:100].tolist())
        top_b = set(np.argsort(-b)[:100].tolist())
        rows.append(
            {
                "user": user,
                "item": item,
                "spearman": spearman(a, b),
                "top100_overlap": len(top_a & top_b) / 100,
                "cg": vars(infos[q]),
            }
        )
        print(
            f"  user {user:6d} item {item:6d}: spearman {rows[-1]['spearman']:+.3f}, "
            f"top-100 supporters shared {rows[-1]['top100_overlap']:.2f}, "
            f"CG {infos[q].iterations} it, residual {infos[q].relative_residual:.1e}"
        )
    print(
        f"TracIn {tracin_seconds:.0f} s, influence function {if_seconds:.0f} s "
        f"(damping {args.damping}) for {len(queries)} recommendations"
    )
    return {
        "run": str(run),
        "queries": rows,
        "damping": args.damping,
        "tracin_seconds": tracin_seconds,
        "if_seconds": if_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "experiment", choices=["noise", "real", "speed", "groundtruth", "agreement"]
    )
    parser.add_argument("dataset", nargs="?", default="beauty", choices=list(EPOCHS))
    parser.add_argument("--epochs", type=int, default=0, help="0: the dataset's default")
    parser.add_argument("--set", action="append", default=[], help="config override")
    parser.add_argument("--fraction", type=float, default=0.1, help="noise: injected share")
    parser.add_argument("--by", choices=SCORES, default="loss")
    parser.add_argument(
        "--remove-share", type=float, default=0.0, help="noise: share removed (0: injected rate)"
    )
    parser.add_argument("--remove", type=float, default=0.02, help="real: share removed")
    parser.add_argument("--run", default="", help="speed: run folder")
    parser.add_argument("--checkpoints", type=int, default=0, help="speed: at most N")
    parser.add_argument("--seed", type=int, default=0, help="noise / sampling seed")
    parser.add_argument(
        "--train-seeds", default="0", help="noise: training seeds per condition, e.g. 0,1,2"
    )
    parser.add_argument("--queries", type=int, default=5, help="agreement: users explained")
    parser.add_argument("--damping", type=float, default=0.01, help="agreement: IF damping")
    parser.add_argument("--users", type=int, default=600, help="groundtruth: synthetic users")
    parser.add_argument("--items", type=int, default=300, help="groundtruth: synthetic items")
    parser.add_argument("--groups", type=int, default=20, help="groundtruth: groups removed")
    parser.add_argument("--group", type=float, default=0.02, help="groundtruth: group share")
    args = parser.parse_args()
    print(f"machine: {machine_line()}")
    print(f"command: python bench/data_influence.py {' '.join(sys.argv[1:])}")
    DI.mkdir(parents=True, exist_ok=True)
    experiments = {"noise": noise, "real": real, "speed": speed, "groundtruth": groundtruth}
    result = {**experiments, "agreement": agreement}[args.experiment](args)
    name = f"{args.experiment}-{run_prefix(args).name if args.experiment != 'groundtruth' else 'synth'}"
    if args.experiment == "noise":
        name += f"-{args.by}" + (f"-{args.remove_share:.3f}" if args.remove_share else "")
        if args.train_seeds != "0":
            name += "-seeds" + args.train_seeds.replace(",", "")
    (DI / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
