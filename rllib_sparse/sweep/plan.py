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


def training_settings(config: AlgorithmConfig) -> set[str]:
    """Names ``config.training(...)`` takes: each class's ``training`` forwards ``**kwargs`` upward."""
    names: set[str] = set()
    for cls in type(config).__mro__:
        if "training" in vars(cls):
            names |= set(inspect.signature(vars(cls)["training"]).parameters)
    return names - {"self", "kwargs"}


@dataclass(frozen=True)
class PlannedTrial:
    point: GridPoint
    dense_params: int
    nonzero_params: int
    layers: dict  # network -> per-layer shape, density, non-zero and total weights (an MLflow artifact)


def plan(spec: SweepSpec, source: str = "sweep file") -> list[PlannedTrial]:
    """Every trial of the grid, built once on the ``meta`` device to check it and count its parameters."""
    spaces_by_env: dict[str, tuple] = {}
    trials = []
    for point in spec.points():
        config = trial_config(spec, point, source)
        if point.env not in spaces_by_env:
            spaces_by_env[point.env] = env_spaces(config)
        module = planned_module(config, spaces_by_env[point.env])
        counts = module.parameter_counts()
        trials.append(PlannedTrial(point, counts["dense"], counts["nonzero"], module.planned_layers()))
    return trials
