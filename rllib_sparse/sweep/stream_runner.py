"""The trial runner of streaming RL (``algorithm: StreamAC``): the stream loop of ``rllib_sparse.streaming``
plugged into the one trial loop, so sweeps, Tune, MLflow, resume and ``report`` treat it as any algorithm.

Why not an RLlib Algorithm: streaming does one forward and one backward per env step, no batches, no
replay; RLlib's per-step path (env runner, connectors, episodes, a Learner update per batch) is built
for batches and would cost more per step than the update itself. Here one trial is one process
stepping its own env; Tune schedules, checkpoints and retries it like every other trial.

A sweep file's ``training`` holds Stream AC(λ)'s settings (``StreamACSettings``: lr, gamma, lamda,
kappa_policy, kappa_value, entropy_coeff) and ``init`` (dense, sparse_init, static_mask: a grid axis as
``training.init``); ``reporting.min_sample_timesteps_per_iteration`` is the env steps per iteration.
``model`` is the networks' (``layernorm_mlp``, stream-x's, unless set otherwise). With ``init: dense`` the
model's sparsity is not used: the trial is logged with sparsity 0.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import time
from typing import Any

import gymnasium as gym
import torch

from rllib_sparse import metrics as m
from rllib_sparse.algorithms import get_algorithm
from rllib_sparse.envs import env_spaces, make_env
from rllib_sparse.networks import SparseModelConfig
from rllib_sparse.networks.registry import check_obs_shape
from rllib_sparse.streaming.agent import StreamAC, StreamACSettings, planned_layers
from rllib_sparse.streaming.init import INITS
from rllib_sparse.streaming.trainer import StreamTrainer
from rllib_sparse.sweep.spec import GridPoint, SweepSpec
from rllib_sparse.sweep.trainable import damaged_checkpoint
from rllib_sparse.sweep.trial import PlannedTrial, TrialRunner

#: Env steps per iteration unless ``reporting.min_sample_timesteps_per_iteration`` says otherwise.
DEFAULT_STEPS_PER_ITERATION = 10_000
STEPS_KEY = "min_sample_timesteps_per_iteration"
CHECKPOINT_FILE = "stream_trainer.pt"
_RANGES = {"lr": (0.0, None), "gamma": (0.0, 1.0), "lamda": (0.0, 1.0), "kappa_policy": (0.0, None),
           "kappa_value": (0.0, None), "entropy_coeff": (0.0, None)}


@dataclasses.dataclass(frozen=True)
class StreamTrial:
    """A grid point read as a streaming trial: its settings, initialisation, model and steps per iteration."""

    settings: StreamACSettings
    init: str
    model: SparseModelConfig
    steps_per_iteration: int


def stream_trial(spec: SweepSpec, point: GridPoint, source: str = "sweep file") -> StreamTrial:
    """Read and check the trial's settings; a one-line ValueError naming the field otherwise."""
    algorithm = spec.algorithm
    refusals = (
        (spec.evaluation is not None, "evaluation is set", "omit it (the training return is reported)"),
        (spec.learner.compile != "off", f"learner.compile={spec.learner.compile!r}", "off"),
        (spec.resources.num_env_runners != 0, f"resources.num_env_runners={spec.resources.num_env_runners}",
         "0 (one trial steps its own env)"),
        (spec.resources.num_envs_per_env_runner != 1,
         f"resources.num_envs_per_env_runner={spec.resources.num_envs_per_env_runner}", "1"),
        (spec.resources.gpus_per_trial != 0, f"resources.gpus_per_trial={spec.resources.gpus_per_trial}",
         "0 (one transition at a time runs on the CPU)"),
    )
    for refused, what, allowed in refusals:
        if refused:
            raise ValueError(f"{source}: {what}, which {algorithm} does not take; allowed: {allowed}")
    fields = [f.name for f in dataclasses.fields(StreamACSettings)]
    allowed = [*fields, "init"]
    for key, value in point.training.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{source}: training.{key} is not a {algorithm} training setting{hint} "
                             f"(allowed: {', '.join(allowed)})")
        if key == "init":
            if value not in INITS:
                raise ValueError(f"{source}: training.init={value!r} is invalid; allowed: {', '.join(INITS)}")
            continue
        low, high = _RANGES[key]
        if (not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= low
                or (high is not None and value > high)):
            what = f"a number in [{low:g}, {high:g}]" if high is not None else f"a number >= {low:g}"
            raise ValueError(f"{source}: training.{key}={value!r} is invalid; allowed: {what}")
    for key, value in spec.reporting.items():
        if key != STEPS_KEY:
            raise ValueError(f"{source}: reporting.{key} is not a {algorithm} reporting setting; allowed: {STEPS_KEY}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{source}: reporting.{key}={value!r} is invalid; allowed: an integer >= 1")
    settings = StreamACSettings(**{k: float(v) for k, v in point.training.items() if k in fields})
    init = point.training.get("init", "sparse_init")
    model = point.model
    if init == "dense":  # a dense network: the sparsity axis does not apply to it
        model = SparseModelConfig.parse({**model.model_dump(), "sparsity": 0.0,
                                         "actor": {**model.actor.model_dump(), "sparsity": None},
                                         "critic": {**model.critic.model_dump(), "sparsity": None}})
    steps = spec.reporting.get(STEPS_KEY, DEFAULT_STEPS_PER_ITERATION)
    if spec.smoke:  # the row's seconds-long iterations
        steps = get_algorithm(algorithm).smoke_reporting.get(STEPS_KEY, steps)
    return StreamTrial(settings, init, model, steps)


