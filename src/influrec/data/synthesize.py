"""The built-in default dataset: synthetic logs with planted influence, prepared like real ones."""

from __future__ import annotations

from influrec.data.dataset import EventDataset, build_dataset, columns_from_table
from influrec.data.preprocess import PrepareConfig
from influrec.data.synthetic import SynthConfig, generate


def synthesize_dataset(config: SynthConfig | None = None) -> EventDataset:
    """Generate a synthetic log and prepare it; ``ground_truth`` says which event caused which.

    Ground truth refers to events by their ``row``, which preparation keeps.
    """
    config = config or SynthConfig()
    log = generate(config)
    dataset = build_dataset(
        columns_from_table(log.events),
        PrepareConfig(),
        item_meta=log.items,
        read_stats={"source": {"format": "synthetic", "synth_config": vars(config).copy()}},
    )
    dataset.ground_truth = log.ground_truth
    dataset.stats["caused_events"] = log.ground_truth.num_rows
    return dataset
