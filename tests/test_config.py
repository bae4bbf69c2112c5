from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from influrec.config import (
    ConfigError,
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    config_to_toml,
    load_config,
    save_config,
)
from influrec.errors import InputError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = load_config()
    assert config == ExperimentConfig()
    assert config.model == ModelConfig()
    assert (config.model.architecture, config.model.d_model, config.model.heads) == (
        "transformer",
        64,
        2,
    )
    assert (config.train.lr, config.train.loss, config.train.monitor) == (1e-3, "ce", "NDCG@10")
    assert config.train.bf16 is True
    assert config.data.split == "leave_one_out"
    assert config.eval.ks == (1, 5, 10, 20, 50)
    assert config.eval.mask_seen is False


def test_config_error_is_an_input_error() -> None:
    assert issubclass(ConfigError, InputError)
    assert not issubclass(ConfigError, ValueError)  # a ValueError elsewhere is a bug


def test_file_values_apply_and_missing_keys_keep_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[model]\nlayers = 3\nkind = "gru"\n\n[eval]\nks = [5, 10]\n')
    config = load_config(path)
    assert config.model.layers == 3
    assert config.model.architecture == "gru"  # `kind`, the old name, still loads
    assert config.eval.ks == (5, 10)
    assert config.model.d_model == 64
    assert config.train == TrainConfig()


def test_override_wins_over_file_and_later_override_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "[model]\nlayers = 3\nheads = 4\n[train]\nlr = 0.01\n")
    config = load_config(path, ["model.layers=4", "train.lr=3e-4", "train.lr=5e-4"])
    assert config.model.layers == 4
    assert config.model.heads == 4  # untouched file value stays
    assert config.train.lr == 5e-4


@pytest.mark.parametrize(
    ("override", "section", "key", "expected"),
    [
        ("model.layers=4", "model", "layers", 4),
        ("train.lr=3e-4", "train", "lr", 3e-4),
        ("train.bf16=false", "train", "bf16", False),
        ("model.use_value=true", "model", "use_value", True),
        ("eval.ks=[1,10,50]", "eval", "ks", (1, 10, 50)),
        ("eval.ks = [ 10 ]", "eval", "ks", (10,)),
        ("train.loss=sampled", "train", "loss", "sampled"),
        ('train.loss="bce"', "train", "loss", "bce"),
        ("model.architecture=my-model", "model", "architecture", "my-model"),
        ("model.architecture=true", "model", "architecture", "true"),
        ("train.monitor=HR@10", "train", "monitor", "HR@10"),
    ],
)
def test_override_values_are_converted(
    override: str, section: str, key: str, expected: object
) -> None:
    value = getattr(getattr(load_config(overrides=[override]), section), key)
    assert value == expected
    assert type(value) is type(expected)