class StreamTrialRunner(TrialRunner):
    """A grid point trained by Stream AC(λ) in the trial's own process (``rllib_sparse.streaming``)."""

    @classmethod
    def _checked_spaces(cls, spec: SweepSpec, point: GridPoint, source: str) -> tuple[gym.Space, gym.Space]:
        obs_space, action_space = env_spaces(point.env, spec.env_config, source)  # one env per (env, env_config)
        if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
            raise ValueError(f"{source}: {spec.algorithm} on env={point.env!r}: the action space {action_space} "
                             "is not supported; allowed: a 1-D Box (continuous actions)")
        for role in ("actor", "critic"):
            try:
                check_obs_shape(point.model.network(role).model, getattr(obs_space, "shape", None))
            except ValueError as error:
                raise ValueError(f"{source}: env={point.env!r}: {error}") from None
        return obs_space, action_space

    @classmethod
    def plan(cls, spec: SweepSpec, point: GridPoint, source: str) -> PlannedTrial:
        trial = stream_trial(spec, point, source)
        obs_space, action_space = cls._checked_spaces(spec, point, source)
        layers = planned_layers(obs_space.shape[0], action_space.shape[0], trial.model, trial.init)
        dense = sum(network["parameters"] for network in layers.values())
        pruned = sum(row["total"] - row["nonzero"] for network in layers.values() for row in network["layers"])
        return PlannedTrial(dense, dense - pruned, {name: network["layers"] for name, network in layers.items()})

    @classmethod
    def resources(cls, spec: SweepSpec, point: GridPoint) -> list[dict[str, float]]:
        return [{"CPU": spec.resources.cpus_per_trial}]

    @classmethod
    def params(cls, spec: SweepSpec, point: GridPoint) -> dict[str, Any]:
        trial = stream_trial(spec, point)
        actor, critic = trial.model.network("actor"), trial.model.network("critic")
        return {"init": trial.init, "sparsity": actor.sparsity, "critic_sparsity": critic.sparsity,
                "steps_per_iteration": trial.steps_per_iteration}

    def build(self) -> None:
        # One thread: a 128-wide update is far too small to split, and trials share the node's cores.
        torch.set_num_threads(max(1, int(os.environ.get("RLLIB_SPARSE_STREAM_THREADS", "1"))))
        trial = stream_trial(self.spec, self.point, self.source)
        self.steps_per_iteration = trial.steps_per_iteration
        env = make_env(self.point.env, dict(self.spec.env_config), self.source)
        agent = StreamAC(env.observation_space.shape[0], env.action_space.shape[0], trial.model,
                         init=trial.init, settings=trial.settings)
        rows = self.spec.diagnostics.batch_size if self.spec.diagnostics is not None else 0
        self.trainer = StreamTrainer(env, agent, seed=self.point.seed, diagnostic_rows=rows)
        self.iteration, self.time_total = 0, 0.0

    def train(self) -> dict[str, float]:
        start = time.perf_counter()
        stats = self.trainer.run(self.steps_per_iteration)
        self.iteration += 1
        seconds = time.perf_counter() - start
        self.time_total += seconds
        trainer = self.trainer
        metrics = {m.ITERATION: float(self.iteration), m.ENV_STEPS: float(trainer.env_steps),
                   m.TIME_TOTAL: self.time_total, m.TIME_THIS_ITERATION: seconds,
                   m.ENV_STEPS_PER_S: stats.steps / seconds if seconds else float("nan"),
                   f"{m.LEARNER_PREFIX}td_error_abs_mean": stats.td_error_abs_mean,
                   f"{m.LEARNER_PREFIX}episodes_restarted_by_restore": float(trainer.restarts)}
        if trainer.recent_returns:  # as RLlib: the mean over the last 100 finished episodes
            metrics[m.EPISODE_RETURN] = sum(trainer.recent_returns) / len(trainer.recent_returns)
            metrics[m.EPISODE_RETURN_MAX] = max(trainer.recent_returns)
            metrics[m.EPISODE_LENGTH] = sum(trainer.recent_lengths) / len(trainer.recent_lengths)
        return metrics

    def save(self, folder: str) -> None:
        state = {"trainer": self.trainer.state_dict(), "iteration": self.iteration, "time_total": self.time_total}
        os.makedirs(folder, exist_ok=True)
        torch.save(state, os.path.join(folder, CHECKPOINT_FILE))

    def restore(self, folder: str) -> None:
        try:
            state = torch.load(os.path.join(folder, CHECKPOINT_FILE), weights_only=False)
        except Exception as error:  # cut short, garbled or missing: DamagedCheckpointError; others as they are
            damage = damaged_checkpoint(error, CHECKPOINT_FILE)
            if damage is None:
                raise
            raise damage from error
        self.trainer.load_state_dict(state["trainer"])
        self.iteration, self.time_total = state["iteration"], state["time_total"]

    def diagnostics(self, settings: dict[str, Any]) -> dict[str, Any]:
        found = self.trainer.diagnostics(**settings)
        metrics = {m.diagnostic(network, key): value
                   for network, values in found["metrics"].items() for key, value in values.items()}
        if metrics:
            metrics[m.MAX_MASKED_WEIGHT] = self.trainer.max_masked_weight()
        return {"metrics": metrics, "cosines": found["cosines"]}

    def max_masked_weight(self) -> float:
        return self.trainer.max_masked_weight()

    def stop(self) -> None:
        self.trainer.env.close()
