"""The model families and the baselines on one dataset, in one table (optionally beside RecBole).

    python bench/families.py ml-100k --minutes 4
    python bench/families.py ml-100k --minutes 4 --recbole /work/recbole-venv --recbole-minutes 12
    python bench/families.py beauty --families transformer,mlp --set train.seed=1

Each family trains with its committed config (bench/configs/DATASET.toml for the Transformer,
DATASET-FAMILY.toml for gru, cnn and mlp), one after the other, for at most ``--minutes`` of
training (``train.max_minutes``, validation included) into bench/out/families-DATASET/FAMILY.
Then every run and the baselines are evaluated on the test split with full ranking over all
items, with and without the items a user has already seen (``compare_runs``, which refuses runs
prepared from other data). Tokens/s is the median over the epochs of training tokens per second
(validation excluded); training minutes are the trainer's, validation included.

``--recbole VENV`` also runs RecBole 1.2.1 models (``--recbole-models``, default GRU4Rec and
SASRec) on the same raw file through the peer runner ``run_rb.py`` of ``--peer`` (default
$INFLUREC_RECBOLE_PEER, else ../shared/peers/recbole): MovieLens files are written in RecBole's
atomic layout (user, item, timestamp), S3-Rec sequence files go through the peer's
``to_atomic.py``. RecBole applies its own 5-core filter and leave-one-out split in time order,
evaluates with full ranking without masking seen items, and early-stops on validation NDCG@10
within ``--recbole-minutes`` of wall time; its rows give that wall time. ``--alongside`` runs
the RecBole models (one after the other) while influrec trains, two trainings at once: both
get slower, and the machine line says so. Nothing of RecBole is part of this project: the
runner is only invoked by path.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from influrec.config import load_config
from influrec.evaluation.compare import compare_runs
from influrec.evaluation.protocol import Metrics
from influrec.models.registry import MODELS
from influrec.run import read_run_info
from influrec.training.loop import Trainer
from train import DATASETS, OUT, ROOT, SHARED, machine_line, prepared

DEFAULT_PEER = ROOT.parent / "shared" / "peers" / "recbole"
BASELINES = ("popularity", "markov", "itemknn")
HEADER = (
    "| model | HR@10 | NDCG@10 | HR@10 masked | NDCG@10 masked | parameters | epochs "
    "| training min | s per epoch | tokens/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


@dataclass
class Trained:
    """What training one family measured (its metrics come from the comparison)."""

    family: str
    run_dir: Path
    parameters: int
    epochs: int
    minutes: float  # training, validation included
    epoch_seconds: float  # median of one epoch's training, validation excluded
    tokens_per_s: float  # median over the epochs

    @classmethod
    def of(cls, family: str, run_dir: Path) -> Trained:
        """Read back from the run folder (run.json and metrics.jsonl)."""
        info = read_run_info(run_dir)
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        history = [json.loads(line) for line in lines if line.strip()]
        return cls(
            family,
            run_dir,
            info.parameters or 0,
            len(history),
            float(history[-1]["elapsed_seconds"]) / 60,
            statistics.median(float(r["seconds"]) for r in history),
            statistics.median(float(r["tokens_per_s"]) for r in history),
        )


def config_path(dataset: str, family: str) -> Path:
    name = dataset if family == "transformer" else f"{dataset}-{family}"
    return ROOT / "bench" / "configs" / f"{name}.toml"


def train_family(dataset: Any, name: str, family: str, overrides: list[str]) -> Trained:
    """Train ``family`` with its committed config and ``overrides`` into a fresh run folder."""
    config = load_config(config_path(name, family), overrides)
    run_dir = OUT / f"families-{name}" / family
    shutil.rmtree(run_dir, ignore_errors=True)
    trainer = Trainer(dataset, config, run_dir, progress=False)
    started = time.strftime("%H:%M:%S")
    print(f"{started} training {family} ({trainer.model.num_parameters():,} parameters)")
    trainer.fit()
    return Trained.of(family, run_dir)


def metric_cells(metrics: Metrics) -> str:
    values = [metrics.unmasked["HR@10"], metrics.unmasked["NDCG@10"]]
    values += [metrics.masked["HR@10"], metrics.masked["NDCG@10"]]
    return " | ".join(f"{v:.4f}" for v in values)


def influrec_rows(trained: list[Trained]) -> list[str]:
    """One row per family and per baseline, all evaluated on the same test targets."""
    comparison = compare_runs([t.run_dir for t in trained], baselines=BASELINES, ks=(10,))
    rows = []
    for t, run in zip(trained, comparison.runs, strict=True):
        rows.append(
            f"| influrec {t.family} | {metric_cells(run.metrics)} | {t.parameters:,} "
            f"| {t.epochs} | {t.minutes:.1f} | {t.epoch_seconds:.0f} | {t.tokens_per_s:,.0f} |"
        )
    for name, metrics in comparison.baselines.items():
        rows.append(f"| {name} | {metric_cells(metrics)} | - | - | - | - | - |")
    print(
        f"test: {comparison.targets:,} targets ({comparison.split_kind}), "
        f"{comparison.protocol}; {comparison.targets_seen:.1%} of targets already seen"
    )
    return rows


def movielens_atomic(source: Path, target: Path) -> None:
    """RecBole's atomic ``.inter`` (user, item, timestamp) of a MovieLens ratings file
    (``u.data``: tab-separated; ``ratings.dat``: ``::``-separated; either may be gzipped)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt") as lines, target.open("w") as out:
        out.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line in lines:
            fields = line.strip().split("::" if "::" in line else "\t")
            if len(fields) >= 4:
                out.write(f"{fields[0]}\t{fields[1]}\t{fields[3]}\n")


