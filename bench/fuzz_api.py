"""Fuzzing of the real service's HTTP API: no 5xx allowed, every error in the documented shape.

    python bench/fuzz_api.py RUN_DIR [--max-examples 50]           # schemathesis
    python bench/fuzz_api.py RUN_DIR --builtin [--requests 3000]    # no extra package

Starts `influrec serve` on a free loopback port with an admin key and a fresh event store, then
either runs schemathesis (`st run` against its /openapi.json with the not_a_server_error check;
needs `pip install schemathesis`) and exits with its status, or, with --builtin, sends a bounded,
seeded list of hostile requests built from the same /openapi.json: every query parameter at and
past its published bounds and with odd types, user ids with `/`, `%`, dots, NUL and unicode,
event bodies whose numbers overflow float32 or int64, bodies that are not UTF-8, nested 10,000
deep or not JSON, bad keys and wrong methods. It prints the statuses per route and exits 1 if any
answer is a 5xx, or an error whose body is not `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

KEY = "fuzz-key"
ODD_IDS = [
    "a/b",
    "/x",
    "y/",
    "50%",
    "%2F",
    "a b",
    "ünï/東京",
    "\x00",
    ".",
    "..",
    "u" * 256,
    "[" * 40,
]
ODD_NUMBERS: list[Any] = [0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 1.5, 1e39, "ten", "", None]
ODD_VALUES: list[Any] = [1e39, -1e39, 3e38, 1e15, 1e16, -0.0, 5e-324, 1e-45, True, "1", [], {}]


class Probe(NamedTuple):
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, server: subprocess.Popen, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"server at {url} did not become healthy in {seconds:.0f} s")


@contextmanager
def serving(run: Path, log: Path) -> Iterator[str]:
    """``influrec serve RUN`` on a free loopback port with a fresh store; yields its URL."""
    port = free_port()
    store = Path(tempfile.mkdtemp(prefix="influrec-fuzz-")) / "events.sqlite3"
    command = [sys.executable, "-m", "influrec.cli.main", "serve", str(run)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--store", str(store)]
    env = {**os.environ, "INFLUREC_API_KEYS": f"{KEY}:admin"}
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server)
        yield url
    finally:
        server.kill()
        server.wait(timeout=30)


def run_schemathesis(url: str, max_examples: int) -> int:
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    if not Path(st).exists():
        raise SystemExit("schemathesis is not installed: pip install schemathesis (or --builtin)")
    command = [st, "run", f"{url}/openapi.json", "--checks", "not_a_server_error"]
    command += ["--header", f"Authorization: Bearer {KEY}", "--max-examples", str(max_examples)]
    command += ["--workers", "1"]
    print(f"running: {' '.join(command)}")
    return subprocess.run(command, check=False, timeout=1800).returncode


# -- the built-in hostile requests ---------------------------------------------------------------


def edge_numbers(schema: dict[str, Any]) -> list[Any]:
    """An integer parameter at, inside and past its published bounds, and not an integer."""
    low, high = schema.get("minimum", 0), schema.get("maximum", 1000)
    return [low, low + 1, high, high + 1, *ODD_NUMBERS]


def query_values(schema: dict[str, Any]) -> list[Any]:
    if schema.get("type") == "integer":
        return edge_numbers(schema)
    if schema.get("type") == "boolean":
        return ["true", "false", "1", "yes", ""]
    return [*schema.get("enum", []), "magic", "", "\x00"]


def encoded(user: str) -> str:
    text = quote(user, safe="")
    return text.replace(".", "%2E") if set(user) == {"."} else text


def route_probes(spec: dict[str, Any], users: list[str]) -> Iterator[Probe]:
    """Every operation with a path parameter: odd user ids, and each query parameter at its
    edges with the others at their defaults."""
    auth = {"Authorization": f"Bearer {KEY}"}
    for template, operations in spec["paths"].items():
        if "{user_id}" not in template:
            continue
        for method, operation in operations.items():
            for user in [*users, *ODD_IDS]:
                yield Probe(
                    method.upper(), template.replace("{user_id}", encoded(user)), None, auth
                )
            queries = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            for parameter in queries:
                for value in query_values(parameter["schema"]):
                    path = template.replace("{user_id}", encoded(random.choice(users)))
                    query = f"{parameter['name']}={quote(str(value), safe='')}"
                    yield Probe(method.upper(), f"{path}?{query}", None, auth)


def combined_probes(spec: dict[str, Any], users: list[str], count: int) -> Iterator[Probe]:
    """``count`` requests to the user routes, each query parameter left out or set to a random
    edge value (every method x measure of the explanations among them)."""
    auth = {"Authorization": f"Bearer {KEY}"}
    routes = [
        (template, operation)
        for template, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method == "get" and "{user_id}" in template
    ]
    for _ in range(count):
        template, operation = random.choice(routes)
        query = [
            f"{p['name']}={quote(str(random.choice(query_values(p['schema']))), safe='')}"
            for p in operation.get("parameters", [])
            if p["in"] == "query" and random.random() < 0.7
        ]
        path = template.replace("{user_id}", encoded(random.choice(users + ODD_IDS)))
        yield Probe("GET", f"{path}?{'&'.join(query)}", None, auth)


def event(user: str, **fields: Any) -> dict[str, Any]:
    return {"user": user, "item": "i3", "behavior": "buy", **fields}


def body_probes(users: list[str], items: list[str]) -> Iterator[Probe]:
    """Events and what-if bodies with odd numbers and strings, and bodies that are not JSON."""
    headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    bodies: list[tuple[str, Any]] = []
    for value in ODD_VALUES + ODD_NUMBERS:
        bodies.append(("/v1/events", {"events": [event(random.choice(users), value=value)]}))
        bodies.append(("/v1/events", {"events": [event("fuzz", timestamp=value)]}))
        bodies.append(("/v1/whatif", {"user": random.choice(users), "k": value}))
        bodies.append(("/v1/whatif", {"user": random.choice(users), "remove": [value]}))
        add = {"item": random.choice(items), "behavior": value}
        bodies.append(("/v1/whatif", {"user": random.choice(users), "add": [add]}))
    for user in ODD_IDS:
        bodies.append(("/v1/events", {"events": [event(user, event_id=user, value=1.0)]}))
        bodies.append(("/v1/whatif", {"user": user, "k": 100, "add": [{"item": items[0]}]}))
    bodies += [
        ("/v1/events", {"events": [event("many")] * 1001}),
        ("/v1/events", {"events": []}),
        ("/v1/whatif", {"user": users[0], "remove": list(range(101))}),
        ("/v1/whatif", {"user": users[0], "add": [{"item": i} for i in items[:50]], "k": 1000}),
    ]
    for path, body in bodies:
        yield Probe("POST", path, json.dumps(body).encode(), headers)
    raw = [b"\xff\xfe", "é".encode("latin-1"), b"[" * 10_000 + b"]" * 10_000, b"", b"null"]
    raw += [b"{", b'{"events": [1e999]}', b'{"user": "\\ud800"}', b'{"a": ' * 3_000 + b"1"]
    for path in ("/v1/events", "/v1/whatif"):
        for body in raw:
            yield Probe("POST", path, body, headers)


def auth_probes(paths: list[str]) -> Iterator[Probe]:
    """No key, bad keys, wrong schemes and wrong methods."""
    for path in paths:
        for header in ("", f"Bearer {KEY}x", KEY, f"Basic {KEY}", "Bearer", "Bearer " + "k" * 5000):
            yield Probe("GET", path, None, {"Authorization": header} if header else {})
        for method in ("PUT", "PATCH", "OPTIONS", "HEAD", "TRACE"):
            yield Probe(method, path, None, {"Authorization": f"Bearer {KEY}"})


def hostile_probes(url: str, *, seed: int, limit: int) -> list[Probe]:
    """A seeded list of ``limit`` hostile requests: the edge cases, then random combinations
    of query parameters up to ``limit`` (shuffled; cut to ``limit`` when the edges are more)."""
    random.seed(seed)
    with urllib.request.urlopen(f"{url}/openapi.json", timeout=30) as response:
        spec = json.loads(response.read())
    users, items = [f"u{n}" for n in range(1, 11)], [f"i{n}" for n in range(1, 31)]
    probes = [*route_probes(spec, users), *body_probes(users, items)]
    probes += combined_probes(spec, users, max(0, limit - len(probes)))
    probes += auth_probes([*spec["paths"], "/v1/users/u1/recommendations", "/docs", "/nope"])
    random.shuffle(probes)
    return probes[:limit]


def well_formed_error(status: int, body: bytes, method: str) -> bool:
    if status < 400 or method == "HEAD":
        return True
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error, dict) and set(error) == {"code", "message", "details"}


def route_of(path: str) -> str:
    """The route template of a probed path (user ids replaced by ``{user_id}``)."""
    path = path.split("?")[0]
    if not path.startswith("/v1/users/"):
        return path
    last = path.rsplit("/", 1)[-1]
    known = last in ("recommendations", "explanations", "influential-actions")
    return "/v1/users/{user_id}" + (f"/{last}" if known else "")


def ask(connection: http.client.HTTPConnection, probe: Probe) -> tuple[int, bytes]:
    connection.request(probe.method, probe.path, probe.body, probe.headers)
    response = connection.getresponse()
    return response.status, response.read()


def send_all(url: str, probes: list[Probe]) -> tuple[Counter[tuple[str, int]], list[str]]:
    """Each probe in order on one keep-alive connection. The server closes a connection after
    a 500, which the next probe would see, so a probe whose connection fails is sent again
    once on a new one: only a probe that fails twice counts as unanswered."""
    host, port = url.removeprefix("http://").split(":")
    statuses: Counter[tuple[str, int]] = Counter()
    problems: list[str] = []
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    for probe in probes:
        try:
            status, body = ask(connection, probe)
        except (http.client.HTTPException, OSError):
            connection.close()
            connection = http.client.HTTPConnection(host, int(port), timeout=120)
            try:
                status, body = ask(connection, probe)
            except (http.client.HTTPException, OSError) as exc:
                problems.append(f"{probe.method} {probe.path[:80]}: no answer ({exc!r})")
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=120)
                continue
        statuses[(f"{probe.method} {route_of(probe.path)}", status)] += 1
        if status >= 500 or not well_formed_error(status, body, probe.method):
            problems.append(f"{probe.method} {probe.path[:80]} -> {status}: {body[:200]!r}")
    connection.close()
    return statuses, problems


def run_builtin(url: str, *, seed: int, limit: int) -> int:
    probes = hostile_probes(url, seed=seed, limit=limit)
    started = time.perf_counter()
    statuses, problems = send_all(url, probes)
    seconds = time.perf_counter() - started
    print(f"{len(probes)} hostile requests (seed {seed}) in {seconds:.1f} s\n")
    print(f"{'request':<40} {'status':>6} {'count':>6}")
    for (route, status), count in sorted(statuses.items()):
        print(f"{route[:40]:<40} {status:>6} {count:>6}")
    fives = sum(count for (_, status), count in statuses.items() if status >= 500)
    print(f"\n5xx answers: {fives}; problems (5xx, malformed errors, no answer): {len(problems)}")
    for problem in problems[:30]:
        print(f"  {problem}")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--max-examples", type=int, default=50, help="schemathesis examples")
    parser.add_argument("--builtin", action="store_true", help="no schemathesis: see above")
    parser.add_argument("--requests", type=int, default=3000, help="--builtin: at most this many")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, default=None, help="server log (default: a temp file)")
    args = parser.parse_args()
    log = args.log or Path(tempfile.mkdtemp(prefix="influrec-fuzz-log-")) / "server.log"
    print(f"command: python bench/fuzz_api.py {' '.join(sys.argv[1:])}")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"server log: {log}")
    with serving(args.run, log) as url:
        if args.builtin:
            return run_builtin(url, seed=args.seed, limit=args.requests)
        return run_schemathesis(url, args.max_examples)


if __name__ == "__main__":
    sys.exit(main())
