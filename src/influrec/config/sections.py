"""The configuration's sections as frozen pydantic models: their keys, types, defaults, ranges
and meanings, and the checks that span several keys."""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from influrec.config.errors import (
    ConfigError,
    from_validation_error,
    require,
    unknown_key,
    unknown_section,
)

TEXT_FEATURE = "text"  # the item_features name of the item text vectors
TRACKERS = ("tensorboard", "mlflow")  # train.tracking's names (influrec.training.tracking)
_VALUE_HEAD_GONE = "the value head was removed: it was trained, but nothing read its predictions"
# Keys of older configs (saved run folders, run.json) that are read and dropped:
# key -> (accepts the value?, why the key is gone, the values older configs load with).
# A value that changed what the old run did is an error.
REMOVED_KEYS: dict[str, tuple[Callable[[object], bool], str, str]] = {
    "model.value_head": (lambda value: value == "none", _VALUE_HEAD_GONE, '"none" only'),
    "train.value_weight": (
        lambda value: isinstance(value, int | float),
        _VALUE_HEAD_GONE,
        "any number (it had no effect without the value head)",
    ),
}
# Keys of older configs read under their new name: old key -> new key (same section).
RENAMED_KEYS: dict[str, str] = {"model.kind": "model.architecture"}


class _Config(BaseModel):
    """Frozen, no unknown keys, no silent conversions (``"4"`` is not an int); errors become
    :class:`ConfigError` naming ``section.key``."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    section: ClassVar[str] = ""  # the TOML table name; "" for the whole experiment

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise from_validation_error(exc, type(self), self.section, data) from None

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied, validated like a new config."""
        return type(self)(**{**dict(self), **changes})

    @model_validator(mode="before")
    @classmethod
    def _drop_removed_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        kept = dict(data)
        for key, (accepts, why, loads) in REMOVED_KEYS.items():
            section, _, name = key.partition(".")
            if section == cls.section and name in kept and not accepts(value := kept.pop(name)):
                message = f"{key}: {why}; older configs load with {loads}, got {value!r}"
                raise ConfigError(message, key=key)
        for key, new in RENAMED_KEYS.items():
            section, _, name = key.partition(".")
            new_name = new.partition(".")[2]
            if section == cls.section and name in kept:
                if new_name in kept:
                    raise ConfigError(f"{key} is the old name of {new}: give only {new}", key=key)
                kept[new_name] = kept.pop(name)
        return kept


