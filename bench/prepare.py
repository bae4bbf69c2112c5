"""Benchmark `influrec data prepare` on the shared real datasets and a large generated CSV.

Each preparation runs in a fresh process that reports its own wall time and peak RSS, so one
run's memory never hides another's. A naive pure-Python reader (csv module, dicts, sorted())
on the same MovieLens file is timed in the same run as the baseline for the speed ratio.

    python bench/prepare.py                 # shared datasets, 3 runs each after a warm-up
    python bench/prepare.py --big 20000000  # also a generated 20M-event CSV (one run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "bench" / "out"

CASES = [
    ("ML-1M timestamped part", "ml-1m/ratings.first487650.dat.gz", "movielens", None),
    ("ML-1M full, no timestamps", "ml-1m/ratings_all_no_timestamp.dat.gz", "movielens", None),
    ("ML-100k", "ml-100k/u.data", "movielens", None),
    ("Amazon Beauty (S3-Rec)", "s3rec-sequences/Beauty.txt", "s3rec", None),
    ("Taobao head", "taobao-userbehavior-head/UserBehavior.head84475.csv", "taobao", None),
]

# VmHWM is this process's own peak (ru_maxrss would include the parent's, kept across exec)
PEAK = """
def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

CHILD = (
    PEAK
    + """
import json, sys, time
from pathlib import Path
from influrec.data.dataset import prepare
from influrec.data.loaders import ColumnMap, ReadOptions
path, fmt, mapping, out = sys.argv[1:5]
started = time.perf_counter()
options = ReadOptions(column_map=ColumnMap.parse(mapping) if mapping else None)
ds = prepare(Path(path), fmt, read_options=options)
ds.save(Path(out), overwrite=True)
seconds = time.perf_counter() - started
peak_mb = peak_rss_mb()
s = ds.stats
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "users": s["users"], "items": s["items"],
                  "events": s["events"], "behaviors": s["behaviors"]}))
"""
)

BASELINE = (
    PEAK
    + """
import gzip, sys, time, json
started = time.perf_counter()
rows = []
with gzip.open(sys.argv[1], "rt") as f:
    for n, line in enumerate(f):
        u, i, r, t = line.rstrip("\\n").split("::")
        rows.append((u, i, float(r), int(t), n))
users, items = {}, {}
coded = [(users.setdefault(u, len(users)), items.setdefault(i, len(items)), r, t, n)
         for u, i, r, t, n in rows]
coded.sort(key=lambda e: (e[0], e[3]))  # list.sort is stable: ties keep file order
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_mb": peak_rss_mb()}))
"""
)


def run_child(code: str, *args: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def timed(
    code: str, args: list[str], repeats: int
) -> tuple[list[dict[str, float]], dict[str, float]]:
    run_child(code, *args)  # warm-up (file cache, imports)
    runs = [run_child(code, *args) for _ in range(repeats)]
    return runs, runs[-1]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def generate_csv(path: Path, n_events: int, seed: int = 0) -> None:
    """A Taobao-like CSV with a header: uid,sku,event,ts,price (ts in ms), written in chunks."""
    rng = np.random.default_rng(seed)
    behaviors = np.array(["view", "cart", "fav", "buy"])
    chunk = 2_000_000
    with pa_csv.CSVWriter(
        path,
        pa.schema(
            [
                ("uid", pa.string()),
                ("sku", pa.string()),
                ("event", pa.string()),
                ("ts", pa.int64()),
                ("price", pa.float64()),
            ]
        ),
    ) as writer:
        for start in range(0, n_events, chunk):
            n = min(chunk, n_events - start)
            users = rng.integers(0, max(1, n_events // 100), n)
            items = rng.zipf(1.2, n) % 1_000_000
            table = pa.table(
                {
                    "uid": pa.array(users.astype(str)),
                    "sku": pa.array(np.char.add("s", items.astype(str))),
                    "event": pa.array(behaviors[rng.choice(4, n, p=[0.85, 0.07, 0.05, 0.03])]),
                    "ts": pa.array(1_600_000_000_000 + rng.integers(0, 10**10, n)),
                    "price": pa.array(np.round(rng.lognormal(3, 1, n), 2)),
                }
            )
            writer.write_table(table)


def machine_line() -> str:
    import torch

    return (
        f"{platform.node()} | {os.cpu_count()} cores | python {platform.python_version()} | "
        f"pyarrow {pa.__version__} | numpy {np.__version__} | torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--big", type=int, default=0, help="also prepare a generated CSV of N events"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_line()}")
    print(f"command: python bench/prepare.py --repeats {args.repeats} --big {args.big}\n")
    print(
        f"{'dataset':28} {'users':>8} {'items':>8} {'events':>10} "
        f"{'seconds median (min-max)':>26} {'peak MB':>8}"
    )
    for name, relative, fmt, mapping in CASES:
        path = SHARED / relative
        if not path.exists():
            print(f"{name:28} skipped: {path} not present")
            continue
        runs, last = timed(CHILD, [str(path), fmt, mapping or "", str(OUT / fmt)], args.repeats)
        peak = max(r["peak_mb"] for r in runs)
        print(
            f"{name:28} {last['users']:>8,} {last['items']:>8,} {last['events']:>10,} "
            f"{spread([r['seconds'] for r in runs]):>26} {peak:>8.0f}"
        )
        if relative.endswith("first487650.dat.gz"):
            base_runs, _ = timed(BASELINE, [str(path)], args.repeats)
            base = statistics.median(r["seconds"] for r in base_runs)
            ours = statistics.median(r["seconds"] for r in runs)
            print(
                f"{'  baseline: pure-Python csv':28} {'':>8} {'':>8} {'':>10} "
                f"{spread([r['seconds'] for r in base_runs]):>26} "
                f"{max(r['peak_mb'] for r in base_runs):>8.0f}   "
                f"influrec is {base / ours:.1f}x faster"
            )
    if args.big:
        big = OUT / f"generated-{args.big}.csv"
        if not big.exists():
            started = time.perf_counter()
            generate_csv(big, args.big)
            print(
                f"\ngenerated {big.name} ({big.stat().st_size / 1e9:.2f} GB) "
                f"in {time.perf_counter() - started:.0f} s"
            )
        result = run_child(
            CHILD,
            str(big),
            "csv",
            "user=uid,item=sku,behavior=event,time=ts,value=price",
            str(OUT / "big"),
        )
        print(
            f"{'generated CSV':28} {result['users']:>8,} {result['items']:>8,} "
            f"{result['events']:>10,} "
            f"{result['seconds']:>26.1f} {result['peak_mb']:>8.0f}   "
            f"{result['events'] / result['seconds']:,.0f} events/s"
        )


if __name__ == "__main__":
    main()
