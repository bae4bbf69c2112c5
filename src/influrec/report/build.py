"""``write_report``: one self-contained HTML page about a trained run.

    from influrec.report import write_report
    write_report("runs/ml-100k", "report.html", users=3)

The page holds the data, the training curves, accuracy against the baselines, how much each
behaviour type drives the recommendations, a card per user, the faithfulness curves and,
for a run with checkpoints, the most harmful training interactions. Plots are inline SVG; the
page loads nothing from anywhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from influrec import __version__
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.progress import steps
from influrec.report.checks import faithfulness_section, harmful_section
from influrec.report.html import Section, page
from influrec.report.sections import (
    accuracy_section,
    behaviour_shares,
    data_section,
    training_section,
)
from influrec.report.users import choose_users, users_section

log = logging.getLogger(__name__)


def check_report_path(out: Path) -> Path:
    """``out`` as a file to write: its folder must exist and it must not be a folder."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"{out} is a folder; name the HTML file to write", setting="out")
    if not out.parent.is_dir():
        raise InputError(
            f"{out}: folder {out.parent} does not exist; create it first", setting="out"
        )
    return out


def known_users(rec: Recommender, user_ids: Sequence[str]) -> list[str]:
    """``user_ids`` as strings, each checked to be a user of the run's dataset."""
    for user in user_ids:
        if str(user) not in rec.user_index:
            raise InputError(f"unknown user {user!r}: not in the run's dataset", setting="user")
    return [str(u) for u in user_ids]


def write_report(
    run_dir: Path | str,
    out: Path | str,
    *,
    users: int = 5,
    user_ids: Sequence[str] = (),
    seed: int = 0,
    share_users: int = 20,
    faithfulness_users: int = 10,
    training_data: bool = True,
    checkpoints: int = 1,
) -> Path:
    """Write the report of ``run_dir`` into the HTML file ``out`` and return its path.

    Cards for ``user_ids``, or else for ``users`` users drawn with ``seed``; the behaviour
    shares over ``share_users`` users and the faithfulness curves over ``faithfulness_users``
    (both drawn with ``seed``); the harmful training interactions when ``training_data`` and
    the run kept checkpoints (TracIn over at most ``checkpoints`` of them, 0: all; one, the
    last, by default: a pass over every training interaction per checkpoint). Raises
    InputError for a missing folder or an unknown user before any work.
    """
    started = time.perf_counter()
    out = check_report_path(Path(out))
    run_dir = Path(run_dir)
    rec = Recommender.load(run_dir)
    cards = known_users(rec, user_ids) if user_ids else choose_users(rec, users, seed=seed)
    builders: list[tuple[str, Callable[[], Section]]] = [
        ("data", lambda: data_section(rec)),
        ("training", lambda: training_section(run_dir, rec)),
        ("accuracy", lambda: accuracy_section(run_dir)[0]),
        (
            "behaviour types",
            lambda: behaviour_shares(rec, choose_users(rec, share_users, seed=seed)),
        ),
        ("users", lambda: users_section(rec, cards)),
        ("faithfulness", lambda: faithfulness_section(rec, users=faithfulness_users, seed=seed)),
        (
            "training data",
            lambda: harmful_section(run_dir, checkpoints=checkpoints, enabled=training_data),
        ),
    ]
    sections = []
    with steps(len(builders), "report sections") as bar:
        for name, build in builders:
            begun = time.perf_counter()
            sections.append(build())
            log.info("report: %s in %.1f s", name, time.perf_counter() - begun)
            bar.advance()
    seconds = time.perf_counter() - started
    out.write_text(
        page(f"influrec report: {run_dir.name}", _intro(run_dir, rec, seconds), sections)
    )
    return out


def _intro(run_dir: Path, rec: Recommender, seconds: float) -> str:
    info = rec.info
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    return (
        f'<p class="small">Run folder {escape(str(run_dir.resolve()))}: a '
        f"{escape(info.config.model.architecture)} model of influrec "
        f"{escape(info.influrec_version or '?')}. Written {now} UTC by influrec {__version__} "
        f"in {seconds:.1f} s. Everything is in this one file: it loads nothing from anywhere. "
        "Items are named by their titles where the data has them; hover a cell, a bar or a "
        "point for its details.</p>"
    )