def test_float_fields_accept_integers_and_store_floats(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[train]\nlr = 1\nmax_minutes = 30\n"))
    assert config.train.lr == 1.0 and type(config.train.lr) is float
    assert type(config.train.max_minutes) is float
    assert type(load_config(overrides=["model.dropout=0"]).model.dropout) is float


def test_list_becomes_tuple_in_direct_construction() -> None:
    assert EvalConfig(ks=[1, 2]).ks == (1, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("toml", "key", "expected", "given"),
    [
        ("[model]\nlayers = true", "model.layers", "int", "True"),
        ("[model]\nlayers = 4.0", "model.layers", "int", "4.0"),
        ('[model]\nlayers = "4"', "model.layers", "int", "'4'"),
        ('[train]\nlr = "fast"', "train.lr", "float", "'fast'"),
        ("[train]\nlr = true", "train.lr", "float", "True"),
        ("[train]\nbf16 = 1", "train.bf16", "bool", "1"),
        ("[model]\narchitecture = 3", "model.architecture", "str", "3"),
        ("[eval]\nks = 10", "eval.ks", "list of int", "10"),
        ('[eval]\nks = [1, "5"]', "eval.ks", "list of int", "[1, '5']"),
        ("[eval]\nks = [1, true]", "eval.ks", "list of int", "[1, True]"),
    ],
)
def test_wrong_types_name_key_expected_type_and_value(
    tmp_path: Path, toml: str, key: str, expected: str, given: str
) -> None:
    path = write(tmp_path, toml + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: expected {expected}")
    assert f"got {given}" in message


def test_wrong_type_in_override_names_the_override() -> None:
    with pytest.raises(ConfigError, match=r"override 'train.bf16=1': train.bf16: expected bool"):
        load_config(overrides=["train.bf16=1"])
    with pytest.raises(ConfigError, match=r"'four' is not a TOML value; model.layers expects int"):
        load_config(overrides=["model.layers=four"])


def test_wrong_type_in_direct_construction() -> None:
    with pytest.raises(ConfigError, match=r"model\.layers: expected int, got '2'"):
        ModelConfig(layers="2")  # type: ignore[arg-type]


def test_unknown_key_lists_valid_keys_and_suggests_the_close_one(tmp_path: Path) -> None:
    path = write(tmp_path, "[model]\nlayer = 4\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: unknown key 'model.layer'")
    assert "did you mean 'model.layers'?" in message
    valid = ", ".join(ModelConfig.model_fields)
    assert valid.startswith("architecture, activation, max_len, d_model, layers, heads,")
    assert message.endswith(f"valid keys in [model]: {valid}")


def test_the_old_name_of_architecture_loads_but_not_beside_the_new_one() -> None:
    assert ModelConfig(kind="cnn") == ModelConfig(architecture="cnn")
    with pytest.raises(ConfigError, match=r"model\.kind is the old name of model\.architecture"):
        ModelConfig(kind="cnn", architecture="gru")


def test_unknown_key_in_override() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=["train.learning_rat=1e-3"])
    message = str(info.value)
    assert message.startswith("override 'train.learning_rat=1e-3': unknown key")
    assert "valid keys in [train]: epochs, batch_size, lr," in message
    with pytest.raises(ConfigError, match=r"unknown key 'eval\.zzz'; valid keys in \[eval\]"):
        load_config(overrides=["eval.zzz=1"])  # nothing close: no suggestion


def test_unknown_key_in_from_dict() -> None:
    message = r"unknown key 'data\.splitt' \(did you mean 'data\.split'\?\)"
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict({"data": {"splitt": "temporal"}})


def test_unknown_section(tmp_path: Path) -> None:
    message = "unknown section 'modle' \\(did you mean 'model'\\?\\); valid sections: model, train"
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, "[modle]\nlayers = 2\n"))
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=["modle.layers=2"])
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict({"modle": {}})


def test_top_level_key_that_is_not_a_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown section 'epochs'"):
        load_config(write(tmp_path, "epochs = 3\n"))
    with pytest.raises(ConfigError, match=r"'train' must be a \[train\] table"):
        load_config(write(tmp_path, "train = 3\n"))


