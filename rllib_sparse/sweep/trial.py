"""The trial-runner seam: one trial of a sweep file, whatever trains it, and the one loop that drives it.

A ``TrialRunner`` turns a grid point into iterations of metrics. Its class plans the trial on the
driver (parameter counts, per-layer densities, resources) without training; an instance builds,
trains one iteration at a time, saves, restores and stops. Each algorithm-table row names its runner
class (``AlgorithmRow.runner``, ``"module:Class"``, imported on first use by ``runner_class``): RLlib's
algorithms use ``RLlibTrialRunner`` (``rllib_sparse.sweep.rllib_runner``); a trainer that is not RLlib
(streaming RL) is one more subclass plus a row naming it, and nothing else in ``sweep/`` changes.
``iterate_trial`` is the only training loop: ``rllib-sparse train`` and the Tune trainable both consume
it. It also stops a trial whose training went non-finite (``NonFiniteTrainingError``), or warns once
per metric where the sweep file says ``failure.on_nonfinite: warn``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rllib_sparse import metrics as m
from rllib_sparse.algorithms import get_algorithm, resolve

if TYPE_CHECKING:
    from rllib_sparse.envs.finite import NonFiniteObservationError
    from rllib_sparse.sweep.spec import GridPoint, StopSpec, SweepSpec


#: Bytes of training state per (dense) parameter: float32 weights, gradients and Adam's two moments.
#: Masks, target networks, activations and the replay buffer come on top: this is a lower bound.
BYTES_PER_PARAMETER = 16


@dataclass(frozen=True)
class PlannedTrial:
    """What planning a trial tells before it trains: its size, and each pruned layer's density.

    A runner's ``plan`` returns the counts; the sweep's planning adds the grid ``point`` they belong to.
    """

    dense_params: int
    nonzero_params: int
    layers: dict  # network -> rows of {layer, shape, density, nonzero, total} (an MLflow artifact)
    point: GridPoint | None = None

    @property
    def memory_bytes(self) -> int:
        """At least this much memory to train the trial (see ``BYTES_PER_PARAMETER``)."""
        return self.dense_params * BYTES_PER_PARAMETER


#: The name trial runners written for earlier releases return from ``plan``: the same class.
PlannedCounts = PlannedTrial


class TrialRunner(ABC):
    """Trains one grid point of a sweep file, one iteration at a time."""

    def __init__(self, spec: SweepSpec, point: GridPoint, source: str = "sweep file"):
        self.spec, self.point, self.source = spec, point, source

    # ------------------------------------------------------------------ on the driver, before training

    @classmethod
    @abstractmethod
    def plan(cls, spec: SweepSpec, point: GridPoint, source: str) -> PlannedTrial:
        """Check the trial (a one-line ValueError naming ``source`` and the field) and count it."""

    @classmethod
    @abstractmethod
    def resources(cls, spec: SweepSpec, point: GridPoint) -> list[dict[str, float]]:
        """The trial's resource bundles (the first is its own process), e.g. ``[{"CPU": 1}]``."""

    @classmethod
    def params(cls, spec: SweepSpec, point: GridPoint) -> dict[str, Any]:
        """MLflow params of the trial that differ from, or add to, those read off its grid point (e.g. a
        dense initialisation logged with sparsity 0 whatever the sparsity axis says)."""
        return {}

    # ------------------------------------------------------------------ in the trial's process

    @abstractmethod
    def build(self) -> None:
        """Make the trainer (networks, optimizers, envs)."""

    @abstractmethod
    def train(self) -> dict[str, float]:
        """One iteration; metrics under ``rllib_sparse.metrics`` names, ``ITERATION`` and ``ENV_STEPS``
        always among them."""

    @abstractmethod
    def save(self, folder: str) -> None:
        """Everything needed to continue exactly, into ``folder``."""

    @abstractmethod
    def restore(self, folder: str) -> None:
        """Continue from a ``save``d folder."""

    def diagnostics(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The paper's diagnostics: ``{"metrics": {diag/...: value}, "cosines": {network: matrix}}``."""
        return {"metrics": {}, "cosines": {}}

    def max_masked_weight(self) -> float:
        """Largest |weight| at a pruned place over every copy of the networks (0.0 while masks hold)."""
        return 0.0

    def stop(self) -> None:  # noqa: B027 - optional: a runner that holds nothing needs no stop
        """Release what ``build`` made."""


def runner_class(algorithm: str) -> type[TrialRunner]:
    """The trial runner class that the algorithm's table row names (imported on first use)."""
    row = get_algorithm(algorithm)
    try:
        return resolve(row.runner)
    except ValueError as error:
        raise ValueError(f"the trial runner of algorithm {row.name}: {error}") from None


@dataclass
class TrialIteration:
    """One iteration of a trial, as the loop hands it to its consumer."""

    metrics: dict[str, float]
    done: bool  #: the stop condition is reached
    checkpoint_due: bool  #: every ``checkpoint.frequency`` iterations, and at the end
    diagnostics: dict[str, float] = field(default_factory=dict)
    cosines: dict[str, Any] = field(default_factory=dict)

    @property
    def iteration(self) -> int:
        return int(self.metrics[m.ITERATION])


class NonFiniteTrainingError(ValueError):
    """A trial's training went non-finite: a NaN or infinite return, learner loss or TD error, or an env's
    non-finite observation. The message is one line naming what, where and the trial."""


#: The setting that lets a trial train on past a non-finite metric (named in the error).
KEEP_GOING = "failure.on_nonfinite: warn"

_log = logging.getLogger(__name__)


def nonfinite_message(name: str, found: dict[str, float], iteration: int) -> str:
    """The one-line reason a trial fails on the non-finite metrics ``found`` of one iteration: the first
    named with its value (returns come first: their cause is the env), the others listed."""
    key, value = next(iter(found.items()))
    others = [k for k in found if k != key]
    also = (f"; also {', '.join(others[:3])}{f' and {len(others) - 3} more' if len(others) > 3 else ''}"
            if others else "")
    cause = " (the env's rewards are not finite)" if key in m.RETURNS else ""
    return (f"{key} is {value} at iteration {iteration} of trial {name}{cause}{also}; to keep training past "
            f"non-finite values, set {KEEP_GOING}")


def nonfinite_warning(key: str, value: float, iteration: int, name: str | None = None) -> str:
    """The warning of a metric first found non-finite, under ``failure.on_nonfinite: warn`` (one line;
    without the leading ``warning:``, for a logger that says so itself)."""
    where = f" of trial {name}" if name else ""
    return f"{key} is {value} at iteration {iteration}{where}; training goes on ({KEEP_GOING})"


def _observation_error(error: BaseException | None) -> NonFiniteObservationError | None:
    """The env's ``NonFiniteObservationError`` behind ``error``: RLlib wraps an env's error in its own
    (``RuntimeError`` from it), Ray in a ``RayTaskError`` (its ``cause``)."""
    from rllib_sparse.envs.finite import NonFiniteObservationError  # here: planning a sweep needs no gymnasium

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, NonFiniteObservationError):
            return getattr(error, "cause", None) or error  # Ray's ``RayTaskError(...)`` of it: the original
        seen.add(id(error))
        error = error.__cause__ or error.__context__ or getattr(error, "cause", None)
    return None


