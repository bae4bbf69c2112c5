"""Property-based fuzzing of the real service's OpenAPI spec with schemathesis: no 5xx allowed.

    python bench/fuzz_api.py RUN_DIR [--max-examples 50]

Starts `influrec serve` on a free loopback port with an admin key, runs `st run` against its
/openapi.json with the not_a_server_error check (every operation, generated and edge-case
inputs), and exits with schemathesis's status. Needs `pip install schemathesis`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"server at {url} did not become healthy in {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--max-examples", type=int, default=50)
    args = parser.parse_args()
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    if not Path(st).exists():
        raise SystemExit("schemathesis is not installed: pip install schemathesis")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store = Path(tempfile.mkdtemp(prefix="influrec-fuzz-")) / "events.sqlite3"
    env = {**os.environ, "INFLUREC_API_KEYS": "fuzz-key:admin"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "influrec.cli.main",
            "serve",
            str(args.run),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--store",
            str(store),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(url)
        command = [
            st,
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            "Authorization: Bearer fuzz-key",
            "--max-examples",
            str(args.max_examples),
            "--workers",
            "1",
        ]
        print(
            f"command: python bench/fuzz_api.py {' '.join(sys.argv[1:])}\nrunning: {' '.join(command)}"
        )
        return subprocess.run(command, check=False, timeout=1800).returncode
    finally:
        server.kill()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
