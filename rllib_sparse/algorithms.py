"""The algorithm table: every algorithm a sweep file or ``with_sparse_model`` can name, in one place.

One row per algorithm says which trial runner trains it in sweeps and which RLlib config class
configures it (both as ``"module:Class"`` paths, resolved on first use, so this module imports no Ray
and sweep files are validated without it; no config class for an algorithm that is not RLlib's, such as
streaming RL's), which networks it has, which action spaces it takes, and how ``--smoke`` shrinks it.
The config class decides the RL module, Catalog and Learner (``get_default_rl_module_spec``,
``get_default_learner_class``), so the row names no other class. Every list of algorithms, every
per-algorithm check and the command-line help derive from this table; adding an RLlib algorithm is its
folder under ``rllib_sparse/rllib/`` plus one ``register_algorithm`` row; adding a trainer that is not
RLlib is a trial runner plus a row naming its class (see docs/extending.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import import_module
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class AlgorithmRow:
    """One algorithm: its name and what implements it."""

    name: str  #: as in sweep files (``algorithm: PPO``); upper case
    #: ``"module:Class"`` of its RLlib ``AlgorithmConfig``, which picks its sparse RL module, Catalog and
    #: Learner; None for an algorithm RLlib does not train.
    config_class: str | None = None
    #: Which sparse-model roles the algorithm's networks use ("actor" and/or "critic").
    roles: tuple[str, ...] = ("actor", "critic")
    #: gymnasium action space types it takes.
    action_spaces: tuple[str, ...] = ("Box", "Discrete")
    #: Whether ``module.vf_share_layers`` (one trunk for policy and value) applies.
    shared_trunk: bool = False
    #: ``--smoke``: ``config.training(...)`` and ``config.reporting(...)`` settings for seconds-long trials.
    smoke_training: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    smoke_reporting: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    #: ``"module:Class"`` of the trial runner that trains it in sweeps (a ``rllib_sparse.sweep.trial.TrialRunner``).
    runner: str = "rllib_sparse.sweep.rllib_runner:RLlibTrialRunner"
    summary: str = ""

    def takes(self, action_space: Any) -> bool:
        return type(action_space).__name__ in self.action_spaces

    @property
    def is_rllib(self) -> bool:
        """Whether RLlib trains it (an ``AlgorithmConfig`` exists: ``with_sparse_model``, ``inspect``)."""
        return self.config_class is not None


_ALGORITHMS: dict[str, AlgorithmRow] = {}


def register_algorithm(row: AlgorithmRow) -> AlgorithmRow:
    """Add (or replace) a row. Names are upper case, as RLlib spells its config classes."""
    if row.name != row.name.upper() or not row.name.replace("_", "").isalnum():
        raise ValueError(f"algorithm name {row.name!r} is invalid; allowed: upper-case letters, digits and _")
    _ALGORITHMS[row.name] = row
    return row


def algorithm_names() -> tuple[str, ...]:
    return tuple(_ALGORITHMS)


def algorithm_rows() -> tuple[AlgorithmRow, ...]:
    return tuple(_ALGORITHMS.values())


def get_algorithm(name: str) -> AlgorithmRow:
    """The row of ``name`` (any case); a one-line ValueError naming the allowed ones if unknown."""
    row = _ALGORITHMS.get(name.upper()) if isinstance(name, str) else None
    if row is None:
        raise ValueError(f"algorithm={name!r} is not supported; allowed: {', '.join(_ALGORITHMS)}")
    return row


def rllib_algorithm(name: str) -> AlgorithmRow:
    """The row of ``name`` if RLlib trains it; else a one-line ValueError naming those that RLlib trains."""
    row = get_algorithm(name)
    if not row.is_rllib:
        allowed = ", ".join(r.name for r in _ALGORITHMS.values() if r.is_rllib)
        runner = row.runner.rpartition(":")[2]
        raise ValueError(f"algorithm={name!r} is not an RLlib algorithm (its trial runner {runner} trains it in "
                         f"sweep files); allowed here: {allowed}")
    return row


@functools.cache
def resolve(path: str) -> type:
    """The class a row names as ``"module:Class"``, imported on first use; a one-line ValueError when
    that module or class does not exist (an error inside an existing module is raised as it is)."""
    module_name, _, class_name = path.partition(":")
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as error:
        if not error.name or not (module_name == error.name or module_name.startswith(f"{error.name}.")):
            raise  # a module that the named one imports is missing: not a wrong path
        raise ValueError(f"{path!r} names no class (no module {module_name!r}); expected \"module:Class\"") from None
    found = getattr(module, class_name, None) if class_name else None
    if not isinstance(found, type):
        what = f"no class {class_name!r} in {module_name}" if class_name else "no :Class"
        raise ValueError(f"{path!r} names no class ({what}); expected \"module:Class\"")
    return found


def _frozen(**settings: Any) -> MappingProxyType:
    return MappingProxyType(dict(settings))


_OURS = "rllib_sparse.rllib"
_ON_POLICY_SMOKE = _frozen(train_batch_size_per_learner=128)
_ON_POLICY_SMOKE_REPORTING = _frozen(min_time_s_per_iteration=0)
_OFF_POLICY_SMOKE = _frozen(num_steps_sampled_before_learning_starts=64, train_batch_size_per_learner=32,
                            replay_buffer_config={"capacity": 1_000}, training_intensity=None)
_OFF_POLICY_SMOKE_REPORTING = _frozen(min_sample_timesteps_per_iteration=128, min_time_s_per_iteration=0)

register_algorithm(AlgorithmRow(
    "PPO", f"{_OURS}.ppo:SparsePPOConfig", shared_trunk=True,
    smoke_training=_frozen(**_ON_POLICY_SMOKE, minibatch_size=64, num_epochs=1),
    smoke_reporting=_ON_POLICY_SMOKE_REPORTING, summary="policy (actor) and value (critic) networks"))
register_algorithm(AlgorithmRow(
    "APPO", f"{_OURS}.ppo:SparseAPPOConfig", shared_trunk=True,
    smoke_training=_ON_POLICY_SMOKE, smoke_reporting=_ON_POLICY_SMOKE_REPORTING,
    summary="as PPO, asynchronous, with a target policy"))
register_algorithm(AlgorithmRow(
    "IMPALA", f"{_OURS}.ppo:SparseIMPALAConfig", shared_trunk=True,
    smoke_training=_ON_POLICY_SMOKE, smoke_reporting=_ON_POLICY_SMOKE_REPORTING,
    summary="PPO's module, V-trace learner"))
register_algorithm(AlgorithmRow(
    "SAC", f"{_OURS}.sac:SparseSACConfig",
    smoke_training=_OFF_POLICY_SMOKE, smoke_reporting=_OFF_POLICY_SMOKE_REPORTING,
    summary="policy (actor) and Q networks (critic, twin critic)"))
register_algorithm(AlgorithmRow(
    "DQN", f"{_OURS}.dqn:SparseDQNConfig", roles=("critic",), action_spaces=("Discrete",),
    smoke_training=_OFF_POLICY_SMOKE, smoke_reporting=_OFF_POLICY_SMOKE_REPORTING,
    summary="one Q network (critic); dueling and double-Q"))
register_algorithm(AlgorithmRow(
    "DDPG", f"{_OURS}.ddpg:DDPGConfig", action_spaces=("Box",),
    smoke_training=_OFF_POLICY_SMOKE, smoke_reporting=_OFF_POLICY_SMOKE_REPORTING,
    summary="deterministic tanh policy (actor) and one Q network (critic); SAC's off-policy loop"))
register_algorithm(AlgorithmRow(
    "STREAMAC", runner="rllib_sparse.sweep.stream_runner:StreamTrialRunner", action_spaces=("Box",),
    smoke_reporting=_frozen(min_sample_timesteps_per_iteration=200),
    summary="streaming actor-critic, Stream AC(λ) with ObGD: one transition at a time, no replay "
            "(rllib_sparse.streaming; not RLlib)"))
