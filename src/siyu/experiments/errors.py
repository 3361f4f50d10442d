"""The experiments' refusals."""

from __future__ import annotations

from siyu.errors import ConflictError


class ExperimentState(ConflictError):
    """The experiment is not in a state that allows this (its plan edited once running,
    started after it stopped)."""

    code = "experiment_state"
