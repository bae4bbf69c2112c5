"""``influrec serve --store`` refuses what is not a usable event store with one ``error:``
line and exit 2, before uvicorn starts (run as real processes, all at once)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from influrec.errors import InputError
from influrec.serving.sqlite_store import SqliteStore
from influrec.serving.store import StoredEvent


def truncated_store(path: Path) -> Path:
    store = SqliteStore(path)
    store.append([StoredEvent(f"user-{n}", "i1" * 50, "buy", n, 1.0) for n in range(3000)])
    store.close()  # the last connection checkpoints the log into the file
    size = path.stat().st_size
    assert size > 100_000 and not Path(f"{path}-wal").exists()
    with path.open("r+b") as f:
        f.truncate(size // 2)
    return path


def bad_stores(root: Path) -> dict[str, Path]:
    stores = {
        "random bytes": root / "random.sqlite3",
        "a text file": root / "notes.txt",
        "a folder": root / "folder",
        "a truncated store": truncated_store(root / "truncated.sqlite3"),
        "another app's database": root / "other.sqlite3",
        "events with other columns": root / "columns.sqlite3",
    }
    stores["random bytes"].write_bytes(os.urandom(8192))
    stores["a text file"].write_text("user,item\nu1,i1\n" * 100)
    stores["a folder"].mkdir()
    with sqlite3.connect(stores["another app's database"]) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    with sqlite3.connect(stores["events with other columns"]) as db:
        db.execute("CREATE TABLE events (id INTEGER, payload TEXT)")
        db.execute("CREATE TABLE erased_users (user_id TEXT PRIMARY KEY, erased_at INTEGER)")
    return stores


def test_serve_refuses_a_bad_store_with_one_error_line(served_run: Path, tmp_path: Path) -> None:
    stores = bad_stores(tmp_path)
    before = {name: (p.stat().st_size if p.is_file() else None) for name, p in stores.items()}
    env = {**os.environ, "INFLUREC_API_KEYS": "k:read"}
    command = [sys.executable, "-m", "influrec.cli.main", "serve", str(served_run), "--port", "1"]
    processes = {
        name: subprocess.Popen(
            [*command, "--store", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in stores.items()
    }
    for name, process in processes.items():
        out, err = process.communicate(timeout=120)
        lines = [line for line in (out + err).splitlines() if line.strip()]
        assert process.returncode == 2, (name, out, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, lines)
        assert str(stores[name]) in lines[0] and "event store" in lines[0], (name, lines)
    # nothing was written into what was refused
    after = {name: (p.stat().st_size if p.is_file() else None) for name, p in stores.items()}
    assert after == before


def test_store_refusals_say_what_is_wrong(tmp_path: Path) -> None:
    stores = bad_stores(tmp_path)
    expected = {
        "random bytes": "not a database",
        "a text file": "not a database",
        "a folder": "unable to open",
        "a truncated store": "malformed|damaged",
        "another app's database": r"other tables \(customers\)",
        "events with other columns": r"columns \['id', 'payload'\]",
    }
    for name, path in stores.items():
        with pytest.raises(InputError, match=expected[name]):
            SqliteStore(path)
    # a new file, and a store the service wrote, open fine
    SqliteStore(tmp_path / "new" / "events.sqlite3").close()
    SqliteStore(tmp_path / "new" / "events.sqlite3").close()
