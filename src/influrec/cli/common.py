"""Argument helpers shared by the commands that ask a trained run about one user."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from influrec.data.history import History
from influrec.errors import InputError
from influrec.inference import EXCLUDE_SEEN, Recommender

# What matplotlib can write; --plot names one of them by its suffix.
PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".eps")


def with_flag(error: InputError, setting_flags: Mapping[str, str]) -> str:
    """The error's message, ending with the flag that gives its setting when the command has one.

    ``setting_flags`` maps library settings (:attr:`InputError.setting`, e.g. ``"time_unit"``)
    to the command's flags (``"--time-unit"``); a command declares it with
    ``parser.set_defaults(setting_flags=...)`` and ``main`` adds the hint to the error line.
    """
    flag = setting_flags.get(error.setting or "")
    return str(error) if flag is None else f"{error}; set it with {flag}"


def _bounded(convert: Any, low: float, kind: str) -> Any:
    """argparse type: ``convert(text)`` (``kind`` names it in errors) that is >= ``low``;
    argparse reports anything else as a bad argument (exit 2)."""

    def parse(text: str) -> Any:
        try:
            number = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not number >= low:  # NaN included
            raise argparse.ArgumentTypeError(f"must be at least {low:g}, got {text}")
        return number

    parse.__name__ = f"{kind} >= {low:g}"
    return parse


def at_least(low: int) -> Any:
    """argparse type: a whole number >= ``low``."""
    return _bounded(int, low, "a whole number")


def number_at_least(low: float) -> Any:
    """argparse type: a number >= ``low``."""
    return _bounded(float, low, "a number")


positive_int = at_least(1)
"""argparse type for counts such as --k, --top, --candidates, --users."""


def share(text: str) -> float:
    """argparse type for --fraction: a number strictly between 0 and 1, e.g. 0.02."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 0.02, got {text!r}") from None
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return number


def cutoffs(text: str) -> list[int]:
    """argparse type for --ks: comma-separated positive whole numbers, e.g. ``10,50,200``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected cut-offs like 10,50,200, got {text!r}")
    return sorted({positive_int(p) for p in parts})


def plot_path(text: str) -> Path:
    """argparse type for --plot: an image file in an existing folder, by a known suffix."""
    path = Path(text)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: name the image by its type, one of {', '.join(PLOT_SUFFIXES)}"
        )
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r}: folder {str(path.parent)!r} does not exist; create it first"
        )
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give an image file name")
    return path


def add_k(parser: Any, *, default: int = 10) -> None:
    """--k: how many recommendations (clamped to the catalogue size)."""
    parser.add_argument(
        "--k",
        type=positive_int,
        default=default,
        help=f"how many recommendations (default {default}; at most the number of items)",
    )


def add_seen(parser: Any) -> None:
    """--exclude-seen (the default, as the library and the service) or --include-seen."""
    seen = parser.add_mutually_exclusive_group()
    default = " (the default)"
    seen.add_argument(
        "--exclude-seen",
        dest="exclude_seen",
        action="store_true",
        default=EXCLUDE_SEEN,
        help=f"leave out items already in the history{default if EXCLUDE_SEEN else ''}",
    )
    seen.add_argument(
        "--include-seen",
        dest="exclude_seen",
        action="store_false",
        help=f"rank items already in the history too{'' if EXCLUDE_SEEN else default}",
    )
    parser.set_defaults(setting_flags={"exclude_seen": "--include-seen"})


def add_no_progress(parser: Any, text: str = "") -> None:
    """--no-progress: no progress bar (bars are drawn on stderr when it is a terminal)."""
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help=text or "draw no progress bar (one is drawn on stderr when it is a terminal)",
    )


def progress_of(args: argparse.Namespace) -> bool | None:
    """The library's ``progress`` for a command with --no-progress: False when given, else
    None (a bar where stderr is a terminal)."""
    return False if getattr(args, "no_progress", False) else None


def add_who(parser: Any) -> Any:
    """--user U or --history FILE.json (one of them); returns the group, for more choices."""
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user id of the training data")
    who.add_argument(
        "--history", type=Path, help='JSON list of events: [{"item": ..., "behavior": ...}, ...]'
    )
    return who


def load_history(rec: Recommender, args: argparse.Namespace) -> tuple[History, list[str]]:
    """The history named by --user or --history, and the ignored events of an ad-hoc history."""
    if args.history is None:
        return known_user_history(rec, args.user, hint="give their events with --history"), []
    return rec.history_from_records(read_history_file(Path(args.history)))


def known_user_history(rec: Recommender, user_id: str, *, hint: str) -> History:
    """The stored history of ``user_id``; an unknown user, or one the run forgot
    (:func:`forgotten_step`), is an InputError ending in ``hint`` (the flags that would help,
    which the library does not know about)."""
    if str(user_id) not in rec.user_index:
        raise InputError(f"unknown user {user_id!r}: not in the run's dataset; {hint}")
    step = forgotten_step(rec, user_id)
    if step is not None:
        raise InputError(
            f"user {user_id!r} was forgotten (`influrec forget` from {step.get('parent')} at "
            f"{step.get('at')}): this run holds none of their data and serves them only as a "
            f"new user; {hint}"
        )
    return rec.user_history(user_id)


def forgotten_step(rec: Recommender, user_id: str) -> dict[str, Any] | None:
    """The lineage step that forgot ``user_id`` (``influrec forget``), or None."""
    from influrec.unlearning.runs import forgotten_users

    return forgotten_users(rec.info).get(str(user_id))


def read_history_file(path: Path) -> list[Any]:
    """The JSON list of events in ``path`` (for --history), or a clear InputError."""
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); expected a list of events "
            '[{"item": ..., "behavior": ..., "timestamp": ..., "value": ...}, ...]'
        ) from exc
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply; expected a list of events") from None
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON list of events, got {type(records).__name__}")
    return records
