"""``influrec train | evaluate | recommend``: thin adapters over the training and inference API."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from influrec.cli.batch import add_all_users, run_all_users
from influrec.cli.common import (
    add_k,
    add_no_progress,
    add_seen,
    cutoffs,
    forgotten_step,
    known_user_history,
    progress_of,
    read_history_file,
)
from influrec.cli.muting import add_mutes, any_mutes, muted_history, refuse_mutes_for_all_users
from influrec.config import load_config
from influrec.data.dataset import EventDataset
from influrec.data.history import History
from influrec.errors import DamagedRunError, InputError
from influrec.evaluation.compare import RunComparison, compare_runs
from influrec.evaluation.protocol import Metrics
from influrec.evaluation.runs import RunEvaluation, evaluate_run
from influrec.folders import FolderExistsError
from influrec.inference import Recommendation, Recommender
from influrec.influence.robust import RECENT, robust_recommend
from influrec.models.baselines import BASELINES
from influrec.run import RUN_REMEDY
from influrec.training.loop import train
from influrec.training.progress import stop_sentence
from influrec.training.ranks import Ranks
from influrec.training.resume import RESUMABLE_KEYS, check_run_dir


def register(commands: Any) -> None:
    t = commands.add_parser(
        "train", help="train a sequence model (transformer, gru, cnn or mlp) on a prepared dataset"
    )
    t.add_argument(
        "dataset", type=Path, help="prepared dataset folder (influrec data prepare/synth)"
    )
    t.add_argument(
        "--out", type=Path, required=True, help="run folder to create (missing or empty)"
    )
    t.add_argument(
        "--config", type=Path, default=None, help="TOML config ([model], [train], [data], [eval])"
    )
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. model.layers=4",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint, with its config.toml unless "
        f"--config is given; --set may change only {', '.join(RESUMABLE_KEYS)} "
        "(e.g. --set train.epochs=N with a larger N extends a finished run)",
    )
    add_no_progress(
        t,
        "show no progress (by default a bar inside each epoch on a terminal, and one line per "
        "epoch on stderr: epoch, loss, validation metrics, elapsed time, ETA)",
    )
    t.set_defaults(handler=run_train)
    _register_evaluate(commands)
    _register_recommend(commands)


def _register_recommend(commands: Any) -> None:
    r = commands.add_parser("recommend", help="top-K items for a user or an ad-hoc history")
    r.add_argument("run", type=Path)
    who = r.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user id of the training data")
    who.add_argument(
        "--history", type=Path, help='JSON list of events: [{"item": ..., "behavior": ...}, ...]'
    )
    add_all_users(who, r)
    add_k(r)
    add_seen(r)
    r.add_argument(
        "--cold-start",
        choices=["error", "popular"],
        default="error",
        help="unknown or forgotten user: error or popular items",
    )
    r.add_argument(
        "--robust",
        action="store_true",
        help="robust ranking: no single low-intent event among the last --recent can carry an "
        "item (each item ranked by its worst log-probability over their single deletions)",
    )
    r.add_argument(
        "--low-intent",
        metavar="BEHAVIOR",
        action="append",
        help="with --robust: a behaviour whose single events may not carry an item (repeat it; "
        "default: every behaviour)",
    )
    r.add_argument(
        "--recent",
        type=int,
        default=RECENT,
        help=f"with --robust: how many of the last events are considered (default {RECENT})",
    )
    r.add_argument("--json", action="store_true")
    add_mutes(r)
    r.set_defaults(handler=run_recommend)


def _register_evaluate(commands: Any) -> None:
    e = commands.add_parser("evaluate", help="full-ranking metrics of a trained run")
    e.add_argument("run", type=Path)
    e.add_argument("--split", choices=["test", "valid"], default="test")
    e.add_argument(
        "--baselines", default="", help=f"also evaluate baselines: {','.join(BASELINES)}"
    )
    e.add_argument(
        "--ks",
        type=cutoffs,
        default=None,
        help="cut-offs, e.g. 10,50,200 (default: the run's eval.ks)",
    )
    e.add_argument(
        "--compare",
        default="",
        metavar="RUN2,RUN3",
        help="also evaluate these runs (same prepared dataset and split) in the same table",
    )
    e.add_argument("--json", action="store_true")
    add_no_progress(e)
    e.set_defaults(handler=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    try:  # before any work: --out can take a new run, or has one to resume
        check_run_dir(args.out, resume=args.resume)
    except FolderExistsError as exc:
        hint = "pass --resume to continue it, or " if exc.replaceable else ""
        raise InputError(f"{exc}; {hint}choose another --out") from None
    config_file = args.config
    if args.resume and config_file is None:
        config_file = args.out / "config.toml"  # the run's own config, changed by --set
        if not config_file.is_file():
            raise DamagedRunError(config_file, "missing (the run's configuration)", RUN_REMEDY)
    config = load_config(config_file, args.set)
    dataset = EventDataset.load(args.dataset)
    ranks = Ranks.from_environment()  # several under torchrun: DistributedDataParallel
    fit = train
    if ranks.launched:
        from influrec.training.distributed import train_distributed as fit
    result = fit(dataset, config, args.out, resume=args.resume, progress=not args.no_progress)
    if not ranks.writes:
        return 0  # rank 0 reports
    table = Table(title=f"trained {args.out}", show_header=False, title_justify="left")
    table.add_row("epochs", str(result.epochs_run))
    table.add_row("best epoch", str(result.best_epoch))
    table.add_row(f"valid {config.train.monitor}", f"{result.best_metric:.4f}")
    table.add_row("training time", f"{result.seconds:.1f} s")
    table.add_row("stopped", stop_sentence(result.stopped, config.train))
    Console().print(table)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    baselines = [b for b in args.baselines.split(",") if b]
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise InputError(f"unknown baseline(s) {unknown}; choose from {', '.join(BASELINES)}")
    if args.compare:
        others = [Path(r) for r in args.compare.split(",") if r]
        comparison = compare_runs(
            [args.run, *others],
            split=args.split,
            baselines=baselines,
            ks=args.ks,
            progress=progress_of(args),
        )
        if args.json:
            Console().print_json(json.dumps(comparison.to_dict()))
        else:
            _print_comparison(comparison)
        return 0
    report = evaluate_run(
        args.run, split=args.split, baselines=baselines, ks=args.ks, progress=progress_of(args)
    )
    if args.json:
        Console().print_json(json.dumps(report.to_dict()))
        return 0
    _print_report(report)
    return 0


def report_columns(metrics: dict[str, float]) -> list[str]:
    """``HR@k``, ``NDCG@k``, ``MRR@k`` for every cut-off k measured, smallest k first
    (NDCG@1 and MRR@1 equal HR@1 and are left out)."""
    ks = sorted({int(name.partition("@")[2]) for name in metrics if "@" in name})
    columns = [f"{m}@{k}" for k in ks for m in ("HR", "NDCG", "MRR") if f"{m}@{k}" in metrics]
    return [c for c in columns if c not in ("NDCG@1", "MRR@1")]


def baseline_warnings(report: RunEvaluation, *, masked: bool) -> list[str]:
    """``markov beats the model on NDCG@10 ...``: each baseline ahead of the model on the
    run's monitored metric, in one convention."""
    label = "seen items masked" if masked else "seen items NOT masked"
    model = report.model.masked if masked else report.model.unmasked
    warnings = []
    for name, metrics in report.baselines.items():
        values = metrics.masked if masked else metrics.unmasked
        if report.monitor in model and values.get(report.monitor, 0.0) > model[report.monitor]:
            warnings.append(f"{name} beats the model on {report.monitor} ({label}): under-trained?")
    return warnings


