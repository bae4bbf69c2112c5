from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

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