@pytest.mark.parametrize("override", ["model.layers", "layers=4", "=4", "model.=4", ".layers=4"])
def test_malformed_override(override: str) -> None:
    with pytest.raises(ConfigError, match=r"malformed override .*: expected SECTION\.KEY=VALUE"):
        load_config(overrides=[override])


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 2"):
        load_config(write(tmp_path, "[model]\nlayers = = 4\n"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.d_model=0", "model.d_model must be positive, got 0"),
        ("model.max_len=-1", "model.max_len must be positive"),
        ("model.layers=0", "model.layers must be positive"),
        ("model.heads=3", "model.heads must divide model.d_model=64, got 3"),
        ("model.dropout=1.0", r"model.dropout must be in \[0, 1\), got 1.0"),
        ("model.attn_dropout=-0.1", "model.attn_dropout must be in"),
        ("model.time_buckets=-1", "model.time_buckets must be >= 0"),
        ("model.positions=begin", "model.positions must be one of end, start, got 'begin'"),
        ("model.score_temperature=-1", "model.score_temperature must be >= 0, got -1"),
        ("model.item_features=['a','a']", "model.item_features must list distinct, non-empty"),
        ("model.architecture=''", "model.architecture must be a non-empty"),
        ("train.lr=0", "train.lr must be positive"),
        ("train.lr=nan", "train.lr must be positive"),
        ("train.epochs=0", "train.epochs must be positive"),
        ("train.batch_size=-8", "train.batch_size must be positive"),
        ("train.patience=0", "train.patience must be positive"),
        ("train.weight_decay=-1", "train.weight_decay must be >= 0"),
        ("train.min_lr_ratio=1.5", "train.min_lr_ratio must be in"),
        ("train.loss=softmax", "train.loss must be one of ce, sampled, bce"),
        ("train.sampler=random", "train.sampler must be one of popularity, uniform"),
        ("train.negatives_per=row", "train.negatives_per must be one of batch, sequence"),
        ("train.label_smoothing=1.0", r"train.label_smoothing must be in \[0, 1\)"),
        ("train.device=tpu", "train.device must be one of auto, cpu, cuda"),
        ("train.monitor=NDCG", "train.monitor must be METRIC@K"),
        ("train.monitor=NDCG@3", r"with K in eval.ks=\[1, 5, 10, 20, 50\]"),
        ("data.split=random", "data.split must be one of leave_one_out, temporal"),
        ("data.valid_fraction=0", r"data.valid_fraction must be in \(0, 1\)"),
        ("data.test_fraction=1", "data.test_fraction must be in"),
        ("data.valid_fraction=0.9", "plus data.test_fraction=0.1 must be < 1"),
        ("eval.ks=[]", "eval.ks must list at least one"),
        ("eval.ks=[0,10]", "eval.ks must be positive"),
        ("eval.ks=[10,5]", "eval.ks must be sorted and without repeats"),
        ("eval.ks=[5,5,10]", "eval.ks must be sorted and without repeats"),
        ("eval.batch_size=0", "eval.batch_size must be positive"),
    ],
)
def test_validation_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(overrides=["model.d_model=64", "eval.ks=[1,5,10,20,50]", override])
    assert str(info.value).startswith(f"override {override!r}: ")


def test_validation_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[model]\nheads = 5\n")
    with pytest.raises(ConfigError, match=f"^{path}: model.heads must divide"):
        load_config(path)


def test_combinations_are_checked_after_all_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "[model]\nd_model = 48\n")
    with pytest.raises(ConfigError, match=r"model\.heads must divide model\.d_model=48"):
        load_config(path, ["model.heads=5"])
    assert load_config(path, ["model.heads=3"]).model.heads == 3
    assert load_config(overrides=["eval.ks=[3]", "train.monitor=HR@3"]).train.monitor == "HR@3"


def test_validation_in_direct_construction() -> None:
    with pytest.raises(ConfigError, match=r"data\.valid_fraction plus"):
        DataConfig(valid_fraction=0.6, test_fraction=0.4)
    with pytest.raises(ConfigError, match=r"model\.dropout must be in"):
        ModelConfig(dropout=2.0)


def non_default_config() -> ExperimentConfig:
    return ExperimentConfig(
        model=ModelConfig(
            architecture='my "odd"\\model\tnew\nline\x7f', d_model=96, heads=3, use_value=True
        ),
        train=TrainConfig(lr=3e-4, weight_decay=1e-05, loss="sampled", bf16=False, monitor="HR@7"),
        data=DataConfig(split="temporal", valid_fraction=0.05, test_fraction=0.2),
        eval=EvalConfig(ks=(1, 7, 100), mask_seen=True),
    )


def test_to_dict_is_plain_json_and_round_trips() -> None:
    config = non_default_config()
    data = config.to_dict()
    assert data["eval"]["ks"] == [1, 7, 100]
    assert json.loads(json.dumps(data)) == data
    assert ExperimentConfig.from_dict(json.loads(json.dumps(data))) == config
    assert ExperimentConfig.from_dict(ExperimentConfig().to_dict()) == ExperimentConfig()
    assert list(data) == ["model", "train", "data", "eval"]


def test_from_dict_rejects_a_section_that_is_not_a_table() -> None:
    with pytest.raises(ConfigError, match=r"\[train\] must be a table"):
        ExperimentConfig.from_dict({"train": 3})


def test_save_config_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "saved.toml"
    for config in (ExperimentConfig(), non_default_config()):
        save_config(config, path)
        assert load_config(path) == config
        assert tomllib.loads(path.read_text(encoding="utf-8")) == config.to_dict()


