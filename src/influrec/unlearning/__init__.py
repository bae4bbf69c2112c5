"""Unlearning: a run in which chosen users' training data no longer shapes the model.

* :func:`~influrec.unlearning.runs.forget` writes a new run folder without the users, by a
  bounded gradient ascent on the output side of the model (fast, approximate) or by training
  again from scratch (exact), and records the step in the run's lineage;
* :func:`~influrec.unlearning.runs.forgotten_users` reads the forgotten users back.
"""

from influrec.unlearning.ascent import AscentReport, AscentSettings
from influrec.unlearning.runs import ForgetResult, forget, forgotten_users

__all__ = ["AscentReport", "AscentSettings", "ForgetResult", "forget", "forgotten_users"]