class ModelConfig(_Config):
    """The network: its size, its inputs and how it scores items."""

    section: ClassVar[str] = "model"
    architecture: str = Field(
        default="transformer",
        min_length=1,
        description="Model family, a registry name: `transformer`, `gru` (GRU4Rec-style "
        "recurrent), `cnn` (NextItNet-style dilated causal convolutions) or `mlp` "
        "(FMLP-Rec-style learnable causal filter and feed-forward blocks). "
        "Older configs call it `kind`.",
    )
    activation: Literal["gelu", "relu", "tanh", "sigmoid", "swiglu"] = Field(
        default="gelu",
        description="Activation of the feed-forward parts (the Transformer's and the `mlp` "
        "family's feed-forward layers, the convolution blocks). `swiglu`: a gated "
        "feed-forward layer `W3 (W1 x * silu(W2 x))` whose width (about 2/3 of `ff_mult * "
        "d_model`) gives the parameter count nearest the plain one's; `transformer` and `mlp` "
        "only.",
    )
    max_len: int = Field(default=50, gt=0, description="Events of history the model sees.")
    d_model: int = Field(default=64, gt=0, description="Width of embeddings and hidden states.")
    layers: int = Field(
        default=2,
        gt=0,
        description="Transformer blocks, GRU layers, `mlp` filter blocks, or repeats of the "
        "`cnn` dilation stack.",
    )
    heads: int = Field(default=2, gt=0, description="Attention heads; must divide `model.d_model`.")
    ff_mult: int = Field(default=4, gt=0, description="Feed-forward width = `ff_mult * d_model`.")
    kernel_size: int = Field(
        default=3, ge=2, description="`cnn`: width of each causal convolution, in events."
    )
    dilations: tuple[Annotated[int, Field(gt=0)], ...] = Field(
        default=(1, 2, 4, 8),
        strict=False,
        min_length=1,
        description="`cnn`: one residual block per dilation d (two convolutions, dilated d and "
        "2d), the whole stack repeated `model.layers` times.",
    )
    dropout: float = Field(default=0.2, ge=0, lt=1, description="Embedding and residual dropout.")
    attn_dropout: float = Field(
        default=0.2, ge=0, lt=1, description="Dropout on attention weights."
    )
    time_buckets: int = Field(
        default=0,
        ge=0,
        description="0: no time-gap embedding; else the number of log-scale gap buckets.",
    )
    use_value: bool = Field(
        default=False, description="Add a value embedding (rating, price) to each event's token."
    )
    behavior_head: bool = Field(
        default=True, description="Also predict the next event's behaviour type."
    )
    positions: Literal["end", "start"] = Field(
        default="end",
        description="`end`: the latest event sits at position `max_len - 1`; "
        "`start`: the oldest one at 0.",
    )
    score_temperature: float = Field(
        default=0.0,
        ge=0,
        description="0: scores are dot products with the item embeddings; "
        "> 0: cosine similarity divided by this temperature.",
    )
    item_features: tuple[str, ...] = Field(
        default=(),
        strict=False,
        description="Item metadata columns (`|`-separated values, e.g. genres or attributes) "
        "whose learned embeddings, averaged, are added to each item's own embedding, "
        f"for inputs and scores alike. Distinct, non-empty names. `{TEXT_FEATURE}` adds a "
        "learned projection of each item's text vector (`influrec data embed-text`), and "
        "items without training events are then embedded by their content alone.",
    )

    id_embeddings: bool = Field(
        default=True,
        description=f"false: items have no vector of their own and are their content alone "
        f"(needs `{TEXT_FEATURE}` in model.item_features), as for items no one has touched yet.",
    )

    id_dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description=f"With `{TEXT_FEATURE}` in model.item_features: in training, the share of "
        "items whose own vector is left out at each step, so that they are scored by their "
        "content alone, as new items will be (0: none).",
    )

    @property
    def categorical_features(self) -> tuple[str, ...]:
        """The item-table columns of `item_features` (all but the text vectors)."""
        return tuple(name for name in self.item_features if name != TEXT_FEATURE)

    @property
    def uses_text(self) -> bool:
        return TEXT_FEATURE in self.item_features

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        rule = f"must divide model.d_model={self.d_model}"
        require(self.d_model % self.heads == 0, "model.heads", rule, self.heads)
        names = self.item_features
        distinct = all(names) and len(set(names)) == len(names)
        rule = "must list distinct, non-empty column names"
        require(distinct, "model.item_features", rule, list(names))
        rule = f"false needs {TEXT_FEATURE} in model.item_features (an item's only content)"
        require(self.id_embeddings or self.uses_text, "model.id_embeddings", rule, False)
        rule = f"> 0 needs {TEXT_FEATURE} in model.item_features"
        require(self.id_dropout == 0 or self.uses_text, "model.id_dropout", rule, self.id_dropout)
        return self