def test_saved_toml_reads_as_expected() -> None:
    text = config_to_toml(ExperimentConfig())
    assert text.startswith('[model]\narchitecture = "transformer"\nactivation = "gelu"\n')
    assert "\n\n[eval]\nks = [1, 5, 10, 20, 50]\n" in text
    assert "bf16 = true\n" in text and "lr = 0.001\n" in text


def test_configs_are_frozen() -> None:
    config = ExperimentConfig()
    with pytest.raises(ValidationError, match="frozen"):
        config.model.layers = 4  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        config.train = TrainConfig()  # type: ignore[misc]
    assert hash(config) == hash(ExperimentConfig())


def test_replace_gives_a_validated_copy() -> None:
    config = ExperimentConfig()
    changed = config.replace(train=config.train.replace(seed=3))
    assert changed.train.seed == 3 and config.train.seed == 0
    assert changed.model == config.model
    with pytest.raises(ConfigError, match=r"model\.heads must divide model\.d_model=64, got 5"):
        config.model.replace(heads=5)
    with pytest.raises(ConfigError, match=r"unknown key 'train\.sed' \(did you mean 'train\.seed'"):
        config.train.replace(sed=3)


def test_sections_given_as_tables_in_direct_construction() -> None:
    config = ExperimentConfig(model={"layers": 3}, eval={"ks": [5, 10]})  # type: ignore[arg-type]
    assert config.model == ModelConfig(layers=3) and config.eval.ks == (5, 10)
    with pytest.raises(ConfigError, match=r"^model\.layers: expected int, got '3' \(str\)"):
        ExperimentConfig(model={"layers": "3"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^\[model\] must be a table of key = value pairs"):
        ExperimentConfig(model=3)  # type: ignore[arg-type]


# config.toml as saved by runs made before the value head was removed (all keys written out)
OLD_RUN_CONFIG = """[model]
kind = "transformer"
max_len = 50
d_model = 64
layers = 2
heads = 2
ff_mult = 4
dropout = 0.2
attn_dropout = 0.2
time_buckets = 0
use_value = false
behavior_head = true
value_head = "none"
positions = "end"
score_temperature = 0.0
item_features = []

[train]
epochs = 50
batch_size = 128
lr = 0.001
weight_decay = 0.0
warmup_steps = 100
min_lr_ratio = 0.0
grad_clip = 1.0
loss = "ce"
negatives = 256
sampler = "popularity"
negatives_per = "batch"
label_smoothing = 0.0
behavior_weight = 0.1
value_weight = 0.0
patience = 10
monitor = "NDCG@10"
seed = 0
threads = 0
device = "auto"
bf16 = true
max_minutes = 0.0
keep_checkpoints = 3
keep_every = 0
average_best = 0
mask_seen = false

[data]
split = "leave_one_out"
valid_fraction = 0.1
test_fraction = 0.1

[eval]
ks = [1, 5, 10, 20, 50]
batch_size = 512
mask_seen = false
"""


def test_configs_saved_before_the_value_head_was_removed_still_load(tmp_path: Path) -> None:
    path = write(tmp_path, OLD_RUN_CONFIG)
    assert load_config(path) == ExperimentConfig()
    old = tomllib.loads(OLD_RUN_CONFIG)
    assert ExperimentConfig.from_dict(old) == ExperimentConfig()  # run.json's config
    assert "value_head" not in config_to_toml(ExperimentConfig())


def test_a_config_that_used_the_removed_value_head_is_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, OLD_RUN_CONFIG.replace('value_head = "none"', 'value_head = "huber"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: model.value_head: the value head was removed")
    assert message.endswith("""older configs load with "none" only, got 'huber'""")
    assert info.value.key == "model.value_head"
    with pytest.raises(
        ConfigError, match=r"^override 'train\.value_weight=0\.5': .* removed.*out$"
    ):
        load_config(overrides=["train.value_weight=0.5"])
    with pytest.raises(ConfigError, match=r"^override 'model\.value_head=none': .* removed"):
        load_config(overrides=["model.value_head=none"])
