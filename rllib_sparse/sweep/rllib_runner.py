"""The trial runner for RLlib's algorithms: a grid point as an RLlib ``AlgorithmConfig``, trained by RLlib.

``trial_config`` builds the config of one trial (algorithm and env from the tables, the file's
hyper-parameters checked by name and kind, resources, seed, ``--smoke`` settings from the algorithm's
row, the sparse model); ``RLlibTrialRunner`` plans, builds, trains, saves and restores it for the one
trial loop (``rllib_sparse.sweep.trial``).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

from rllib_sparse import metrics as m
from rllib_sparse.algorithms import AlgorithmRow, get_algorithm
from rllib_sparse.envs import EnvFamily, env_family, env_spaces
from rllib_sparse.rllib import algorithm_config, with_env_family, with_sparse_model
from rllib_sparse.rllib.core.diagnostics import learner_diagnostics, with_diagnostics
from rllib_sparse.rllib.core.inspection import max_masked_weight
from rllib_sparse.rllib.core.learner import with_fast_learner
from rllib_sparse.rllib.core.sparse_model import env_spaces as config_spaces
from rllib_sparse.rllib.core.sparse_model import planned_module
from rllib_sparse.sweep.spec import GridPoint, SweepSpec
from rllib_sparse.sweep.trainable import damaged_checkpoint
from rllib_sparse.sweep.trial import PlannedTrial, TrialRunner


def trial_config(spec: SweepSpec, point: GridPoint, source: str = "sweep file",
                 spaces: Callable[[], tuple[Any, Any]] | None = None) -> AlgorithmConfig:
    """The RLlib config of one trial: algorithm, env, hyper-parameters, resources, seed, sparse model.

    ``spaces`` returns (observation, action) when the caller has its own way to know them (planning:
    found once per env and env_config); it is called once the settings are checked, and spares making
    the env to check the model against it. A config to build a trial from is made without.
    """
    row = get_algorithm(spec.algorithm)  # looked up once; the row object travels from here
    config = algorithm_config(row).environment(point.env, env_config=dict(spec.env_config))
    try:
        config = with_env_family(config)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    for section, values in (("training", point.training), ("reporting", spec.reporting)):
        allowed = config_settings(config, section)
        for key in values:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{source}: {section}.{key} is not a {spec.algorithm} {section} setting{hint} "
                                 f"(see {type(config).__name__}.{section})")
        for key, value in values.items():
            _check_training_value(config, key, value, source, spec.algorithm, section)
    config = config.training(**point.training).reporting(**spec.reporting)
    if spec.evaluation is not None:
        config = config.evaluation(**spec.evaluation.rllib_settings())
    if spec.smoke:
        config = _smoke(config, row)
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
    config = with_fast_learner(config, **spec.learner.model_dump())
    if spaces is not None:
        observation_space, action_space = spaces()
        config = config.environment(observation_space=observation_space, action_space=action_space)
    config = with_sparse_model(config, point.model, algorithm=row)
    try:
        config.validate()  # RLlib's own checks (e.g. DDPG's one critic), here rather than after Ray started
    except ValueError as error:
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ValueError(f"{source}: {first}") from None
    return config


def rllib_spaces(env_id: str, env_config: dict, source: str) -> tuple[Any, Any]:
    """An env's spaces found as RLlib finds them (``tune.register_env`` names too), with its refusals;
    the ``spaces_of`` of ``rllib_sparse.envs.env_spaces`` for RLlib's trials."""
    return config_spaces(AlgorithmConfig().environment(env_id, env_config=env_config))


def _smoke(config: AlgorithmConfig, row: AlgorithmRow) -> AlgorithmConfig:
    """The row's tiny batches and no minimum iteration time: each iteration takes a second or two."""
    training = {}
    for key, value in row.smoke_training.items():
        current = getattr(config, key, None)
        training[key] = {**current, **value} if isinstance(value, dict) and isinstance(current, dict) else value
    return config.training(**training).reporting(**dict(row.smoke_reporting))


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


def _check_training_value(config: AlgorithmConfig, key: str, value, source: str, algorithm: str,
                          section: str = "training") -> None:
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
        raise ValueError(f"{source}: {section}.{key}={value!r} is invalid: {algorithm}'s {key} is {kind} "
                         f"(default {default!r}); allowed: {kind}")


def _is_schedule(value) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(p, list) and len(p) == 2
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in p) for p in value))


def config_settings(config: AlgorithmConfig, section: str = "training") -> set[str]:
    """Names ``config.<section>(...)`` takes: each class's method forwards ``**kwargs`` upward."""
    names: set[str] = set()
    for cls in type(config).__mro__:
        if section in vars(cls):
            names |= set(inspect.signature(vars(cls)[section]).parameters)
    return names - {"self", "kwargs"}


#: Reported key -> path in RLlib's result dict.
_RESULT_PATHS = {
    m.EPISODE_RETURN: ("env_runners", "episode_return_mean"),
    m.EPISODE_RETURN_MAX: ("env_runners", "episode_return_max"),
    m.EPISODE_LENGTH: ("env_runners", "episode_len_mean"),
    m.ENV_STEPS: ("num_env_steps_sampled_lifetime",),
    m.ITERATION: ("training_iteration",),
    m.TIME_TOTAL: ("time_total_s",),
    m.TIME_THIS_ITERATION: ("time_this_iter_s",),
}
#: Learner statistics worth a curve (matched as substrings of the key).
_LEARNER_KEYS = ("loss", "entropy", "kl", "global_norm", "vf_explained_var", "alpha_value", "qf_mean",
                 "td_error_mean")

