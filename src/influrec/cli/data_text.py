"""``influrec data embed-text DATA --columns title,...``: item text vectors (sentence encoder)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from influrec.cli.common import positive_int
from influrec.data.text_encoder import DEFAULT_ENCODER
from influrec.errors import InputError


def register(sub: Any) -> None:
    text = sub.add_parser(
        "embed-text",
        help="encode each item's text (titles, descriptions) into vectors for the model",
        description="Join the item table's text columns into one text per item, encode them "
        "with a pretrained sentence encoder and store the vectors beside the dataset. Items "
        "whose text did not change since the last run are not encoded again. Train with "
        "--set 'model.item_features=[\"text\"]' (or add text to the list) to use them.",
    )
    text.add_argument("dataset", type=Path, help="prepared dataset folder")
    text.add_argument(
        "--columns",
        required=True,
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        help="item-table columns, comma-separated, joined in this order (e.g. title,genres)",
    )
    text.add_argument(
        "--encoder",
        default=DEFAULT_ENCODER,
        help=f"{DEFAULT_ENCODER} (default; installed with influrec[text]) or the folder of a "
        "sentence-transformers model",
    )
    text.add_argument(
        "--texts",
        type=Path,
        default=None,
        help="a JSON object {item id: text} appended to each item's text (e.g. abstracts)",
    )
    text.add_argument("--batch-size", type=positive_int, default=64, help="texts per batch")
    text.set_defaults(
        handler=run_embed_text, setting_flags={"columns": "--columns", "encoder": "--encoder"}
    )


def read_texts(path: Path) -> dict[str, str]:
    """--texts: a JSON object of item id -> text."""
    try:
        texts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--texts {path}: not a readable JSON file ({exc})") from exc
    if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
        raise InputError(f"--texts {path}: expected a JSON object of item id -> text")
    return {str(k): v for k, v in texts.items()}


def run_embed_text(args: argparse.Namespace) -> int:
    from influrec.data.dataset import EventDataset
    from influrec.data.item_text import embed_item_text
    from influrec.data.text_encoder import SentenceEncoder

    EventDataset.load(args.dataset)  # a clear error for a folder that is not a dataset
    extra = read_texts(args.texts) if args.texts else None
    encoder = SentenceEncoder(args.encoder, batch_size=args.batch_size)
    report = embed_item_text(
        args.dataset, args.columns, encoder, extra=extra, batch_size=args.batch_size
    )
    console = Console()
    console.print(
        f"{report.items:,} items: {report.encoded:,} encoded, {report.reused:,} unchanged "
        f"since the last run, {report.without_text:,} without text"
    )
    console.print(f"{encoder.name}, {encoder.dim} numbers per item, {report.seconds:.1f} s")
    console.print(f"wrote {report.path}", soft_wrap=True)
    return 0
