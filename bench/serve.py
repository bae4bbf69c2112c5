"""Load benchmark of the real HTTP service over loopback, and a SIGKILL durability check.

    python bench/serve.py bench/out/run-ml-1m --seconds 20

Starts ``influrec serve RUN_DIR`` as a subprocess on 127.0.0.1 with a fresh event store in a
temporary folder, then, after a warm-up, runs each phase ``--repeats`` times:

- baseline: recommendations for unknown users (cold start: HTTP, auth and store, no model);
- recommendations: GET /v1/users/{u}/recommendations?k=10 at 100 requests/s;
- explanations: GET /v1/users/{u}/explanations?k=10&method=loo at 20 requests/s;
- ingestion: POST /v1/events, batches of 100 events, a few clients sending back to back.

Reads are open loop: requests leave on a fixed schedule whatever the answers, and latency is
measured from the scheduled send time, so a slow server cannot hide its queue (no coordinated
omission). Users are sampled (seeded) from the run's users; ingested events go to users outside
the run, so the read phases of later repeats see the same histories. Ingestion latency is per
batch, from its send. Client and server share the machine's cores.

The crash test then writes batches with unique event ids to a second store, SIGKILLs the server
after ``--kill-after`` seconds, restarts it on the same store, retries every batch that was not
acknowledged, and checks the SQLite file: every acknowledged event exactly once, and as many rows
as unique ids sent. The exit status is 1 if it fails. With the defaults it takes ~5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastapi
import httpx
import numpy as np
import pyarrow.parquet as pq
import torch
import uvicorn

API_KEY = "bench-key"
HOST = "127.0.0.1"
BATCH = 100  # events per ingestion request
RECS_RATE, EXPLAIN_RATE = 100.0, 20.0  # requests/s
INGESTION = "ingestion (events/s)"
TARGETS = (  # (what, phase, statistic, target, higher is better)
    ("recommendations p99 at 100 rps", "recommendations", "p99", 50.0, False),
    ("explanations p99 at 20 rps", "explanations", "p99", 150.0, False),
    ("ingestion events/s", INGESTION, "rate", 5000.0, True),
)


@dataclass(frozen=True)
class Workload:
    users: list[str]
    items: list[str]
    behaviors: list[str]


@dataclass
class Phase:
    """One phase of one repeat: what was sent, what failed, and 2xx latencies (ms)."""

    name: str
    load: str
    sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    rate: float = 0.0  # 2xx answers/s, or acknowledged events/s for ingestion

    def stat(self, name: str) -> float:
        if name == "rate":
            return self.rate
        if not self.latencies_ms:
            return float("nan")
        if name == "max":
            return max(self.latencies_ms)
        return float(np.percentile(self.latencies_ms, float(name[1:])))


# -- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """``influrec serve`` in a subprocess, its output in ``log``."""

    run_dir: Path
    store: Path | str  # an SQLite file or a postgresql:// URL
    port: int
    log: Path
    startup_s: float = 120.0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "influrec.cli.main", "serve", str(self.run_dir)]
        command += ["--host", HOST, "--port", str(self.port), "--store", str(self.store)]
        env = {**os.environ, "INFLUREC_API_KEYS": f"{API_KEY}:read,write,admin"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.wait_healthy()

    def wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_s
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.tail()}")
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"no /healthz answer within {self.startup_s} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


class RoundRobin(httpx.AsyncBaseTransport):
    """Sends each request to the next of several servers on loopback (by port), in turn."""

    def __init__(self, ports: list[int]) -> None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        self.ports, self.turn = ports, 0
        self.transport = httpx.AsyncHTTPTransport(limits=limits)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.turn = (self.turn + 1) % len(self.ports)
        request.url = request.url.copy_with(port=self.ports[self.turn])
        return await self.transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self.transport.aclose()


def client(url: str, *, timeout_s: float, ports: list[int] | None = None) -> httpx.AsyncClient:
    """A client of the server at ``url``, or of every server on ``ports`` in turn."""
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=timeout_s,
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
        transport=RoundRobin(ports) if ports else None,
        trust_env=False,  # never through a proxy: loopback only
    )


# -- load generators ----------------------------------------------------------------------------


async def timed_get(
    http: httpx.AsyncClient, path: str, scheduled: float
) -> tuple[str, float, float]:
    """(outcome, latency from the scheduled send in s, finish time); outcome "ok" on 2xx."""
    loop = asyncio.get_running_loop()
    try:
        response = await http.get(path)
        outcome = "ok" if response.is_success else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        outcome = type(exc).__name__
    return outcome, loop.time() - scheduled, loop.time()


async def open_loop(http: httpx.AsyncClient, phase: Phase, paths: list[str], rate: float) -> Phase:
    """Fire ``paths`` at ``rate``/s on a fixed schedule; wait for the answers (bounded)."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks = []
    for i, path in enumerate(paths):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        tasks.append(asyncio.create_task(timed_get(http, path, scheduled)))
    timeout = http.timeout.read or 10.0
    done, pending = await asyncio.wait(tasks, timeout=timeout + 5)
    for task in pending:
        task.cancel()
    phase.sent = len(tasks)
    if pending:
        phase.errors["unanswered"] = len(pending)
    finished = [task.result() for task in done]
    ok = [(latency, end) for outcome, latency, end in finished if outcome == "ok"]
    phase.errors.update(outcome for outcome, _, _ in finished if outcome != "ok")
    phase.latencies_ms = [latency * 1000 for latency, _ in ok]
    span = max([end - start for _, end in ok] + [len(paths) / rate])  # >= the schedule
    phase.rate = len(ok) / span
    return phase