class TrainConfig(_Config):
    """The optimisation: loss, schedule, early stopping, checkpoints and hardware."""

    section: ClassVar[str] = "train"
    epochs: int = Field(default=50, gt=0, description="Maximum number of epochs.")
    batch_size: int = Field(
        default=128, gt=0, description="Training samples (see `train.samples`) per step."
    )
    lr: float = Field(default=1e-3, gt=0, description="Peak learning rate (AdamW).")
    samples: Literal["windows", "prefixes"] = Field(
        default="windows",
        description="`windows`: each user's training events cut into windows of at most "
        "`model.max_len` events, every position predicting its next event in one pass (each "
        "training target once per epoch); `prefixes`: one sample per training target, its last "
        "`model.max_len` earlier events with the loss at the last position only, as a test "
        "query looks (RecBole's and BSARec's training; about `max_len` times the compute).",
    )
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(
        default=100, ge=0, description="Linear warm-up steps before cosine decay."
    )
    min_lr_ratio: float = Field(
        default=0.0, ge=0, le=1, description="The cosine schedule decays to `lr * min_lr_ratio`."
    )
    grad_clip: float = Field(default=1.0, ge=0, description="Gradient-norm clipping; 0: off.")
    loss: Literal["ce", "sampled", "bce"] = Field(
        default="ce",
        description="`ce`: full softmax; `sampled`: sampled softmax with logQ correction; "
        "`bce`: binary cross-entropy against sampled negatives.",
    )
    negatives: int = Field(
        default=256, gt=0, description="Negatives per target for `sampled` and `bce`."
    )
    sampler: Literal["popularity", "uniform"] = Field(
        default="popularity",
        description="Sampled-softmax negatives: by popularity (with logQ) or uniform.",
    )
    negatives_per: Literal["batch", "sequence"] = Field(
        default="batch",
        description="Sampled softmax: one draw shared by the batch, or one per sequence.",
    )
    label_smoothing: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Full softmax: share of the target spread over all items.",
    )
    behavior_weight: float = Field(
        default=0.1, ge=0, description="Weight of the behaviour-type loss."
    )
    patience: int = Field(
        default=10,
        gt=0,
        description="Early stopping: evaluations without improvement of the monitor.",
    )
    monitor: str = Field(
        default="NDCG@10",
        description="Validation metric for early stopping: `METRIC@K`, K in `eval.ks`.",
    )
    seed: int = Field(default=0, ge=0, description="Seed of initialisation, batching and sampling.")
    threads: int = Field(default=0, ge=0, description="Torch CPU threads; 0: torch's default.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="`auto`: CUDA when present, else CPU."
    )
    bf16: bool = Field(default=True, description="bf16 autocast on CUDA.")
    max_minutes: float = Field(
        default=0.0,
        ge=0,
        description="Stop training after this wall time in minutes, checked after every batch "
        "(an epoch cut short is validated and checkpointed; resuming finishes it); 0: no limit.",
    )
    keep_checkpoints: int = Field(
        default=3, ge=0, description="Per-epoch checkpoints kept (the best is always kept)."
    )
    keep_every: int = Field(
        default=0,
        ge=0,
        description="Also keep every Nth epoch's checkpoint (TracIn reads them); 0: off.",
    )
    average_best: int = Field(
        default=0,
        ge=0,
        description="At the end, average the weights of the N best epochs; kept only when "
        "that beats the best single epoch on validation. 0: off.",
    )
    mask_seen: bool = Field(
        default=False,
        description="Full softmax: items seen earlier in the window are left out of each "
        "target's softmax (consistent with evaluating with seen items masked).",
    )
    tracking: tuple[str, ...] = Field(
        default=(),
        strict=False,
        description="Trackers that follow the run, any of `tensorboard` (event files in the "
        "run's `tensorboard/` folder) and `mlflow` (parameters, per-epoch metrics, test "
        "metrics, run.json and the model as artefacts); both need "
        "`pip install 'influrec[tracking]'`. Empty: none.",
    )
    tracking_uri: str = Field(
        default="",
        description="MLflow tracking URI (`sqlite:///...`, `http://...`); empty: an SQLite "
        "store in `./mlruns` (`mlruns/mlflow.db`, artefacts in `mlruns/artifacts`).",
    )
    tracking_experiment: str = Field(
        default="influrec", min_length=1, description="MLflow experiment the run is logged in."
    )

    @model_validator(mode="after")
    def _check_tracking(self) -> Self:
        names = self.tracking
        rule = f"must list distinct trackers of {list(TRACKERS)}"
        known = all(name in TRACKERS for name in names)
        require(known and len(set(names)) == len(names), "train.tracking", rule, list(names))
        return self


