"""The ``influrec`` command: parses arguments, calls the library, formats the answer."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from influrec import __version__
from influrec.cli import (
    audit,
    data,
    data_influence,
    demo,
    forget,
    influence,
    model,
    report,
    runs,
    serve,
    tune,
    update,
    whynot,
)
from influrec.cli.common import with_flag
from influrec.errors import InputError
from influrec.runtime import keep_freed_memory

EXIT_INPUT_ERROR = 2
EXIT_BUG = 70  # EX_SOFTWARE: an internal error
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a closed pipe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="influrec",
        description="Behaviour-sequence recommendation with measured influence.",
    )
    parser.add_argument("--version", action="version", version=f"influrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data.register(commands)
    model.register(commands)
    update.register(commands)
    influence.register(commands)
    whynot.register(commands)
    data_influence.register(commands)
    audit.register(commands)
    forget.register(commands)
    report.register(commands)
    demo.register(commands)
    serve.register(commands)
    tune.register(commands)
    runs.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad argument (argparse printed it)
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT_ERROR
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    keep_freed_memory()
    try:
        return int(args.handler(args) or 0)
    except InputError as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[red]error:[/red] {escape(with_flag(exc, getattr(args, 'setting_flags', {})))}"
        )
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:  # Ctrl-C: the user's choice, not a bug
        Console(stderr=True, highlight=False).print("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`influrec ... | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception:
        # Not an input error: a bug. Show it as one, with its traceback.
        traceback.print_exc()
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[red]internal error:[/red] this is a bug in influrec {__version__}, not a problem "
            "with your input; please report it with the traceback above."
        )
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
