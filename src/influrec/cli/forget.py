"""``influrec forget RUN --user ID --out RUN2``: a run in which the users' data no longer counts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from influrec.cli.common import add_no_progress, positive_int, progress_of
from influrec.cli.data import overwrite_hint
from influrec.unlearning.ascent import AscentSettings
from influrec.unlearning.runs import ForgetResult, forget

DEFAULTS = AscentSettings()


def register(commands: Any) -> None:
    f = commands.add_parser(
        "forget",
        help="a new run in which chosen users' training data no longer shapes the model",
        description="Writes --out: the run without the users' events, and a model that no "
        "longer reflects them. By default a fast approximate step: bounded gradient ascent on "
        "the users' training loss over the output side of the model (final LayerNorm, item "
        "embeddings, last block), with descent on a sample of other users, until the users' "
        "loss reaches that of interactions the model never trained on. --exact trains again "
        "from scratch without them (same config and seed). Either way run.json's lineage "
        "records the step, and recommend/explain refuse the users (or, with recommend "
        "--cold-start popular, serve them as new users).",
    )
    f.add_argument("run", type=Path)
    f.add_argument(
        "--user", action="append", required=True, help="a user id to forget (repeatable)"
    )
    f.add_argument("--out", type=Path, required=True, help="the new run folder")
    f.add_argument(
        "--steps", type=positive_int, default=DEFAULTS.steps, help="ascent updates at most"
    )
    f.add_argument(
        "--max-change",
        type=float,
        default=DEFAULTS.max_change,
        help="the ascent moves the updated parameters by at most this fraction of their norm",
    )
    f.add_argument(
        "--exact", action="store_true", help="train again from scratch without the users"
    )
    f.add_argument("--overwrite", action="store_true", help="replace --out if it is a run")
    f.add_argument("--json", action="store_true")
    add_no_progress(f, "show no training progress (with --exact)")
    f.set_defaults(handler=run_forget, setting_flags={"max_change": "--max-change"})


def run_forget(args: argparse.Namespace) -> int:
    if not 0 < args.max_change <= 1:
        from influrec.errors import InputError

        raise InputError(f"--max-change must be in (0, 1], got {args.max_change}")
    settings = AscentSettings(steps=args.steps, max_change=args.max_change)
    with overwrite_hint():
        result = forget(
            args.run,
            args.user,
            args.out,
            settings=settings,
            exact=args.exact,
            overwrite=args.overwrite,
            progress=progress_of(args),
        )
    if args.json:
        Console().print_json(json.dumps(_as_json(result)))
        return 0
    _print_result(result)
    return 0


def _as_json(result: ForgetResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run": str(result.out_dir),
        "users": result.users,
        "method": result.method,
        "events_removed": result.events_removed,
        "seconds": result.seconds,
    }
    if result.ascent is not None:
        a = result.ascent
        out.update(
            steps=a.steps,
            stopped=a.stopped,
            forget_loss=list(a.forget_loss),
            retain_loss=list(a.retain_loss),
            heldout_loss=a.heldout_loss,
            seen_loss=a.seen_loss,
            target_loss=a.target_loss,
            change=a.change,
        )
    return out


STOPS = {
    "target": "their loss reached the target",
    "steps": "the step limit was reached before the target",
    "retain": "the next update would have raised the other users' loss too much",
}


def _print_result(result: ForgetResult) -> None:
    console = Console(highlight=False)
    users = ", ".join(escape(u) for u in result.users)
    console.print(
        f"forgot {len(result.users)} users ({users}): {result.events_removed} events left out, "
        f"{result.method}, {result.seconds:.1f} s",
        soft_wrap=True,
    )
    a = result.ascent
    if a is not None:
        console.print(
            f"{a.steps} ascent steps ({STOPS[a.stopped]}); parameters moved by "
            f"{a.change:.2%} of their norm\n"
            f"their training loss {a.forget_loss[0]:.3f} -> {a.forget_loss[1]:.3f} nats "
            f"(target {a.target_loss:.3f}: + the generalisation gap, held-out loss "
            f"{a.heldout_loss:.3f} vs {a.seen_loss:.3f} trained on); other users' "
            f"{a.retain_loss[0]:.3f} -> {a.retain_loss[1]:.3f}"
        )
    console.print(f"wrote {result.out_dir}", soft_wrap=True)
