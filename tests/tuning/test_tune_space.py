from __future__ import annotations

from pathlib import Path

import pytest

from influrec.config import load_config
from influrec.errors import InputError
from influrec.tuning.space import SearchSpace

BASE = load_config(None, ["model.d_model=64"])


def space_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_lists_are_choices_and_tables_are_ranges_typed_by_their_key(tmp_path: Path) -> None:
    path = space_file(
        tmp_path,
        """
[space]
model.d_model = [32, 64]
model.architecture = ["transformer", "gru"]
train.lr = { low = 1e-4, high = 1e-2, log = true }
model.layers = { low = 1, high = 3 }
train.weight_decay = { low = 0, high = 1 }
""",
    )
    space = SearchSpace.load(path, BASE)
    by_key = {d.key: d for d in space.dimensions}
    assert list(by_key) == [
        "model.d_model",
        "model.architecture",
        "model.layers",
        "train.lr",
        "train.weight_decay",
    ]
    assert by_key["model.d_model"].choices == (32, 64)
    assert by_key["train.lr"].log and not by_key["train.lr"].integer
    assert by_key["model.layers"].integer and (
        by_key["model.layers"].low,
        by_key["model.layers"].high,
    ) == (1, 3)
    assert not by_key["train.weight_decay"].integer  # a float key with whole-number bounds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[space]\nmodel.d_modle = [32]",
            r"unknown key 'model.d_modle' \(did you mean 'model.d_model'\?\)",
        ),
        ("[space]\nmodle.d_model = [32]", r"unknown section 'modle' \(did you mean 'model'\?\)"),
        (
            "[space]\ntrain.lr = { low = 1e-2, high = 1e-4 }",
            r"train.lr: low must be below high, got low=0.01 and high=0.0001",
        ),
        (
            "[space]\ntrain.lr = { low = 0, high = 1e-2, log = true }",
            r"train.lr: log = true needs low > 0",
        ),
        (
            "[space]\nmodel.layers = { low = 1, high = 2.5 }",
            r"model.layers: low and high must be whole numbers",
        ),
        ("[space]\nmodel.layers = { low = 1 }", r"model.layers: expected a list of values"),
        (
            "[space]\nmodel.layers = { low = 1, high = 3, step = 2 }",
            r"unknown range field\(s\) \['step'\]",
        ),
        (
            "[space]\nmodel.architecture = { low = 1, high = 2 }",
            r"model.architecture is a str key; give its choices as a list",
        ),
        ("[space]\nmodel.d_model = []", r"model.d_model: choices must be a non-empty list"),
        ("[space]\n", r"\[space\] is empty"),
        ("[model]\nd_model = [32]", r"one \[space\] table"),
        ("[space\n", r"invalid TOML"),
    ],
)
def test_bad_space_files_are_refused_naming_the_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = space_file(tmp_path, text)
    with pytest.raises(InputError, match=message) as error:
        SearchSpace.load(path, BASE)
    assert str(error.value).startswith(str(path))


def test_a_missing_space_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"space file not found: .*nowhere\.toml"):
        SearchSpace.load(tmp_path / "nowhere.toml", BASE)
