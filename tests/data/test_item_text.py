"""Item text vectors: documents from the item table, a real sentence encoder, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from influrec.cli.main import main
from influrec.data.dataset import EventDataset
from influrec.data.item_text import embed_item_text, item_documents, load_item_text
from influrec.errors import InputError


def test_documents_join_columns_and_lists_and_skip_empty_cells() -> None:
    items = pa.table(
        {
            "item_idx": [2, 1, 3],
            "item_id": ["b", "a", "c"],
            "title": ["Heat (1995)", "Toy Story (1995)", None],
            "genres": ["Action|Crime", "", " "],
        }
    )
    assert item_documents(items, ["title", "genres"]) == [
        None,
        "Toy Story (1995)",
        "Heat (1995). Action, Crime",
        None,
    ]
    with pytest.raises(
        InputError, match=r"no column plot; its columns are title, genres"
    ) as caught:
        item_documents(items, ["title", "plot"])
    assert caught.value.setting == "columns"


def test_the_encoder_places_related_titles_together(sentence_encoder) -> None:
    vectors = sentence_encoder.encode(
        ["Toy Story (1995). Animation", "Toy Story 2 (1999). Animation", "Schindler's List (1993)"]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def synth(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    assert main(["data", "synth", "--out", str(folder), "--users", "30", "--items", "25"]) == 0
    return folder


def retitle(folder: Path, item_idx: int, title: str) -> None:
    """Give every item a title column, then change one item's title."""
    items = pq.read_table(folder / "items.parquet")
    titles = [f"product {i} in category {c}" for i, c in zip(
        items.column("item_id").to_pylist(), items.column("category").to_pylist(), strict=True
    )]  # fmt: skip
    titles[item_idx - 1] = title
    if "title" in items.column_names:
        items = items.drop_columns(["title"])
    pq.write_table(items.append_column("title", pa.array(titles)), folder / "items.parquet")


def test_embedding_is_stored_reloaded_and_only_changed_items_are_encoded_again(
    tmp_path: Path, sentence_encoder
) -> None:
    folder = synth(tmp_path)
    retitle(folder, 3, "a red running shoe")
    first = embed_item_text(folder, ["title"], sentence_encoder, batch_size=8)
    dataset = EventDataset.load(folder)
    assert first.encoded == dataset.n_items == 25 and first.reused == 0
    text = dataset.item_text
    assert text is not None and text.vectors.shape == (26, 384) and text.has_text[1:].all()
    assert not text.vectors[0].any() and text.encoder == "all-MiniLM-L6-v2"

    retitle(folder, 3, "a blue winter coat")
    second = embed_item_text(folder, ["title"], sentence_encoder, batch_size=8)
    assert (second.encoded, second.reused) == (1, 24)
    again = load_item_text(folder, 25)
    assert again is not None
    unchanged = np.r_[1:3, 4:26]
    np.testing.assert_array_equal(again.vectors[unchanged], text.vectors[unchanged])
    fresh = sentence_encoder.encode(["a blue winter coat"])[0]
    np.testing.assert_allclose(again.vectors[3], fresh, atol=1e-6)

    third = embed_item_text(folder, ["title", "category"], sentence_encoder)
    assert third.encoded == 25  # other columns: other documents, nothing reused

    copy = EventDataset.load(folder).save(tmp_path / "copy")  # e.g. a cleaned dataset
    kept = load_item_text(copy, 25)
    assert kept is not None and kept.columns == ("title", "category")
    np.testing.assert_array_equal(kept.vectors, load_item_text(folder, 25).vectors)


def test_cli_embeds_and_a_text_model_trains_and_recommends(
    tmp_path: Path, sentence_encoder, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    folder = synth(tmp_path)
    monkeypatch.setenv("INFLUREC_CACHE", str(sentence_encoder.folder.parent))
    assert main(["data", "embed-text", str(folder), "--columns", "category"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "25 items: 25 encoded" in out and "item_text.safetensors" in out
    run = tmp_path / "run"
    settings = ['model.item_features=["text","category"]', "model.id_embeddings=false"]
    settings += ["model.d_model=16", "train.epochs=1"]
    argv = ["train", str(folder), "--out", str(run), "--no-progress"]
    assert main([*argv, *(p for s in settings for p in ("--set", s))]) == 0
    capsys.readouterr()
    # content only: every item is embedded as an untouched item would be, so all are "new"
    assert main(["recommend", str(run), "--user", "u1", "--k", "3", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["recommendations"]) == 3
    assert all(r["new_item"] is True for r in answer["recommendations"])
    assert main(["recommend", str(run), "--user", "u1", "--k", "3"]) == 0
    table = " ".join(capsys.readouterr().out.split())
    assert "(new)" in table and "recommended from its text" in table


def test_training_with_text_but_no_vectors_says_how_to_make_them(tmp_path: Path, capsys) -> None:
    folder = synth(tmp_path)
    argv = ["train", str(folder), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*argv, "--set", 'model.item_features=["text"]']) == 2
    err = capsys.readouterr().err
    assert "no item text vectors" in err and "embed-text" in err


def test_unknown_encoder_is_refused_with_the_choices(tmp_path: Path, capsys) -> None:
    folder = synth(tmp_path)
    assert main(["data", "embed-text", str(folder), "--columns", "category", "--encoder", "x"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown encoder 'x'" in err and "all-MiniLM-L6-v2" in err and "--encoder" in err


def test_extra_texts_follow_the_columns_and_bad_files_are_named(tmp_path: Path, capsys) -> None:
    items = pa.table({"item_idx": [1, 2], "item_id": ["7", "8"], "title": ["Heat", None]})
    extra = {"7": "A crime film.", "8": " An abstract only. ", "9": "not in the table"}
    assert item_documents(items, ["title"], extra) == [
        None,
        "Heat. A crime film.",
        "An abstract only.",
    ]
    folder = synth(tmp_path)
    bad = tmp_path / "texts.json"
    bad.write_text('["not", "an", "object"]')
    argv = ["data", "embed-text", str(folder), "--columns", "category", "--texts", str(bad)]
    assert main(argv) == 2
    assert "expected a JSON object of item id -> text" in capsys.readouterr().err
