"""Read sparsity facts back from a running RLlib ``Algorithm`` (learners and env runners)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray.rllib.core import DEFAULT_MODULE_ID

from rllib_sparse.sparsity import max_masked_magnitude


def on_learners(algo, fn: Callable[[Any], Any]) -> list:
    """``fn(learner)`` on every learner (local or remote), as plain values."""
    results = algo.learner_group.foreach_learner(fn)
    return [r.get() if hasattr(r, "ok") else r for r in results]


def on_env_runners(algo, fn: Callable[[Any], Any]) -> list:
    """``fn(env_runner)`` on the remote env runners, or on the local one when there are none."""
    group = algo.env_runner_group
    remote = group.num_remote_env_runners() > 0
    return list(group.foreach_env_runner(fn, local_env_runner=not remote))


def max_masked_weight(algo, module_id: str = DEFAULT_MODULE_ID) -> float:
    """Largest |weight| at a pruned place over every copy of the module (0.0 while masks hold)."""
    learners = on_learners(algo, lambda learner: max_masked_magnitude(learner.module[module_id]))
    runners = on_env_runners(algo, lambda runner: max_masked_magnitude(runner.module))
    return max([0.0, *learners, *runners])
