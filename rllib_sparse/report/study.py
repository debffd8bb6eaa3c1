"""A study as MLflow holds it: the trials (child runs) of an experiment, their params and histories."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.tracking import MlflowClient

from rllib_sparse import metrics

DIAGNOSTIC_PREFIX = metrics.DIAGNOSTICS_PREFIX
#: MLflow params of a trial's training settings (``training.<name>``), as the sweep logs them.
TRAINING_PARAM_PREFIX = "training."


class ReportError(ValueError):
    """The study cannot be reported (no such experiment, no finished runs): one line for the user."""


@dataclass(frozen=True, order=True)
class Series:
    """What a curve or a heat-map column of the report stands for: a sparsity, and the values of the
    study's training axes that vary (e.g. streaming RL's ``init``): trials that differ in them are
    never averaged together."""

    sparsity: float
    variant: tuple[tuple[str, str], ...] = ()

    @property
    def dense(self) -> bool:
        return self.sparsity == 0.0

    @property
    def short(self) -> str:
        """``0.9`` or ``0.9 static_mask``: a tick label."""
        return " ".join([f"{self.sparsity:g}", *(value for _, value in self.variant)])

    @property
    def label(self) -> str:
        """``dense``, ``sparsity 0.9`` or ``sparsity 0.9, init=static_mask``: a legend entry."""
        base = "dense" if self.dense else f"sparsity {self.sparsity:g}"
        return ", ".join([base, *(f"{key}={value}" for key, value in self.variant)])


@dataclass
class Trial:
    run_id: str
    name: str
    status: str  # MLflow's: FINISHED, RUNNING, FAILED, KILLED, SCHEDULED
    params: dict[str, str]
    metrics: dict[str, float]  # latest value of each metric
    start_time: int
    #: The study's varying training axes and this trial's values of them (``Series.variant``).
    variant: tuple[tuple[str, str], ...] = ()

    def param(self, key: str, default=None, cast=str):
        value = self.params.get(key)
        if value is None or value == "None":
            return default
        try:
            return cast(value)
        except ValueError:
            return default

    @property
    def env(self) -> str:
        return self.param("env", "?")

    @property
    def width(self) -> int:
        return self.param("width", 0, int)

    @property
    def critic_width(self) -> int:
        """The critic's width (the actor's ``width`` unless the sweep sets the critic apart)."""
        return self.param("critic_width", self.width, int)

    @property
    def depth(self) -> int:
        return self.param("depth", 0, int)

    @property
    def sparsity(self) -> float:
        return self.param("sparsity", 0.0, float)

    @property
    def series(self) -> Series:
        return Series(self.sparsity, self.variant)

    @property
    def seed(self) -> int:
        return self.param("seed", 0, int)

    @property
    def dense_params(self) -> int:
        return self.param("dense_params", 0, int)

    @property
    def nonzero_params(self) -> int:
        return self.param("nonzero_params", 0, int)

    @property
    def final_return(self) -> float:
        """The last evaluation return where the trial evaluates (the paper's number), else training's."""
        value = metrics.study_return(self.metrics)
        return math.nan if value is None else value

    @property
    def env_steps(self) -> float:
        return self.metrics.get(metrics.ENV_STEPS, math.nan)

    @property
    def finished(self) -> bool:
        return self.status == "FINISHED"


@dataclass
class Study:
    uri: str
    experiment: str
    experiment_id: str
    parent_run_id: str | None
    trials: list[Trial]
    client: MlflowClient = field(repr=False)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for trial in self.trials:
            out[trial.status] = out.get(trial.status, 0) + 1
        return out

    @property
    def finished(self) -> list[Trial]:
        return [t for t in self.trials if t.finished]

    def diagnostic_keys(self) -> list[str]:
        return sorted({k for t in self.trials for k in t.metrics if k.startswith(DIAGNOSTIC_PREFIX)})

    def history(self, trial: Trial, key: str) -> list[tuple[int, float]]:
        """(step, value) pairs of one metric, in step order (step = env steps)."""
        points = self.client.get_metric_history(trial.run_id, key)
        return sorted((m.step, m.value) for m in points)

    def latest_cosines(self, trial: Trial) -> tuple[int, dict[str, list[list[float]]]] | None:
        """The last saved gradient-cosine matrices of a trial: (iteration, {network: matrix})."""
        files = sorted(a.path for a in self.client.list_artifacts(trial.run_id, metrics.INTERFERENCE_DIR)
                       if a.path.endswith(".json"))
        if not files:
            return None
        with tempfile.TemporaryDirectory() as folder:
            local = self.client.download_artifacts(trial.run_id, files[-1], folder)
            data = json.loads(Path(local).read_text())
        return int(data.get("iteration", 0)), data[metrics.COSINES_KEY]


def mark_variants(trials: list[Trial]) -> None:
    """Set each trial's ``variant``: its values of the training settings that vary over the study (a
    ``training.<name>`` grid axis, e.g. streaming RL's ``init``), so that no figure averages them."""
    keys = sorted({k for t in trials for k in t.params if k.startswith(TRAINING_PARAM_PREFIX)})
    varying = [k for k in keys if len({t.params.get(k) for t in trials}) > 1]
    for trial in trials:
        trial.variant = tuple((k[len(TRAINING_PARAM_PREFIX):], str(trial.params.get(k))) for k in varying)


def load_study(experiment: str, uri: str) -> Study:
    """Read the experiment's trials; a ``ReportError`` if it does not exist or has no finished runs.

    A trial run more than once (a study re-run under the same experiment) counts with its newest run.
    """
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments() if e.name != "Default")
        raise ReportError(f"experiment {experiment!r} does not exist in {uri}; "
                          f"allowed: {', '.join(names) if names else '(no experiments there yet)'}")
    runs = client.search_runs([found.experiment_id], max_results=50_000, order_by=["attributes.start_time DESC"])
    trials: dict[str, Trial] = {}
    parent = None
    for run in runs:
        tags = run.data.tags
        if metrics.SWEEP_TAG in tags and parent is None:
            parent = run.info.run_id
        name = tags.get(metrics.TRIAL_TAG)
        if name and name not in trials:
            trials[name] = Trial(run.info.run_id, name, run.info.status, dict(run.data.params),
                                 dict(run.data.metrics), run.info.start_time or 0)
    mark_variants(list(trials.values()))
    study = Study(uri, experiment, found.experiment_id, parent,
                  sorted(trials.values(), key=lambda t: (t.env, t.dense_params, t.series, t.seed, t.name)),
                  client)
    if not study.finished:
        counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(study.counts().items())) or "no trial runs"
        raise ReportError(f"experiment {experiment!r} has no finished runs yet ({counts}); "
                          "report again once a trial has finished")
    return study