class DataConfig(_Config):
    """How events are split into training, validation and test targets."""

    section: ClassVar[str] = "data"
    split: Literal["leave_one_out", "temporal"] = Field(
        default="leave_one_out",
        description="`leave_one_out`: each user's last event is the test target, the one "
        "before it the validation target; `temporal`: global time cuts.",
    )
    valid_fraction: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="Temporal split: about this fraction of events lies between the "
        "validation cut and the test cut (validation targets).",
    )
    test_fraction: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="Temporal split: about this fraction of events lies at or after the "
        "test cut (test targets).",
    )

    @model_validator(mode="after")
    def _check_sum(self) -> Self:
        total = self.valid_fraction + self.test_fraction
        rule = f"plus data.test_fraction={self.test_fraction} must be < 1 (sum {total:g})"
        require(total < 1, "data.valid_fraction", rule, self.valid_fraction)
        return self


class EvalConfig(_Config):
    """Evaluation during training and of the finished run."""

    section: ClassVar[str] = "eval"
    ks: tuple[Annotated[int, Field(gt=0)], ...] = Field(
        default=(1, 5, 10, 20, 50),
        strict=False,
        min_length=1,
        description="Cutoffs K of the ranking metrics (HR@K, NDCG@K...), increasing.",
    )
    batch_size: int = Field(default=512, gt=0, description="Targets ranked per evaluation batch.")
    mask_seen: bool = Field(
        default=False,
        description="Masking for early stopping and headline numbers (both are reported).",
    )

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        increasing = all(a < b for a, b in itertools.pairwise(self.ks))
        require(increasing, "eval.ks", "must be sorted and without repeats", list(self.ks))
        return self


class ExperimentConfig(_Config):
    """One experiment: the four sections, each defaulting to its defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # sections may be given as tables
    model: ModelConfig = Field(default_factory=lambda: ModelConfig())
    train: TrainConfig = Field(default_factory=lambda: TrainConfig())
    data: DataConfig = Field(default_factory=lambda: DataConfig())
    eval: EvalConfig = Field(default_factory=lambda: EvalConfig())

    @model_validator(mode="after")
    def _check_monitor(self) -> Self:
        metric, at, k = self.train.monitor.partition("@")
        known_k = k.isascii() and k.isdigit() and int(k) in self.eval.ks
        rule = f"must be METRIC@K with K in eval.ks={list(self.eval.ks)}"
        require(bool(metric and at and known_k), "train.monitor", rule, self.train.monitor)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable ``{section: {key: value}}`` dict (tuples become lists)."""
        return {name: {key: _plain(value) for key, value in table} for name, table in self}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Build from ``{section: {key: value}}``; missing sections and keys keep their defaults.

        Raises :class:`ConfigError` for an unknown section or key, a wrong type or a bad value.
        """
        return cls(**data)

    def changes(self, new: ExperimentConfig) -> list[tuple[str, Any, Any]]:
        """``(section.key, this value, new value)`` for every key whose value differs."""
        before, after = self.to_dict(), new.to_dict()
        return [
            (f"{section}.{key}", value, after[section][key])
            for section, table in before.items()
            for key, value in table.items()
            if after[section][key] != value
        ]


SECTIONS: dict[str, type[_Config]] = {
    name: typing.cast(type[_Config], info.annotation)
    for name, info in ExperimentConfig.model_fields.items()
}


def field_info(section: str, key: str) -> FieldInfo:
    """The pydantic field of ``section.key``; ConfigError for an unknown section or key."""
    if section not in SECTIONS:
        raise unknown_section(section, list(SECTIONS))
    fields = SECTIONS[section].model_fields
    if key not in fields:
        raise unknown_key(section, key, list(fields))
    return fields[key]


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value
