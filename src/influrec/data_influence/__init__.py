"""Training-data influence: which logged interactions shape the model, and cleaning with it.

* :class:`~influrec.data_influence.tracin.DataInfluence` reads a run folder and scores every
  training interaction with TracIn over the saved checkpoints (self-influence, influence on the
  validation loss, influence on chosen recommendations) and with influence functions;
* :mod:`~influrec.data_influence.cleaning` removes interactions from a dataset (``denoise``) and
  injects seeded random ones (for the noise experiments of ``bench/data_influence.py``).
"""

from influrec.data_influence.tracin import DataInfluence, TracInScores, spearman

__all__ = ["DataInfluence", "TracInScores", "spearman"]