WIDE = 7  # metric columns that still fit a terminal; more are listed as rows instead


def _metrics_table(rows: dict[str, Metrics], columns: list[str], *, masked: bool) -> Table:
    """Models as rows and metrics as columns; metrics as rows when there are many cut-offs."""
    values = {name: m.masked if masked else m.unmasked for name, m in rows.items()}
    table = Table()
    if len(columns) <= WIDE:
        table.add_column("model")
        for c in columns:
            table.add_column(c, justify="right")
        for name, metrics in values.items():
            table.add_row(name, *(f"{metrics[c]:.4f}" for c in columns))
        return table
    table.add_column("metric")
    for name in values:
        table.add_column(name, justify="right")
    for c in columns:
        table.add_row(c, *(f"{metrics[c]:.4f}" for metrics in values.values()))
    return table


def _heading(report: RunEvaluation | RunComparison, *, masked: bool) -> str:
    label = "seen items masked" if masked else "seen items NOT masked"
    return (
        f"[bold]{report.split} split ({report.split_kind}), "
        f"{report.targets:,} targets ({report.targets_seen:.1%} already seen by their "
        f"user), full ranking over all items, {label}[/bold]"
    )


def _print_comparison(comparison: RunComparison) -> None:
    """One table per masking convention: each run (folder name and family), then baselines."""
    rows = {escape(f"{r.label} ({r.architecture})"): r.metrics for r in comparison.runs}
    rows.update(comparison.baselines)
    columns = report_columns(comparison.runs[0].metrics.unmasked)
    console = Console(soft_wrap=True)
    for masked in (False, True):
        console.print(_heading(comparison, masked=masked))
        console.print(_metrics_table(rows, columns, masked=masked))