def event_batch(work: Workload, rng: random.Random, prefix: str) -> list[dict[str, Any]]:
    """BATCH events of known items and behaviours for users outside the run, unique ids."""
    return [
        {
            "user": f"bench-{rng.randrange(1000)}",
            "item": rng.choice(work.items),
            "behavior": rng.choice(work.behaviors),
            "event_id": f"{prefix}-{j}",
        }
        for j in range(BATCH)
    ]


async def ingest_client(
    http: httpx.AsyncClient, phase: Phase, work: Workload, prefix: str, seconds: float, seed: int
) -> int:
    """Post batches back to back for ``seconds``; returns the events acknowledged."""
    loop, rng = asyncio.get_running_loop(), random.Random(seed)
    deadline, acked, n = loop.time() + seconds, 0, 0
    while loop.time() < deadline and n < seconds * 1000:
        body = {"events": event_batch(work, rng, f"{prefix}-{n}")}
        n, phase.sent, sent_at = n + 1, phase.sent + 1, loop.time()
        try:
            response = await http.post("/v1/events", json=body)
        except httpx.HTTPError as exc:
            phase.errors[type(exc).__name__] += 1
            continue
        if not response.is_success:
            phase.errors[f"HTTP {response.status_code}"] += 1
            continue
        phase.latencies_ms.append((loop.time() - sent_at) * 1000)
        acked += int(response.json()["stored"])
    return acked


async def ingestion(
    http: httpx.AsyncClient, work: Workload, *, clients: int, seconds: float, tag: str, seed: int
) -> Phase:
    phase = Phase(INGESTION, f"{clients} clients x {BATCH} events")
    started = time.perf_counter()
    acked = await asyncio.gather(
        *(
            ingest_client(http, phase, work, f"{tag}-c{c}", seconds, seed + c)
            for c in range(clients)
        )
    )
    phase.rate = sum(acked) / (time.perf_counter() - started)
    return phase


