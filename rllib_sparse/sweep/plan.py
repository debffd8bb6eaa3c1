"""From a sweep file to RLlib configs: one ``AlgorithmConfig`` per grid point, checked on the driver."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rllib_sparse.rllib import algorithm_config, env_spaces, with_sparse_model
from rllib_sparse.envs.atari import is_atari_id
from rllib_sparse.rllib.atari import with_atari
from rllib_sparse.rllib.config import planned_module
from rllib_sparse.rllib.diagnostics import with_diagnostics
from rllib_sparse.sweep.spec import GridPoint, SweepSpec


def trial_config(spec: SweepSpec, point: GridPoint, source: str = "sweep file") -> AlgorithmConfig:
    """The RLlib config of one trial: algorithm, env, hyper-parameters, resources, seed, sparse model."""
    config = algorithm_config(spec.algorithm).environment(point.env, env_config=dict(spec.env_config))
    if is_atari_id(point.env):
        try:
            config = with_atari(config)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
    allowed = training_settings(config)
    for key in point.training:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{source}: training.{key} is not a {spec.algorithm} training setting{hint} "
                             f"(see {type(config).__name__}.training)")
    for key, value in point.training.items():
        _check_training_value(config, key, value, source, spec.algorithm)
    config = config.training(**point.training)
    if spec.smoke:
        config = _smoke(config)
    resources = spec.resources
    config = (config.env_runners(num_env_runners=resources.num_env_runners,
                                 num_envs_per_env_runner=resources.num_envs_per_env_runner)
              .learners(num_gpus_per_learner=resources.gpus_per_trial)
              .resources(num_cpus_for_main_process=resources.cpus_per_trial)
              .debugging(seed=point.seed))
    if spec.module.vf_share_layers:
        config = config.rl_module(model_config={"vf_share_layers": True})
    if spec.diagnostics is not None:
        config = with_diagnostics(config, spec.diagnostics.batch_size)
    return with_sparse_model(config, **point.model.model_dump())


def _smoke(config: AlgorithmConfig) -> AlgorithmConfig:
    """Tiny batches and no minimum iteration time: each iteration takes a second or two."""
    name = config.algo_class.__name__
    if name in ("SAC", "DQN"):
        buffer = {**config.replay_buffer_config, "capacity": 1_000}
        return (config.training(num_steps_sampled_before_learning_starts=64, train_batch_size_per_learner=32,
                                replay_buffer_config=buffer, training_intensity=None)
                .reporting(min_sample_timesteps_per_iteration=128, min_time_s_per_iteration=0))
    config = config.training(train_batch_size_per_learner=128).reporting(min_time_s_per_iteration=0)
    if name == "PPO":
        config = config.training(minibatch_size=64, num_epochs=1)
    return config


def _kind(value) -> str | None:
    """The kind of a default value that a sweep file's value must match (None: anything goes)."""
    if isinstance(value, bool):
        return "a boolean (true/false)"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    return None


def _check_training_value(config: AlgorithmConfig, key: str, value, source: str, algorithm: str) -> None:
    """Refuse ``lr: fast`` here, not after Ray started: the value must be of its default's kind.

    A float setting also takes an RLlib schedule (``[[timestep, value], ...]``); settings whose default
    is None (e.g. ``grad_clip``) take anything RLlib takes.
    """
    default = getattr(config, key, None)
    kind = _kind(default)
    if kind is None or value is None and key in ("grad_clip",):
        return
    if kind == "a number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) or _is_schedule(value)
        kind = "a number or a schedule [[timestep, value], ...]"
    elif kind == "an integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "a boolean (true/false)":
        ok = isinstance(value, bool)
    elif kind == "a string":
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, dict)
    if not ok:
        raise ValueError(f"{source}: training.{key}={value!r} is invalid: {algorithm}'s {key} is {kind} "
                         f"(default {default!r}); allowed: {kind}")


def _is_schedule(value) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(p, list) and len(p) == 2
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in p) for p in value))


def training_settings(config: AlgorithmConfig) -> set[str]:
    """Names ``config.training(...)`` takes: each class's ``training`` forwards ``**kwargs`` upward."""
    names: set[str] = set()
    for cls in type(config).__mro__:
        if "training" in vars(cls):
            names |= set(inspect.signature(vars(cls)["training"]).parameters)
    return names - {"self", "kwargs"}


#: Bytes of training state per (dense) parameter: float32 weights, gradients and Adam's two moments.
#: Masks, target networks, activations and the replay buffer come on top: this is a lower bound.
BYTES_PER_PARAMETER = 16
#: No node has this much memory: a planned trial above it is a typo, refused even by ``validate``.
MEMORY_CEILING_BYTES = 4 << 40


@dataclass(frozen=True)
class PlannedTrial:
    point: GridPoint
    dense_params: int
    nonzero_params: int
    layers: dict  # network -> per-layer shape, density, non-zero and total weights (an MLflow artifact)

    @property
    def memory_bytes(self) -> int:
        """At least this much memory to train the trial (see ``BYTES_PER_PARAMETER``)."""
        return self.dense_params * BYTES_PER_PARAMETER


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.3g} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.3g} PiB"


def too_big(trial: PlannedTrial, limit: str) -> str:
    """One line: what the trial needs, and ``limit`` (e.g. "the largest node has 16 GiB")."""
    return (f"trial {trial.point.name} needs at least {format_bytes(trial.memory_bytes)} of memory "
            f"({trial.dense_params:,} parameters x {BYTES_PER_PARAMETER} bytes: weights, gradients, Adam "
            f"moments), but {limit}; allowed: a smaller width or depth")


def plan(spec: SweepSpec, source: str = "sweep file") -> list[PlannedTrial]:
    """Every trial of the grid, built once on the ``meta`` device to check it and count its parameters."""
    spaces_by_env: dict[str, tuple] = {}
    trials = []
    for point in spec.points():
        config = trial_config(spec, point, source)
        if point.env not in spaces_by_env:
            spaces_by_env[point.env] = env_spaces(config)
        try:
            module = planned_module(config, spaces_by_env[point.env])
        except RuntimeError as error:  # e.g. torch's "Storage size calculation overflowed"
            raise ValueError(f"{source}: trial {point.name} cannot be built: {str(error).splitlines()[0]}") from None
        counts = module.parameter_counts()
        trial = PlannedTrial(point, counts["dense"], counts["nonzero"], module.planned_layers())
        if trial.memory_bytes > MEMORY_CEILING_BYTES:
            raise ValueError(f"{source}: {too_big(trial, f'no machine has over {format_bytes(MEMORY_CEILING_BYTES)}')}")
        trials.append(trial)
    return trials
