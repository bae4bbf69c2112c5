"""A throwaway PostgreSQL server for tests and benchmarks: a fresh cluster in a temporary
folder, started on a free loopback port and removed on the way out.

Uses the server binaries of Debian's `postgresql` package (`/usr/lib/postgresql/N/bin`, or
wherever `pg_config --bindir` points). PostgreSQL refuses to run as root, so under root the
cluster is owned and run by the `postgres` system user (the package creates it).

    with Cluster() as cluster:
        url = cluster.create_database("events")  # postgresql://influrec@127.0.0.1:PORT/events
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

USER = "influrec"  # the cluster's superuser; trust authentication on loopback only


def server_bindir() -> Path | None:
    """The folder of initdb and pg_ctl, or None when PostgreSQL's server is not installed."""
    config = shutil.which("pg_config")
    if config is not None:
        out = subprocess.run([config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One PostgreSQL server of its own; a context manager."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or server_bindir()
        if found is None:
            raise FileNotFoundError("PostgreSQL server binaries not found (Debian: postgresql)")
        self.bindir = found
        self.folder = Path(tempfile.mkdtemp(prefix="influrec-pg-"))
        self.port = free_port()
        self._as_owner: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse root
            shutil.chown(self.folder, "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self._databases = 0

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as_owner, *command], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> Cluster:
        data = self.folder / "data"
        self._run(
            str(self.bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8"
        )
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "server.log"),
            "-o", options, "-w", "start",
        )  # fmt: skip
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        import psycopg

        self._databases += 1
        name = name or f"db{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "immediate",
                "stop",
            )
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def database() -> Iterator[str]:
    """A fresh cluster with one empty database: its URL."""
    with Cluster() as cluster:
        yield cluster.create_database("influrec")
