"""Training-data influence: which logged interactions shape the model, and cleaning with it.

* :class:`~influrec.data_influence.tracin.DataInfluence` reads a run folder and scores every
  training interaction with TracIn over the saved checkpoints (self-influence, influence on the
  validation loss, influence on chosen recommendations) and with influence functions;
* :mod:`~influrec.data_influence.cleaning` removes the most harmful training interactions from
  a dataset (``denoise``).

The noise experiments of ``bench/data_influence.py`` inject seeded random interactions with
``bench/noise.py``, which is benchmark code, not part of the library.
"""

from influrec.data_influence.tracin import DataInfluence, TracInScores, spearman

__all__ = ["DataInfluence", "TracInScores", "spearman"]
