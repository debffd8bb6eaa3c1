"""One folder per algorithm family: each config picks its classes, each config's docstring example runs,
and the network layout (not a network's name) says what is pruned, diagnosed and given an optimizer.

No Ray is started: configs, modules and a local Learner are built in this process.
"""

import re
import textwrap

import gymnasium as gym
import pytest

from rllib_sparse.algorithms import algorithm_rows, resolve
from rllib_sparse.rllib import algorithm_config, sparse_module_spec, with_sparse_model

RLLIB_ROWS = [row for row in algorithm_rows() if row.is_rllib]


def docstring_example(cls: type) -> str:
    """The ``.. testcode::`` block of a class docstring, dedented."""
    found = re.search(r"\.\. testcode::\n\n(.*?)(?:\n\s*\n\s*\S*\"\"\"|\Z)", cls.__doc__ or "", re.DOTALL)
    assert found, f"{cls.__name__}'s docstring has no `.. testcode::` example"
    return textwrap.dedent(found.group(1))


@pytest.mark.parametrize("row", RLLIB_ROWS, ids=lambda row: row.name)
def test_each_config_class_carries_an_example_that_runs(row):
    code = docstring_example(resolve(row.config_class))
    assert "with_sparse_model" in code and "assert" in code
    exec(compile(code, f"<{row.config_class} docstring>", "exec"), {})


@pytest.mark.parametrize("row", RLLIB_ROWS, ids=lambda row: row.name)
def test_each_config_decides_its_module_catalog_and_learner(row):
    config = algorithm_config(row.name)
    chosen = config.get_default_rl_module_spec()
    spec = sparse_module_spec(row.name, width=32)
    assert (spec.module_class, spec.catalog_class) == (chosen.module_class, chosen.catalog_class)
    folder = row.config_class.partition(":")[0]
    for cls in (chosen.module_class, chosen.catalog_class, config.get_default_learner_class()):
        assert cls.__module__.startswith(folder + "."), (cls, folder)


def test_a_plain_rllib_config_gets_the_classes_of_its_algorithms_sparse_config():
    from ray.rllib.algorithms.dqn import DQNConfig

    config = with_sparse_model(DQNConfig().environment("CartPole-v1"), "mlp", width=32, sparsity=0.5)
    sparse = algorithm_config("DQN")
    assert config.learner_class is sparse.get_default_learner_class()
    assert config.rl_module_spec.module_class is sparse.get_default_rl_module_spec().module_class


def _sac_learner(config_class: str, **training):
    config = algorithm_config(config_class).environment("Pendulum-v1").training(**training)
    config = with_sparse_model(config, "mlp", width=16, depth=1, sparsity=0.5)
    return config.build_learner(env=gym.make("Pendulum-v1"))


def test_sac_and_ddpg_optimizers_come_from_the_layout():
    from ray.rllib.core import DEFAULT_MODULE_ID

    sac = _sac_learner("SAC", weight_decay=0.01)
    module = sac.module[DEFAULT_MODULE_ID]
    optimizers = dict(sac.get_optimizers_for_module(DEFAULT_MODULE_ID))
    assert list(optimizers) == ["qf", "qf_twin", "policy", "alpha"]  # RLlib's SAC order
    twin = {id(p) for name in ("qf_twin_encoder", "qf_twin") for p in getattr(module, name).parameters()}
    assert {id(p) for group in optimizers["qf_twin"].param_groups for p in group["params"]} == twin
    assert type(optimizers["qf_twin"]).__name__ == "AdamW" and type(optimizers["alpha"]).__name__ == "Adam"

    ddpg = _sac_learner("DDPG")
    assert [name for name, _ in ddpg.get_optimizers_for_module(DEFAULT_MODULE_ID)] == ["qf", "policy"]


def test_the_twin_critic_is_pruned_and_trained_but_not_diagnosed_because_its_layout_says_so():
    from rllib_sparse.rllib.core.module import ACTOR_AND_Q_LAYOUT, Network
    from rllib_sparse.rllib.core.sparse_model import planned_module
    from rllib_sparse.rllib.sac.module import SparseSACTorchRLModule

    config = with_sparse_model(algorithm_config("SAC").environment("Pendulum-v1"), "mlp", width=16, sparsity=0.5)
    module = config.get_multi_rl_module_spec(env=gym.make("Pendulum-v1")).build()["default_policy"]
    assert set(module.sparsity_reports()) == {"actor", "critic", "critic_twin"}
    assert set(module.networks_to_diagnose()) == {"actor", "critic"}

    class DiagnosedTwin(SparseSACTorchRLModule):
        def network_layout(self):
            twin = ACTOR_AND_Q_LAYOUT["critic_twin"]
            return {**ACTOR_AND_Q_LAYOUT, "critic_twin": Network(twin.role, twin.parts, optimizer=twin.optimizer,
                                                                 lr=twin.lr)}

    config = config.rl_module(rl_module_spec=config.rl_module_spec.__class__(
        module_class=DiagnosedTwin, catalog_class=config.rl_module_spec.catalog_class))
    assert set(planned_module(config).networks_to_diagnose()) == {"actor", "critic", "critic_twin"}