async def one_repeat(
    http: httpx.AsyncClient, work: Workload, args: argparse.Namespace, repeat: int
) -> list[Phase]:
    n_recs, n_explain = int(RECS_RATE * args.seconds), int(EXPLAIN_RATE * args.seconds)
    users = random.Random(args.seed + repeat).choices(work.users, k=max(n_recs, n_explain))
    cold = [f"/v1/users/bench-cold-{i}/recommendations?k=10" for i in range(n_recs)]
    recs = [f"/v1/users/{u}/recommendations?k=10" for u in users[:n_recs]]
    explain = [f"/v1/users/{u}/explanations?k=10&method=loo" for u in users[:n_explain]]
    return [
        await open_loop(http, Phase("baseline (cold start)", "100 rps"), cold, RECS_RATE),
        await open_loop(http, Phase("recommendations", "100 rps"), recs, RECS_RATE),
        await open_loop(http, Phase("explanations", "20 rps"), explain, EXPLAIN_RATE),
        await ingestion(
            http, work, clients=args.clients, seconds=args.seconds, tag=f"r{repeat}", seed=args.seed
        ),
    ]


async def load_test(
    url: str, work: Workload, args: argparse.Namespace, ports: list[int] | None = None
) -> list[list[Phase]]:
    """A warm-up (not measured), then every phase ``args.repeats`` times (spread over the
    servers on ``ports`` in turn, when given)."""
    async with client(url, timeout_s=10.0, ports=ports) as http:
        for user in work.users[:20]:
            (await http.get(f"/v1/users/{user}/recommendations?k=10")).raise_for_status()
        for user in work.users[:5]:
            (await http.get(f"/v1/users/{user}/explanations?k=10&method=loo")).raise_for_status()
        for n in range(3):
            body = {"events": event_batch(work, random.Random(n), f"warm-{n}")}
            (await http.post("/v1/events", json=body)).raise_for_status()
        return [await one_repeat(http, work, args, r) for r in range(args.repeats)]


# -- crash test ---------------------------------------------------------------------------------


@dataclass
class CrashLog:
    batches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # id -> events
    acked: set[str] = field(default_factory=set)
    retried_stored: int = 0
    retried_duplicates: int = 0
    retries_failed: int = 0


async def crash_writer(
    http: httpx.AsyncClient, work: Workload, log: CrashLog, name: str, stop: asyncio.Event
) -> None:
    rng, n = random.Random(name), 0
    while not stop.is_set():
        batch_id, n = f"{name}-{n}", n + 1
        log.batches[batch_id] = event_batch(work, rng, f"crash-{batch_id}")
        try:
            response = await http.post("/v1/events", json={"events": log.batches[batch_id]})
        except httpx.HTTPError:
            await asyncio.sleep(0.01)
            continue
        if response.is_success:
            log.acked.add(batch_id)


async def write_until_killed(server: Server, work: Workload, log: CrashLog, after_s: float) -> None:
    stop = asyncio.Event()
    async with client(server.url, timeout_s=10.0) as http:
        writers = [
            asyncio.create_task(crash_writer(http, work, log, f"w{w}", stop)) for w in range(2)
        ]
        await asyncio.sleep(after_s)
        server.kill()  # while requests are in flight
        stop.set()
        await asyncio.gather(*writers)


async def retry_unacknowledged(url: str, log: CrashLog) -> None:
    async with client(url, timeout_s=30.0) as http:
        for batch_id in [b for b in log.batches if b not in log.acked]:
            for _ in range(5):
                try:
                    response = await http.post("/v1/events", json={"events": log.batches[batch_id]})
                except httpx.HTTPError:
                    continue
                if response.is_success:
                    answer = response.json()
                    log.retried_stored += int(answer["stored"])
                    log.retried_duplicates += int(answer["duplicates"])
                    break
            else:
                log.retries_failed += 1


def stored_ids(store: Path) -> tuple[Counter[str | None], int]:
    """event_id -> rows with it, and the total rows of the events table."""
    with closing(sqlite3.connect(store)) as db:
        rows = db.execute("SELECT event_id, count(*) FROM events GROUP BY event_id").fetchall()
        total = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    return Counter(dict(rows)), total