def recbole_data(name: str, venv: Path, peer: Path, folder: Path) -> None:
    """Write the dataset's raw file in RecBole's atomic layout under ``folder/name``."""
    relative, fmt, _ = DATASETS[name]
    source = SHARED / relative
    if fmt == "movielens":
        movielens_atomic(source, folder / name / f"{name}.inter")
    else:
        command = [str(venv / "bin" / "python"), str(peer / "to_atomic.py"), str(source)]
        subprocess.run([*command, str(folder), name], check=True)


def run_recbole(model: str, name: str, args: argparse.Namespace, max_len: int) -> str:
    """One RecBole model through the peer runner; its table row (or a row saying it failed)."""
    folder = OUT / f"families-{name}" / "recbole"
    log = folder / f"{model}.log"
    env = {**os.environ, "PEER_DATA": str(folder / "data"), "PEER_SAVED": str(folder / "saved")}
    command = [str(args.recbole / "bin" / "python"), str(args.peer / "run_rb.py"), model, name]
    command += [str(max_len), "CE", "300", str(args.recbole_minutes), *args.recbole_set]
    print(f"{time.strftime('%H:%M:%S')} RecBole {model}: {' '.join(command)} (log {log})")
    with log.open("w") as out:
        done = subprocess.run(command, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    return recbole_row(model, log, done.returncode)


def recbole_row(model: str, log: Path, returncode: int = 0) -> str:
    """The table row of a RecBole run from its log: the SUMMARY line's test metrics, its
    training wall time, the share of epochs it trained and the median epoch time (extrapolated
    from the batches of an epoch the budget cut short)."""
    text = log.read_text()
    lines = [line for line in text.splitlines() if line.startswith("SUMMARY ")]
    if returncode != 0 or not lines:
        return f"| RecBole {model} | failed (exit {returncode}, see {log}) | | | | | | | | |"
    summary = json.loads(lines[-1].removeprefix("SUMMARY "))
    test = summary["test"]
    epochs = re.findall(r"BATCHES: (\d+)/(\d+) batches .* full epoch ([0-9.]+)s", text)
    share = sum(int(done) / int(total) for done, total, _ in epochs)
    epoch_seconds = statistics.median(float(s) for _, _, s in epochs) if epochs else 0.0
    print(
        f"RecBole {model}: its 5-core data has {summary['n_users']:,} users, "
        f"{summary['n_items']:,} items, {summary['n_inter']:,} events "
        f"(data prepared in {summary['data_prep_s']} s)"
    )
    return (
        f"| RecBole {model} | {test['hit@10']:.4f} | {test['ndcg@10']:.4f} | - | - "
        f"| {summary['n_params']:,} | {share:.2f} | {summary['fit_s'] / 60:.1f} "
        f"| {epoch_seconds:.0f} | - |"
    )


def recbole_rows(name: str, args: argparse.Namespace, max_len: int, rows: list[str]) -> None:
    """Append each RecBole model's row to ``rows`` (one model at a time)."""
    folder = OUT / f"families-{name}" / "recbole"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    recbole_data(name, args.recbole, args.peer, folder / "data")
    for model in args.recbole_models.split(","):
        rows.append(run_recbole(model, name, args, max_len))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", choices=list(DATASETS))
    parser.add_argument("--families", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per family")
    parser.add_argument("--set", action="append", default=[], help="config override, all runs")
    parser.add_argument("--recbole", type=Path, default=None, help="RecBole 1.2.1 venv")
    parser.add_argument("--recbole-models", default="GRU4Rec,SASRec")
    parser.add_argument("--recbole-minutes", type=float, default=12.0)
    parser.add_argument("--recbole-set", action="append", default=[], help="k=v for run_rb.py")
    parser.add_argument("--alongside", action="store_true", help="RecBole while influrec trains")
    parser.add_argument(
        "--table-only", action="store_true", help="evaluate the runs and logs already in bench/out"
    )
    default_peer = os.environ.get("INFLUREC_RECBOLE_PEER", str(DEFAULT_PEER))
    parser.add_argument("--peer", type=Path, default=Path(default_peer), help="run_rb.py's folder")
    args = parser.parse_args()
    unknown = set(args.families.split(",")) - set(MODELS)
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}; registered: {', '.join(MODELS)}")
    if args.recbole and not (args.peer / "run_rb.py").exists():
        parser.error(f"no run_rb.py in {args.peer}: give the peer folder with --peer")
    return args


def measure(args: argparse.Namespace, dataset: Any) -> tuple[list[Trained], list[str]]:
    """Train every family (and run RecBole, before or alongside): their rows' inputs."""
    overrides = [f"train.max_minutes={args.minutes}", *args.set]
    max_len = load_config(config_path(args.dataset, "transformer"), overrides).model.max_len
    recbole: list[str] = []
    side = None
    if args.recbole:
        side = threading.Thread(target=recbole_rows, args=(args.dataset, args, max_len, recbole))
        if args.alongside:
            side.start()
    trained = [
        train_family(dataset, args.dataset, family, overrides)
        for family in args.families.split(",")
    ]
    if side is not None:
        if not args.alongside:
            side.start()
        side.join()
    return trained, recbole


def read_back(args: argparse.Namespace) -> tuple[list[Trained], list[str]]:
    """``--table-only``: the families' runs and RecBole's logs of an earlier measurement."""
    folder = OUT / f"families-{args.dataset}"
    trained = [Trained.of(family, folder / family) for family in args.families.split(",")]
    logs = [folder / "recbole" / f"{model}.log" for model in args.recbole_models.split(",")]
    recbole = [recbole_row(log.stem, log) for log in logs if args.recbole and log.exists()]
    return trained, recbole


def main() -> None:
    args = parse_args()
    command = f"python bench/families.py {' '.join(sys.argv[1:])}"
    load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    print(f"machine: {machine_line()} | {load} at start")
    print(f"command: {command}")
    dataset = prepared(args.dataset)
    s = dataset.stats
    print(
        f"data: {args.dataset}: {s['users']:,} users, {s['items']:,} items, {s['events']:,} events"
    )
    trained, recbole = read_back(args) if args.table_only else measure(args, dataset)
    rows = influrec_rows(trained)
    end_load = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    together = (
        "; RecBole trained alongside influrec (2 trainings at once)" if args.alongside else ""
    )
    if args.table_only:
        together = "; rows read back from runs trained earlier, only evaluated now"
    table = "\n".join(
        [
            f"`{command}`",
            "",
            f"machine: {machine_line()} | {load} at start, {end_load} at end{together}",
            "",
            HEADER,
            *rows,
            *recbole,
        ]
    )
    print("\n" + table)
    (OUT / f"families-{args.dataset}" / "table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
