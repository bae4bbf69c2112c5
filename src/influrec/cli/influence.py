"""``influrec explain | counterfactual | whatif | influential-actions | faithfulness``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from influrec.cli.batch import add_all_users, run_all_users
from influrec.cli.common import (
    add_k,
    add_no_progress,
    add_seen,
    add_who,
    load_history,
    plot_path,
    positive_int,
    progress_of,
)
from influrec.cli.muting import add_mutes, any_mutes, muted_history, refuse_mutes_for_all_users
from influrec.cli.plots import effects_figure, groups_figure, save, unit_words
from influrec.data.times import readable_time
from influrec.errors import InputError
from influrec.inference import Recommender
from influrec.influence import api
from influrec.influence.counterfactual import Edit
from influrec.influence.groups import GROUPINGS
from influrec.influence.measurement import MEASURES
from influrec.influence.methods import METHODS, explaining_methods
from influrec.influence.results import ItemExplanation, Result


def register(commands: Any) -> None:
    _register_explain(commands)
    _register_counterfactual(commands)
    _register_whatif(commands)
    _register_influential_actions(commands)
    _register_faithfulness(commands)


def _register_explain(commands: Any) -> None:
    e = commands.add_parser("explain", help="effect of every past event on each recommendation")
    e.add_argument("run", type=Path)
    add_all_users(add_who(e), e)
    add_k(e)
    add_seen(e)
    e.add_argument("--method", choices=explaining_methods(), default="loo")
    e.add_argument(
        "--measure",
        choices=list(MEASURES),
        default="margin",
        help="what is explained (default: rank margin at k)",
    )
    e.add_argument(
        "--groups",
        choices=list(GROUPINGS),
        default=None,
        help="effects of whole behaviour types or time windows (exact group Shapley)",
    )
    e.add_argument(
        "--plot",
        type=plot_path,
        default=None,
        help="draw the events x recommendations heatmap, or with --groups the groups' Shapley "
        "values, into this image (.png, .svg, .pdf...)",
    )
    e.add_argument("--json", action="store_true")
    add_mutes(e)
    add_no_progress(e)
    e.set_defaults(handler=run_explain)


def _register_counterfactual(commands: Any) -> None:
    c = commands.add_parser(
        "counterfactual",
        help="smallest set of past events whose removal drops an item out of the top k",
    )
    c.add_argument("run", type=Path)
    add_who(c)
    c.add_argument("--item", required=True)
    add_k(c)
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=run_counterfactual)


def _register_whatif(commands: Any) -> None:
    w = commands.add_parser("whatif", help="top-k after hypothetical behaviours")
    w.add_argument("run", type=Path)
    add_who(w)
    w.add_argument(
        "--add", action="append", default=[], metavar="ITEM:BEHAVIOR", help="append an event"
    )
    w.add_argument(
        "--remove",
        action="append",
        default=[],
        type=int,
        metavar="POS",
        help="remove the event at this position",
    )
    add_k(w)
    add_seen(w)
    w.add_argument("--json", action="store_true")
    w.set_defaults(handler=run_whatif)


def _register_influential_actions(commands: Any) -> None:
    a = commands.add_parser(
        "influential-actions", help="next actions that would change the recommendations most"
    )
    a.add_argument("run", type=Path)
    add_who(a)
    a.add_argument(
        "--candidates",
        type=positive_int,
        default=100,
        help="top items considered (x every behaviour)",
    )
    add_k(a)
    a.add_argument("--top", type=positive_int, default=10, help="actions listed")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=run_influential_actions)


def _register_faithfulness(commands: Any) -> None:
    f = commands.add_parser(
        "faithfulness", help="how faithful each explanation method is to the model"
    )
    f.add_argument("run", type=Path)
    f.add_argument(
        "--methods", default="loo,ig,attention,random", help=f"comma-separated: {','.join(METHODS)}"
    )
    f.add_argument("--users", type=positive_int, default=500, help="users sampled (seeded)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--json", action="store_true")
    add_no_progress(f)
    f.set_defaults(handler=run_faithfulness)


def _emit(
    args: argparse.Namespace, result: Result, unknown: list[str], extra: dict | None = None
) -> bool:
    """Print JSON (with the ``extra`` fields) when asked; returns True when done."""
    payload = {**result.to_dict(), **(extra or {})}
    if unknown:
        payload["unknown"] = unknown
    if args.json:
        Console().print_json(json.dumps(payload))
        return True
    for message in unknown:
        Console(stderr=True).print(f"[yellow]ignored[/yellow] {message}")
    if extra and "muted_events" in extra:
        Console(stderr=True).print(f"muted: {extra['muted_events']} events left out")
    return False


def run_explain(args: argparse.Namespace) -> int:
    if args.all_users:
        refuse_mutes_for_all_users(args)
        return run_all_users(
            args,
            "explain",
            k=args.k,
            method=args.method,
            measure=args.measure,
            exclude_seen=args.exclude_seen,
        )
    rec = Recommender.load(args.run)
    history, unknown = load_history(rec, args)
    history, muted = muted_history(rec, history, args)
    extra = {"muted_events": muted} if any_mutes(args) else {}
    if args.groups is not None:
        return _explain_groups(args, rec, history, unknown)
    result = api.explain(
        rec,
        history,
        k=args.k,
        method=args.method,
        measure=args.measure,
        exclude_seen=args.exclude_seen,
        progress=progress_of(args),
    )
    if args.plot is not None:
        save(effects_figure(result, who=_who(args), label=rec.item_label), args.plot)
    if _emit(args, result, unknown, extra):
        return _wrote(args)
    console = Console(soft_wrap=True)
    if result.note:
        console.print(f"[yellow]note:[/yellow] {result.note}")
    if result.unit:
        console.print(f"unit: {escape(result.unit)}")
    for r in result.recommendations:
        _print_explanation(console, rec, r, measure=args.measure, history_events=len(history))
    console.print(seen_words(result.exclude_seen))
    return _wrote(args)


def seen_words(exclude_seen: bool) -> str:
    """The line that says which seen-items convention ranked the items."""
    if exclude_seen:
        return "items already in the history are not recommended (--include-seen ranks them)"
    return "items already in the history are ranked like any other (--include-seen)"


def _who(args: argparse.Namespace) -> str:
    """Whose history a plot explains: ``user 42`` or ``the history in events.json``."""
    return f"user {args.user}" if args.history is None else f"the history in {args.history.name}"


def _wrote(args: argparse.Namespace) -> int:
    """Say where --plot wrote its image (on stderr under --json, whose stdout is JSON); 0."""
    if args.plot is not None:
        Console(stderr=args.json, soft_wrap=True, highlight=False).print(
            f"plot written to {escape(str(args.plot))}"
        )
    return 0


def window_words(seen: int, total: int, shown: int) -> str:
    """``the last 50 of 183 events; 8 shown``: how much of the history the model saw."""
    covered = f"all {total} events" if seen >= total else f"the last {seen} of {total} events"
    return f"{covered}; {min(shown, seen)} shown"


def _print_explanation(
    console: Console, rec: Recommender, r: ItemExplanation, *, measure: str, history_events: int
) -> None:
    shown = 8
    if r.sentence:
        console.print(f"[bold]{escape(r.sentence)}[/bold]")
    console.print(
        f"effects in {unit_words(measure)}; {window_words(len(r.events), history_events, shown)}"
    )
    label = escape(rec.item_label(r.item))
    table = Table(title=f"#{r.rank} {label} (score {r.score:.3f}); {r.measurement} = {r.value:.3f}")
    errors = any(e.standard_error is not None for e in r.events)
    columns = ["position", "item", "behavior", "time (UTC)", "effect"]
    for name in [*columns, "± std. error"] if errors else columns:
        table.add_column(
            name, justify="left" if name in ("item", "behavior", "time (UTC)") else "right"
        )
    for e in sorted(r.events, key=lambda e: -abs(e.effect))[:shown]:
        cells = [str(e.position), escape(rec.item_label(e.item)), e.behavior]
        cells += [readable_time(e.timestamp), f"{e.effect:+.4f}"]
        if errors:
            cells.append("n/a" if e.standard_error is None else f"{e.standard_error:.4f}")
        table.add_row(*cells)
    console.print(table)
    for line in method_lines(r):
        console.print(line)


def method_lines(r: ItemExplanation) -> list[str]:
    """What a method says about its own accuracy: integrated gradients' completeness gap,
    the Shapley permutations sampled."""
    lines = []
    if r.completeness_gap is not None and r.baseline_value is not None:
        lines.append(
            f"completeness gap {r.completeness_gap:.4f}: the effects sum to "
            f"{sum(e.effect for e in r.events):+.4f}, the measurement moves "
            f"{r.value - r.baseline_value:+.4f} from the baseline ({r.steps} steps; "
            "a larger gap asks for more steps)"
        )
    if r.permutations is not None:
        lines.append(
            f"Shapley values from {r.permutations} sampled permutations; "
            "± is the standard error of each estimate"
        )
    return lines


def _explain_groups(
    args: argparse.Namespace, rec: Recommender, history: Any, unknown: list[str]
) -> int:
    result = api.explain_groups(
        rec,
        history,
        by=args.groups,
        k=args.k,
        measure=args.measure,
        exclude_seen=args.exclude_seen,
    )
    if args.plot is not None:
        save(groups_figure(result, who=_who(args), label=rec.item_label), args.plot)
    if _emit(args, result, unknown):
        return _wrote(args)
    console = Console(soft_wrap=True)
    console.print(f"values in {unit_words(args.measure)}")
    for r in result.recommendations:
        title = f"#{r.rank} {escape(rec.item_label(r.item))}: {args.measure} {r.value:.3f}"
        table = Table(title=f"{title} (no events: {r.empty_value:.3f})")
        for name in ("group", "events", "leave-group-out", "Shapley"):
            table.add_column(name, justify="left" if name == "group" else "right")
        for g in r.groups:
            table.add_row(g.group, str(g.events), f"{g.leave_group_out:+.4f}", f"{g.shapley:+.4f}")
        console.print(table)
    console.print(seen_words(result.exclude_seen))
    return _wrote(args)


def run_counterfactual(args: argparse.Namespace) -> int:
    rec = Recommender.load(args.run)
    history, unknown = load_history(rec, args)
    result = api.counterfactual(rec, history, args.item, k=args.k)
    if _emit(args, result, unknown):
        return 0
    console = Console(soft_wrap=True)
    item = escape(rec.item_label(result.item))
    if not result.valid or not result.size:
        console.print(f"no counterfactual set for {item}: {result.reason or 'none found'}")
        return 0
    removed = ", ".join(
        f"#{e.position} {escape(rec.item_label(e.item))}" for e in result.removed_events
    )
    console.print(
        f"without these {result.size} events ({removed}), {item} drops from rank "
        f"{result.original_rank} to {result.new_rank} (out of the top {args.k}); "
        f"verified by re-scoring, {result.evaluated} histories scored "
        f"in {result.seconds:.2f} s"
    )
    if result.reason:
        console.print(f"[yellow]note:[/yellow] {result.reason}")
    return 0


def _parse_edits(rec: Recommender, add: Sequence[str], remove: Sequence[int]) -> list[Edit]:
    """``add`` entries ``ITEM:BEHAVIOR`` (behaviour optional), ``remove`` positions."""
    edits = [Edit("remove", position=int(p)) for p in remove]
    default = next(iter(rec.behavior_index.values()))
    for text in add:
        item, _, behavior = text.partition(":")
        b = rec.behavior_index.get(behavior, None) if behavior else default
        if b is None:
            raise InputError(
                f"--add {text!r}: unknown behaviour {behavior!r}; "
                f"known: {', '.join(rec.behavior_index)}"
            )
        edits.append(Edit("add", item=api.item_index(rec, item), behavior=b))
    return edits


def run_whatif(args: argparse.Namespace) -> int:
    rec = Recommender.load(args.run)
    history, unknown = load_history(rec, args)
    edits = _parse_edits(rec, args.add, args.remove)
    result = api.whatif(rec, history, edits, k=args.k, exclude_seen=args.exclude_seen)
    if _emit(args, result, unknown):
        return 0
    table = Table(title=f"top {args.k}: Jaccard {result.jaccard:.2f}, RBO {result.rbo:.2f}")
    for name in ("rank", "before", "after", "rank change of 'after' item"):
        table.add_column(name)
    for i, (old, new) in enumerate(zip(result.before, result.after, strict=True)):
        change = result.rank_changes[new]
        table.add_row(
            str(i + 1),
            escape(rec.item_label(old)),
            escape(rec.item_label(new)),
            f"{change.before} -> {change.after}",
        )
    Console().print(table)
    return 0


def run_influential_actions(args: argparse.Namespace) -> int:
    rec = Recommender.load(args.run)
    history, unknown = load_history(rec, args)
    result = api.influential_actions(
        rec, history, candidates=args.candidates, k=args.k, top=args.top
    )
    if _emit(args, result, unknown):
        return 0
    table = Table(
        title=f"next actions that would change the top {args.k} most ({result.candidates} tried)"
    )
    for name in ("item", "behavior", "churn (1 - Jaccard)", "rank movement"):
        table.add_column(name)
    for a in result.actions:
        table.add_row(
            escape(rec.item_label(a.item)), a.behavior, f"{a.churn:.2f}", f"{a.rank_movement:.0f}"
        )
    Console().print(table)
    return 0


def run_faithfulness(args: argparse.Namespace) -> int:
    rec = Recommender.load(args.run)
    methods = [m for m in args.methods.split(",") if m]
    report = api.faithfulness_report(
        rec, methods, users=args.users, seed=args.seed, progress=progress_of(args)
    )
    if args.json:
        Console().print_json(json.dumps(report.to_dict()))
        return 0
    metrics = report.metrics
    rows = ["DEL@1", "DEL@5", "INS@1", "INS@5", "POS@10,1", "POS@10,5", "CDCG@1", "CDCG@5"]
    rows += ["DEL-AUC", "INS-AUC"]
    table = Table(title=f"faithfulness over {report.users} users (explaining each top-1 item)")
    table.add_column("metric")
    for method in metrics:
        table.add_column(method, justify="right")
    for row in rows:
        table.add_row(row, *(f"{values[row]:.4f}" for values in metrics.values()))
    console = Console(soft_wrap=True)
    console.print(table)
    console.print("lower is more faithful for DEL, POS, CDCG and DEL-AUC; higher for INS, INS-AUC")
    for method, found in (report.planted_cause or {}).items():
        console.print(
            f"planted cause recovered by {method}: "
            f"precision@1 {found.precision_at_1:.3f} ({found.cases} cases)"
        )
    return 0