def crash_test(server: Server, work: Workload, after_s: float) -> bool:
    log = CrashLog()
    with running(server):
        asyncio.run(write_until_killed(server, work, log, after_s))
        server.start()  # same store
        asyncio.run(retry_unacknowledged(server.url, log))
    counts, total = stored_ids(server.store)
    sent = {e["event_id"] for events in log.batches.values() for e in events}
    acked = {e["event_id"] for b in log.acked for e in log.batches[b]}
    missing = sum(counts[i] == 0 for i in acked)
    twice = sum(c > 1 for c in counts.values())
    unknown = sum(i not in sent for i in counts)
    unacked = len(log.batches) - len(log.acked)
    print(f"\ncrash test: 2 writers, SIGKILL after {after_s:g} s, restart on the same store")
    print(f"  batches sent before the kill {len(log.batches):,} ({BATCH} events each):")
    print(f"    acknowledged {len(log.acked):,}, not acknowledged {unacked:,} (retried)")
    print(
        f"  retried events: {log.retried_stored:,} newly stored, {log.retried_duplicates:,} "
        f"already stored (committed, answer lost); batches still failing {log.retries_failed}"
    )
    print(f"  acknowledged events {len(acked):,}: missing {missing}, stored more than once {twice}")
    print(f"  rows in the store {total:,}, unique ids sent {len(sent):,}, unknown ids {unknown}")
    ok = missing == twice == unknown == log.retries_failed == 0 and total == len(sent)
    print(f"  {'PASS' if ok else 'FAIL'}")
    return ok


# -- report -------------------------------------------------------------------------------------


def spread(values: list[float], fmt: str) -> str:
    """The median, with min-max when there are several values."""
    median = format(float(np.median(values)), fmt)
    if len(values) < 2:
        return median
    return f"{median} [{min(values):{fmt}}-{max(values):{fmt}}]"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def print_phases(repeats: list[list[Phase]]) -> None:
    by_name: dict[str, list[Phase]] = {}
    for phase in (p for phases in repeats for p in phases):
        by_name.setdefault(phase.name, []).append(phase)
    base = float(np.median([p.stat("p50") for p in by_name["baseline (cold start)"]]))
    headers = ["phase", "load", "sent", "errors", "achieved/s", "p50 ms", "p95 ms", "p99 ms"]
    headers += ["max ms", "p50 / baseline"]
    rows = []
    for name, runs in by_name.items():
        p50 = [p.stat("p50") for p in runs]
        rows.append(
            [name, runs[0].load, f"{sum(p.sent for p in runs):,}"]
            + [str(sum(sum(p.errors.values()) for p in runs))]
            + [spread([p.rate for p in runs], ",.0f"), spread(p50, ".1f")]
            + [spread([p.stat(s) for p in runs], ".1f") for s in ("p95", "p99", "max")]
            + ["-" if name == INGESTION else f"{np.median(p50) / base:.1f}x"]
        )
    print(f"{len(repeats)} repeats: sent, errors: totals; the rest: median [min-max]")
    print_table(headers, rows)
    for name, runs in by_name.items():
        errors = sum((p.errors for p in runs), Counter())
        if errors:
            print(f"  errors in {name}: {dict(errors)}")


def print_targets(repeats: list[list[Phase]]) -> None:
    rows = []
    for what, name, stat, target, higher in TARGETS:
        runs = [p for phases in repeats for p in phases if p.name == name]
        values = [p.stat(stat) for p in runs]
        median = float(np.median(values))
        meets = median >= target if higher else median <= target
        errors = sum(sum(p.errors.values()) for p in runs)
        verdict = ("meets" if meets else "misses") + (f" ({errors} errors)" if errors else "")
        bound = f">= {target:,.0f}" if higher else f"< {target:,.0f} ms"
        rows.append([what, bound, spread(values, ",.0f" if higher else ".1f"), verdict])
    print("\ntargets (measured: median [min-max] over repeats):")
    print_table(["what", "target", "measured", "verdict"], rows)