def curate(result: dict, family: EnvFamily | None = None) -> dict[str, float]:
    """The metrics a study needs, from one RLlib result.

    ``family`` with a full-episode return (Atari): RLlib's episodes are then single lives with clipped
    rewards, the training signal; ``episode_return_mean`` is the full game's unclipped return instead
    (absent until a game ends), and RLlib's value moves to ``training_episode_return_mean``.
    """
    out: dict[str, float] = {}
    for key, path in _RESULT_PATHS.items():
        value: Any = result
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            out[key] = float(value)
    for module_id, stats in (result.get("learners") or {}).items():
        if module_id.startswith("__") or not isinstance(stats, dict):
            continue
        for key, value in stats.items():
            if isinstance(value, (int, float)) and any(k in key for k in _LEARNER_KEYS):
                out[f"{m.LEARNER_PREFIX}{key}"] = float(value)
    runners = result.get("env_runners") or {}
    if family is not None and family.full_episode_return is not None:
        for key in (m.EPISODE_RETURN, m.EPISODE_RETURN_MAX, m.EPISODE_LENGTH):
            value = out.pop(key, None)
            if key == m.EPISODE_RETURN and value is not None:
                out[m.TRAINING_EPISODE_RETURN] = value
        if isinstance(runners.get(family.full_episode_return), (int, float)):
            out[m.EPISODE_RETURN] = float(runners[family.full_episode_return])
            if family.full_episode_length is not None:
                out[m.EPISODE_LENGTH] = float(runners[family.full_episode_length])
    evaluation = (result.get("evaluation") or {}).get("env_runners") or {}
    full = family.full_episode_return if family is not None else None
    eval_key = full or "episode_return_mean"
    if isinstance(evaluation.get(eval_key), (int, float)) and evaluation[eval_key] == evaluation[eval_key]:
        out[m.EVALUATION_RETURN] = float(evaluation[eval_key])
    if out.get(m.TIME_THIS_ITERATION):
        sampled = ((result.get("env_runners") or {}).get("num_env_steps_sampled") or 0)
        out[m.ENV_STEPS_PER_S] = float(sampled) / out[m.TIME_THIS_ITERATION]
    return out


class RLlibTrialRunner(TrialRunner):
    """A grid point trained by RLlib: one ``Algorithm`` built from ``trial_config``."""

    @classmethod
    def _planning_config(cls, spec: SweepSpec, point: GridPoint, source: str) -> tuple[AlgorithmConfig, Any]:
        """``trial_config`` and the env's spaces, the env made once per (env, env_config) in this process
        (``rllib_sparse.envs.env_spaces``), as RLlib makes it."""
        config = trial_config(spec, point, source,
                              spaces=lambda: env_spaces(point.env, spec.env_config, source, rllib_spaces))
        return config, (config.observation_space, config.action_space)

    @classmethod
    def plan(cls, spec: SweepSpec, point: GridPoint, source: str) -> PlannedTrial:
        config, spaces = cls._planning_config(spec, point, source)
        try:
            module = planned_module(config, spaces)
        except RuntimeError as error:  # e.g. torch's "Storage size calculation overflowed"
            raise ValueError(f"{source}: trial {point.name} cannot be built: {str(error).splitlines()[0]}") from None
        counts = module.parameter_counts()
        return PlannedTrial(counts["dense"], counts["nonzero"], module.planned_layers())

    @classmethod
    def resources(cls, spec: SweepSpec, point: GridPoint) -> list[dict[str, float]]:
        config, _ = cls._planning_config(spec, point, "sweep file")
        return [dict(bundle) for bundle in config.algo_class.default_resource_request(config).bundles]

    def build(self) -> None:
        self.algo = trial_config(self.spec, self.point, self.source).build_algo()
        self.family = env_family(self.point.env)

    def train(self) -> dict[str, float]:
        metrics = curate(self.algo.train(), self.family)
        interval = self.algo.config.evaluation_interval
        if interval and int(metrics.get(m.ITERATION, 0)) % interval:
            # RLlib evaluates in iterations that are multiples of the interval, and repeats that result in
            # the next iteration's: a second point at a later step for a policy measured earlier.
            metrics.pop(m.EVALUATION_RETURN, None)
        return metrics

    def save(self, folder: str) -> None:
        self.algo.save_to_path(folder)

    def restore(self, folder: str) -> None:
        """RLlib's restore; a file of the checkpoint that is cut short, garbled or missing raises
        ``DamagedCheckpointError`` (any other error, e.g. a config that does not match, as it is)."""
        try:
            self.algo.restore_from_path(folder)
        except Exception as error:
            damage = damaged_checkpoint(error, "RLlib could not read it")
            if damage is None:
                raise
            raise damage from error

    def diagnostics(self, settings: dict[str, Any]) -> dict[str, Any]:
        return learner_diagnostics(self.algo, **settings)

    def max_masked_weight(self) -> float:
        return max_masked_weight(self.algo)

    def stop(self) -> None:
        self.algo.stop()