def _print_report(report: RunEvaluation) -> None:
    columns = report_columns(report.model.unmasked)
    console = Console(soft_wrap=True)
    for masked in (False, True):
        console.print(_heading(report, masked=masked))
        table = _metrics_table({"model": report.model, **report.baselines}, columns, masked=masked)
        console.print(table)
        for warning in baseline_warnings(report, masked=masked):
            console.print(f"[yellow]warning:[/yellow] {warning}")
    if report.behavior:
        named = {"accuracy": "accuracy", "macro_f1": "macro-F1", "auc": "AUC"}
        shown = {m: report.behavior[m] for m in named if m in report.behavior}
        parts = [f"{named[m]} {v:.4f}" if v == v else f"{named[m]} n/a" for m, v in shown.items()]
        console.print(f"next behaviour (the behaviour head): {', '.join(parts)}")


def run_recommend(args: argparse.Namespace) -> int:
    if args.all_users and args.robust:
        raise InputError("--robust answers one user or history at a time: drop --all-users")
    if args.all_users:
        refuse_mutes_for_all_users(args)
        return run_all_users(args, "recommend", k=args.k, exclude_seen=args.exclude_seen)
    recommender = Recommender.load(args.run)
    unknown: list[str] = []
    if args.history is not None:
        history, unknown = recommender.history_from_records(read_history_file(args.history))
    elif args.cold_start == "popular" and (
        args.user not in recommender.user_index or forgotten_step(recommender, args.user)
    ):  # a user the run forgot is served as the service serves an erased one: cold start
        history = History.empty()
    else:
        hint = "give their events with --history, or pass --cold-start popular"
        history = known_user_history(recommender, args.user, hint=hint)
    history, args.muted = muted_history(recommender, history, args)
    # an empty history is a cold start: recommend applies the one cold-start policy
    if args.robust:
        recs = robust_recommend(
            recommender,
            history,
            k=args.k,
            exclude_seen=args.exclude_seen,
            low_intent=args.low_intent,
            recent=args.recent,
        )
    else:
        recs = recommender.recommend(history, k=args.k, exclude_seen=args.exclude_seen)
    titles = {r.item_id: t for r in recs if (t := recommender.item_title(r.item_id)) is not None}
    # the table shows titles, else id and category (ItemNames.label); JSON keeps titles only
    labels = {r.item_id: n for r in recs if (n := recommender.item_label(r.item_id)) != r.item_id}
    _print_recommendations(
        recs, titles, labels, args=args, unknown=unknown, cold_start=len(history) == 0
    )
    return 0


def _titled(r: Recommendation, titles: dict[str, str]) -> dict[str, Any]:
    """The recommendation as JSON, with a ``title`` after the id when the item has one."""
    row: dict[str, Any] = {"rank": r.rank, "item_idx": r.item_idx, "item_id": r.item_id}
    if r.item_id in titles:
        row["title"] = titles[r.item_id]
    return {**row, "score": r.score, **({"new_item": True} if r.new_item else {})}


def _print_recommendations(
    recs: list[Recommendation],
    titles: dict[str, str],
    labels: dict[str, str],
    *,
    args: argparse.Namespace,
    unknown: list[str],
    cold_start: bool,
) -> None:
    if args.json:
        payload = {
            "user": args.user,
            "cold_start": cold_start,
            "unknown": unknown,
            "ranking": "robust" if args.robust else "plain",
            **({"muted_events": args.muted} if any_mutes(args) else {}),
            "recommendations": [_titled(r, titles) for r in recs],
        }
        Console().print_json(json.dumps(payload))
        return
    console = Console()
    for message in unknown:
        console.print(f"[yellow]ignored[/yellow] {message}")
    if any_mutes(args):
        console.print(f"muted: {args.muted} events left out of the history")
    seen = "new items only" if args.exclude_seen else "seen items included"
    seen += ", robust ranking: scores are worst-case log-probabilities" if args.robust else ""
    title = (
        "popular items (cold start)"
        if cold_start
        else f"top {len(recs)} for {args.user or args.history} ({seen})"
    )
    table = Table(title=title)
    columns = ("rank", "item", "id", "score") if labels else ("rank", "item", "score")
    for name in columns:
        table.add_column(name)
    for r in recs:
        label = labels.get(r.item_id, r.item_id) + (" (new)" if r.new_item else "")
        named = [escape(label), r.item_id] if labels else [escape(label)]
        table.add_row(str(r.rank), *named, f"{r.score:.3f}")
    console.print(table)
    if any(r.new_item for r in recs):
        console.print(
            "(new): no one interacted with it in the training data; recommended from its text"
        )
