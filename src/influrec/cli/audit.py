"""``influrec audit RUN --item ITEM``: which training users push an item (fake profiles)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from influrec.cli.common import at_least, positive_int
from influrec.cli.data import overwrite_hint
from influrec.data.item_names import ItemNames
from influrec.data_influence.audit import FLAG_Z, audit_items, write_cleaned
from influrec.data_influence.tracin import DataInfluence


def register(commands: Any) -> None:
    a = commands.add_parser(
        "audit",
        help="training users ranked by how much they push chosen items (finds fake profiles)",
        description="For each training interaction, TracIn over the run's checkpoints measures "
        "how much training on it raised the chosen items for a sample of real users; each "
        "user's push is the sum over their interactions. Users far above the rest (robust "
        f"z-score over {FLAG_Z:g}) are flagged; --out writes the dataset without them.",
    )
    a.add_argument("run", type=Path)
    a.add_argument("--item", action="append", required=True, help="an item id (repeatable)")
    a.add_argument("--users", type=positive_int, default=200, help="real users sampled")
    a.add_argument("--top", type=positive_int, default=20, help="users listed")
    a.add_argument("--z", type=float, default=FLAG_Z, help="flag above this robust z-score")
    a.add_argument("--checkpoints", type=at_least(0), default=0, help="at most N (0: all)")
    a.add_argument("--seed", type=at_least(0), default=0)
    a.add_argument("--out", type=Path, default=None, help="write the data without flagged users")
    a.add_argument("--overwrite", action="store_true", help="replace --out if it is a dataset")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=run_audit, setting_flags={"item": "--item"})


def run_audit(args: argparse.Namespace) -> int:
    analysis = DataInfluence(args.run, checkpoints=args.checkpoints)
    audit = audit_items(analysis, args.item, sample_users=args.users, seed=args.seed, flag_z=args.z)
    user_ids = analysis.dataset.users.column("user_id").to_pylist()
    rows = [
        {
            "user": str(user_ids[int(u) - 1]),
            "push": float(p),
            "z": float(z),
            "interactions": int(n),
            "flagged": bool(z > args.z),
        }
        for u, p, z, n in zip(audit.users, audit.push, audit.z, audit.interactions, strict=True)
    ]
    written = None
    if args.out is not None:
        with overwrite_hint():
            written = write_cleaned(analysis, audit, args.out, overwrite=args.overwrite)
    result = {
        "items": audit.items,
        "checkpoints": len(analysis.checkpoints),
        "queried_users": audit.queried_users,
        "flagged": len(audit.flagged),
        "flag_z": args.z,
        "users": rows[: args.top],
        "cleaned_dataset": None if written is None else str(written),
        "seconds": round(audit.seconds, 2),
    }
    if args.json:
        Console().print_json(json.dumps(result))
        return 0
    _print_audit(result, ItemNames.from_items(analysis.dataset.items))
    return 0


def _print_audit(result: dict[str, Any], names: ItemNames) -> None:
    console = Console()
    items = ", ".join(escape(names.label(i)) for i in result["items"])
    console.print(
        f"who pushes {items}: TracIn over {result['checkpoints']} checkpoints, measured on "
        f"{result['queried_users']} users ({result['seconds']:.1f} s)"
    )
    table = Table(title="training users, most pushing first", title_justify="left")
    for column in ("user", "push", "robust z", "interactions", "flagged"):
        table.add_column(column, justify="left" if column == "user" else "right")
    for row in result["users"]:
        flag = "[red]yes[/red]" if row["flagged"] else ""
        table.add_row(
            escape(row["user"]),
            f"{row['push']:+.3g}",
            f"{row['z']:.1f}",
            str(row["interactions"]),
            flag,
        )
    console.print(table)
    console.print(
        f"{result['flagged']} users flagged (robust z-score above {result['flag_z']:g}); push: "
        "how much training on the user's interactions lowered the items' loss for the sampled "
        "users (checkpoint-weighted gradient products)"
    )
    if result["cleaned_dataset"]:
        console.print(
            f"wrote {result['cleaned_dataset']} without the flagged users", soft_wrap=True
        )
