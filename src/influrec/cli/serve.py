"""``influrec serve RUN_DIR``: the real-time HTTP service (uvicorn)."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

from influrec.errors import InputError


def register(commands: Any) -> None:
    s = commands.add_parser(
        "serve",
        help="HTTP service: ingest events, recommend and explain in real time",
        description="API keys come from INFLUREC_API_KEYS, e.g. 'k1:read,write;k2:admin'. "
        "The live page is at /ui (it asks for a read key), the API reference at /docs.",
    )
    s.add_argument("run", type=Path, help="trained run folder")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=port_number, default=8000, help="TCP port (0: any free one)")
    s.add_argument(
        "--store",
        default=None,
        help="event store: an SQLite file (default: RUN/events.sqlite3) or a "
        "postgresql://user:password@host:port/database URL, shared by several serve processes",
    )
    s.add_argument(
        "--watch",
        action="store_true",
        help="RUN is a symbolic link (e.g. runs/current): reload whenever its target changes, "
        "validating the new run first (a refused one keeps the current model)",
    )
    s.add_argument(
        "--watch-every",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often --watch looks at the link (default 2)",
    )
    s.set_defaults(handler=run_serve)


def port_number(text: str) -> int:
    """argparse type for --port: a whole number in 0..65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {port}")
    return port


def run_serve(args: argparse.Namespace) -> int:
    from influrec.inference import Recommender
    from influrec.serving.settings import API_KEYS_ENV, ServiceSettings
    from influrec.serving.store import open_store

    if not (args.run / "run.json").exists():
        raise InputError(f"{args.run}: not a trained run (no run.json); see `influrec train`")
    if args.watch and not args.run.is_symlink():
        raise InputError(
            f"--watch: {args.run} is not a symbolic link; serve a link to the run "
            f"(ln -sfn RUN {args.run.parent / 'current'}) and point it at each new run"
        )
    if not args.watch_every > 0:
        raise InputError(f"--watch-every: expected seconds > 0, got {args.watch_every}")
    settings = ServiceSettings(
        run_dir=args.run, store=args.store, watch_s=args.watch_every if args.watch else None
    )
    if not settings.resolved_keys():
        raise InputError(
            f"no API keys: set {API_KEYS_ENV}, e.g. {API_KEYS_ENV}='k1:read,write;k2:admin'"
        )
    try:  # before uvicorn starts: its lifespan would print a bad store as a long traceback
        open_store(settings.store_location).close()
    except InputError as exc:
        raise InputError(f"--store: {exc}") from exc

    recommender = Recommender.load(args.run)  # a damaged run is one clear line, here
    import uvicorn

    from influrec.serving.app import create_app

    uvicorn.run(
        create_app(settings, recommender=recommender),
        host=args.host,
        port=args.port,
        log_config=log_config(uvicorn.config.LOGGING_CONFIG),
        access_log=False,  # the app logs requests by route template, without paths or queries
    )
    return 0


def log_config(uvicorn_config: dict[str, Any]) -> dict[str, Any]:
    """uvicorn's logging, plus influrec's loggers (access lines, startup, errors) at INFO."""
    config = copy.deepcopy(uvicorn_config)
    config["loggers"]["influrec"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
