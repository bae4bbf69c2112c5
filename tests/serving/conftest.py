from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from influrec.serving.app import create_app
from influrec.serving.settings import Limits, ServiceSettings
from tests_helpers import train_tiny_run

KEYS = {
    "reader-key": frozenset({"read"}),
    "writer-key": frozenset({"write"}),
    "admin-key": frozenset({"admin"}),
}


@pytest.fixture(scope="session")
def served_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run on synthetic data (users u1..u40, items i1..i30)."""
    return train_tiny_run(tmp_path_factory.mktemp("serving"))


@pytest.fixture
def make_client(served_run: Path, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Started apps (lifespan run) over the tiny run, each with a fresh event store."""
    clients: list[TestClient] = []

    def make(limits: Limits | None = None) -> TestClient:
        settings = ServiceSettings(
            served_run,
            store=tmp_path / f"events-{len(clients)}.sqlite3",
            api_keys=KEYS,
            limits=limits or Limits(),
        )
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


START_TIMEOUT_S = 90
LiveServer = Callable[..., AbstractContextManager[tuple[httpx.Client, subprocess.Popen]]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_process(
    run: Path,
    store: Path,
    log: Path,
    *,
    keys: str = "e2e-admin:admin;e2e-read:read",
    options: tuple[str, ...] = (),
) -> Iterator[tuple[httpx.Client, subprocess.Popen]]:
    """A started ``influrec serve`` (with ``options``) on a free loopback port, its output
    appended to ``log``; always killed on the way out."""
    port = free_port()
    env = {**os.environ, "INFLUREC_API_KEYS": keys}
    command = [sys.executable, "-m", "influrec.cli.main", "serve", str(run), *options]
    command += ["--host", "127.0.0.1", "--port", str(port), "--store", str(store)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"server exited early:\n{log.read_text()}"
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (
                f"no /healthz in {START_TIMEOUT_S}s:\n{log.read_text()}"
            )
            time.sleep(0.2)
        yield client, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


@pytest.fixture
def server() -> LiveServer:
    """``with server(run, store, log) as (client, process)``: a real ``influrec serve``."""
    return serve_process


def missing(reason: str, required_by: str) -> None:
    """Skip, or fail where the component is required (the variable set to 1, as in CI)."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{required_by}=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """A real PostgreSQL server of the test session's own (Debian's postgresql package)."""
    from pg_cluster import Cluster, server_bindir

    if server_bindir() is None:
        missing("PostgreSQL server not installed (Debian: postgresql)", "INFLUREC_REQUIRE_POSTGRES")
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        missing("psycopg 3 not installed (pip install -e '.[dev]')", "INFLUREC_REQUIRE_POSTGRES")
    with Cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a fresh event store lives, once per back end: an SQLite file, a PostgreSQL URL."""
    if request.param == "sqlite":
        return tmp_path / "events.sqlite3"
    return str(request.getfixturevalue("postgres_cluster").create_database())
