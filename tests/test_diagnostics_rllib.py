"""The diagnostics on real RLlib Learners: which rows they keep, what they report, and that they change nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_recent_rows_keep_the_newest_rows():
    from rllib_sparse.rllib.core.diagnostics import RecentRows

    rows = RecentRows(capacity=5)
    for start in range(0, 12, 3):  # minibatches of 3 rows: 0-2, 3-5, 6-8, 9-11
        rows.add(torch.arange(start, start + 3).float().unsqueeze(1), torch.arange(start, start + 3))
    obs, actions = rows.tensors()
    assert obs.squeeze(1).tolist() == [7.0, 8.0, 9.0, 10.0, 11.0] and actions.tolist() == [7, 8, 9, 10, 11]
    assert len(rows) == 5 and len(rows._chunks) == 2  # older minibatches were let go
    rows.add(torch.zeros(2, 1), None)
    assert rows.tensors()[1] is None  # rows without actions: no actions at all


def _config(algo: str):
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.algorithms.sac import SACConfig

    from rllib_sparse import with_sparse_model

    if algo == "PPO":
        config = (PPOConfig().environment("CartPole-v1")
                  .training(train_batch_size_per_learner=256, minibatch_size=128, num_epochs=1))
        return with_sparse_model(config, "simba", width=32, depth=2, sparsity=0.8), ("actor", "critic")
    if algo == "SAC":
        config = SACConfig().environment("Pendulum-v1").training(
            num_steps_sampled_before_learning_starts=64, train_batch_size_per_learner=64)
        return with_sparse_model(config, "simba", width=32, sparsity=0.8), ("actor", "critic")
    # 200 env steps an iteration (RLlib's default for DQN is 1,000, each with an update): ~136 updates are
    # as many rows and gradient norms as the assertions need, at a fifth of the cost.
    config = DQNConfig().environment("CartPole-v1").training(
        num_steps_sampled_before_learning_starts=64, train_batch_size_per_learner=64).reporting(
        min_sample_timesteps_per_iteration=200)
    return with_sparse_model(config, "mlp", width=32, sparsity=0.5), ("critic",)


@pytest.mark.ray
@pytest.mark.parametrize("algo", ["PPO", "SAC", "DQN"])
def test_learner_diagnostics_report_every_network_and_change_nothing(ray_local, algo):
    from ray.rllib.core import DEFAULT_MODULE_ID

    from rllib_sparse import learner_diagnostics, with_diagnostics
    from rllib_sparse.rllib.core.inspection import on_learners

    config, networks = _config(algo)
    config = with_diagnostics(config.env_runners(num_env_runners=0).reporting(min_time_s_per_iteration=0), rows=96)
    algo_ = config.build_algo()
    try:
        algo_.train()
        algo_.train()
        state = lambda: on_learners(algo_, lambda l: {k: v.clone() for k, v in  # noqa: E731
                                                      l.module[DEFAULT_MODULE_ID].state_dict().items()})[0]
        before = state()
        found = learner_diagnostics(algo_, interference_samples=6)  # the paper's dormant convention
        usual = learner_diagnostics(algo_, interference_samples=0, dormant="post_activation", taus=(0.0, 0.1))
        after = state()
    finally:
        algo_.stop()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    metrics, cosines = found["metrics"], found["cosines"]
    assert metrics["mask/max_masked_weight"] == 0.0
    assert sorted(cosines) == sorted(networks)
    for network in networks:
        m = {k.split("/", 2)[2]: v for k, v in metrics.items() if k.startswith(f"diag/{network}/")}
        assert m["rows"] == 96.0
        assert 1 <= m["srank"] <= 32  # at most the feature width (32) and the batch (96)
        assert 0.0 <= m["dormant_pct_tau0.1"] <= m["dormant_pct_tau0.2"] <= 100.0
        assert any(k.startswith("dormant_pct_tau0.1/") for k in m)  # per layer too
        u = {k.split("/", 2)[2]: v for k, v in usual["metrics"].items() if k.startswith(f"diag/{network}/")}
        assert 0.0 <= u["dormant_tau0"] <= u["dormant_tau0.1"] <= 1.0 and "dormant_pct_tau0.1" not in u
        assert m["param_norm"] > 0 and m["feature_norm"] > 0 and m["grad_norm"] > 0
        # The mean over every update of the two iterations; the second call starts a new window.
        assert m["grad_norm_updates"] >= 2 and u["grad_norm_updates"] == 0
        assert -1.0 <= m["grad_cosine_mean"] <= 1.0 and 0.0 <= m["grad_negative_fraction"] <= 1.0
        matrix = cosines[network]
        assert matrix.shape == (6, 6) and np.array_equal(matrix, matrix.T) and np.all(np.diag(matrix) == 1.0)


@pytest.mark.ray
def test_diagnostics_without_kept_rows_is_a_clear_error(ray_local):
    from rllib_sparse import learner_diagnostics

    config, _ = _config("PPO")
    algo = config.env_runners(num_env_runners=0).build_algo()
    try:
        algo.train()
        with pytest.raises(RuntimeError, match="no training rows kept .* enable diagnostics"):
            learner_diagnostics(algo)
    finally:
        algo.stop()