def machine_line() -> str:
    return (
        f"{platform.node()} | {os.cpu_count()} cores | torch {torch.__version__} "
        f"({torch.get_num_threads()} threads) | python {platform.python_version()} | "
        f"fastapi {fastapi.__version__} | uvicorn {uvicorn.__version__} | "
        f"httpx {httpx.__version__} | sqlite {sqlite3.sqlite_version}"
    )


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/mounts; "?" elsewhere)."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    found = [(len(m[1]), m[2]) for m in mounts if str(path.resolve()).startswith(m[1])]
    return max(found)[1] if found else "?"


def load_workload(run_dir: Path) -> Workload:
    data = run_dir / "data"
    behaviors = json.loads((data / "behaviors.json").read_text())[1:]  # 0 is padding
    return Workload(
        users=[str(u) for u in pq.read_table(data / "users.parquet")["user_id"].to_pylist()],
        items=[str(i) for i in pq.read_table(data / "items.parquet")["item_id"].to_pylist()],
        behaviors=[str(b) for b in behaviors],
    )


def print_header(run_dir: Path, work: Workload) -> None:
    model = json.loads((run_dir / "run.json").read_text())["config"]["model"]
    print(f"machine: {machine_line()}")
    print(f"command: python bench/serve.py {' '.join(sys.argv[1:])}")
    print(
        f"run: {run_dir}: d {model['d_model']}, {model['layers']} layers, "
        f"max_len {model['max_len']}; {len(work.users):,} users, {len(work.items):,} items, "
        f"behaviours {', '.join(work.behaviors)}"
    )
    print("client and server on 127.0.0.1 share the cores above; latency of 2xx answers only")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="trained run folder")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--repeats", type=int, default=3, help="runs of every phase")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--clients", type=int, default=4, help="concurrent ingestion clients")
    parser.add_argument("--kill-after", type=float, default=3.0, help="crash test: seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="event store; postgresql starts a throwaway local server (Debian's postgresql)",
    )
    parser.add_argument(
        "--servers", type=int, default=1, help="serve processes sharing the store (postgresql)"
    )
    args = parser.parse_args()
    if not (args.run / "run.json").exists():
        parser.error(f"{args.run}: not a trained run (no run.json)")
    if args.servers > 1 and args.store == "sqlite":
        parser.error("several servers share a store only with --store postgresql")
    work = load_workload(args.run)
    print_header(args.run, work)
    if args.store == "postgresql":
        return postgres_load(args, work)
    port = args.port or free_port()
    with tempfile.TemporaryDirectory(prefix="influrec-bench-") as tmp:
        print(f"event stores in {tmp} ({filesystem(Path(tmp))}; one fsync per batch)\n")
        load = Server(args.run, Path(tmp) / "events.sqlite3", port, Path(tmp) / "load.log")
        with running(load):
            repeats = asyncio.run(load_test(load.url, work, args))
        print_phases(repeats)
        print_targets(repeats)
        crash = Server(args.run, Path(tmp) / "crash.sqlite3", port, Path(tmp) / "crash.log")
        return 0 if crash_test(crash, work, args.kill_after) else 1


def postgres_load(args: argparse.Namespace, work: Workload) -> int:
    """The load phases against ``args.servers`` serve processes on one throwaway PostgreSQL
    server, requests spread over them in turn (the SIGKILL test of several processes on
    PostgreSQL is tests/serving/test_serving_postgres.py)."""
    from pg_cluster import Cluster

    with Cluster() as cluster, tempfile.TemporaryDirectory(prefix="influrec-bench-") as tmp:
        url = cluster.create_database("events")
        print(f"event store: PostgreSQL on 127.0.0.1:{cluster.port} ({args.servers} servers)\n")
        servers = [
            Server(args.run, url, free_port(), Path(tmp) / f"load-{n}.log")
            for n in range(args.servers)
        ]
        with contextlib.ExitStack() as stack:
            for server in servers:
                stack.enter_context(running(server))
            ports = [server.port for server in servers]
            repeats = asyncio.run(load_test(servers[0].url, work, args, ports))
        print_phases(repeats)
        print_targets(repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