def stop_reached(stop: StopSpec, metrics: dict[str, float]) -> bool:
    return ((stop.env_steps is not None and metrics.get(m.ENV_STEPS, 0) >= stop.env_steps)
            or (stop.iterations is not None and metrics.get(m.ITERATION, 0) >= stop.iterations)
            or (stop.time_s is not None and metrics.get(m.TIME_TOTAL, 0) >= stop.time_s))


def iterate_trial(runner: TrialRunner, spec: SweepSpec) -> Iterator[TrialIteration]:
    """Train until the stop condition; yields each iteration (diagnostics computed when due).

    Raises ``NonFiniteTrainingError`` (one line) when an iteration's return, learner loss or TD error is
    NaN or infinite (a return missing because no episode has finished yet is not), unless the sweep file
    says ``failure.on_nonfinite: warn``: then one warning per metric is logged and training goes on. A
    non-finite observation always raises it: the networks cannot act on one.
    """
    warned: set[str] = set()
    while True:
        try:
            metrics = runner.train()
        except Exception as error:
            cause = _observation_error(error)
            if cause is None:
                raise
            raise NonFiniteTrainingError(f"{cause} in trial {runner.point.name}; an env's observations must "
                                         "be finite") from None
        iteration = int(metrics[m.ITERATION])
        bad = m.nonfinite(metrics)
        if bad and spec.failure.on_nonfinite == "fail":
            raise NonFiniteTrainingError(nonfinite_message(runner.point.name, bad, iteration))
        for key, value in bad.items():
            if key not in warned:
                warned.add(key)
                _log.warning(nonfinite_warning(key, value, iteration, runner.point.name))
        done = stop_reached(spec.stop, metrics)
        step = TrialIteration(metrics, done, done or bool(spec.checkpoint.frequency
                                                           and iteration % spec.checkpoint.frequency == 0))
        if spec.diagnostics is not None and spec.diagnostics.due(iteration, done):
            found = runner.diagnostics(spec.diagnostics.learner_settings())
            step.diagnostics, step.cosines = found["metrics"], found["cosines"]
        yield step
        if done:
            return
