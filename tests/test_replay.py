"""The fast replay buffer returns exactly RLlib's transitions, and RLlib's SAC trains with it."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

from rllib_sparse.rllib.core.replay import FastEpisodeReplayBuffer


def _episode_chunks(seed: int, chunk: int = 37, max_steps: int = 90) -> list[SingleAgentEpisode]:
    """Real env-runner-like chunks: numpy'd, cut every ``chunk`` steps (continuations share an id),
    ending terminated, truncated or still running, with infos and an extra model output."""
    env = gym.make("CartPole-v1", max_episode_steps=max_steps)
    rng = np.random.default_rng(seed)
    chunks = []
    for e in range(6):
        obs, info = env.reset(seed=seed + e)
        episode = SingleAgentEpisode(observation_space=env.observation_space, action_space=env.action_space)
        episode.add_env_reset(obs, {"reset": e})
        for t in range(max_steps + 5):
            action = int(rng.integers(2))
            obs, reward, terminated, truncated, info = env.step(action)
            episode.add_env_step(obs, action, np.float32(reward + t * 0.01), {"t": t}, terminated=terminated,
                                 truncated=truncated, extra_model_outputs={"action_logp": np.float32(-0.5 - t)})
            if terminated or truncated:
                break
            if len(episode) == chunk:
                chunks.append(episode.to_numpy())
                episode = episode.cut()
        if len(episode):
            chunks.append(episode.to_numpy())
    return chunks


def _same(a, b) -> bool:
    """Equal values of equal types (a float32 reward is not a float64 one)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, (np.ndarray, np.generic)):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return a == b


def _fields(episode: SingleAgentEpisode) -> dict:
    return {
        "id": episode.id_, "t_started": episode.t_started, "len": len(episode),
        "obs": episode.get_observations(slice(None)), "next_obs": episode.get_observations(-1),
        "actions": episode.get_actions(slice(None)), "rewards": episode.get_rewards(slice(None)),
        "infos": episode.get_infos(slice(None)), "terminated": episode.is_terminated,
        "truncated": episode.is_truncated,
        "lookback": [episode.observations.lookback, episode.actions.lookback, episode.rewards.lookback],
        "extra": {k: (v.lookback, v.data) for k, v in episode.extra_model_outputs.items()},
    }


@pytest.mark.parametrize("n_step, extra, lookback", [(1, False, 0), (3, True, 0), ((1, 5), False, 1), (7, False, 0)])
def test_fast_buffer_samples_exactly_rllibs_transitions(n_step, extra, lookback):
    capacity = 300  # small enough that the oldest chunks are evicted (index offsets)
    rllib, fast = (cls(capacity=capacity, batch_size_B=64) for cls in (EpisodeReplayBuffer, FastEpisodeReplayBuffer))
    batches = [_episode_chunks(seed) for seed in (0, 100)]
    for buffer in (rllib, fast):  # each gets its own copies: adding a continuation extends the stored chunk
        buffer.rng = np.random.default_rng(7)
        for chunks in batches:
            buffer.add(copy.deepcopy(chunks))
    assert rllib.get_num_episodes_evicted() > 0
    for _ in range(4):
        kwargs = dict(num_items=64, n_step=n_step, gamma=0.97, include_extra_model_outputs=extra,
                      lookback=lookback, min_batch_length_T=0, sample_episodes=True)
        theirs, ours = rllib.sample(**kwargs), fast.sample(**kwargs)
        assert len(ours) == len(theirs) >= 64
        for a, b in zip(theirs, ours):
            fa, fb = _fields(a), _fields(b)
            for key in fa:
                assert _same(fa[key], fb[key]), key
    assert rllib.rng.bit_generator.state == fast.rng.bit_generator.state
    assert rllib.get_metrics() == fast.get_metrics()
    assert rllib.sampled_timesteps == fast.sampled_timesteps


def test_fast_buffer_sequences_are_rllibs():
    rllib, fast = (cls(capacity=1000) for cls in (EpisodeReplayBuffer, FastEpisodeReplayBuffer))
    chunks = _episode_chunks(5)
    for buffer in (rllib, fast):
        buffer.rng = np.random.default_rng(3)
        buffer.add(copy.deepcopy(chunks))
    kwargs = dict(num_items=8, n_step=1, batch_length_T=4, lookback=1, sample_episodes=True)
    theirs, ours = rllib.sample(**kwargs), fast.sample(**kwargs)
    assert [_fields(e)["obs"].tolist() for e in theirs] == [_fields(e)["obs"].tolist() for e in ours]


@pytest.mark.ray
@pytest.mark.parametrize("algorithm", ["SAC", "DDPG"])
def test_sac_and_ddpg_sample_rllibs_episode_buffer_with_the_fast_one(ray_local, algorithm):
    from rllib_sparse.networks import SparseModelConfig
    from rllib_sparse.rllib import algorithm_config, with_sparse_model
    from rllib_sparse.sparsity import max_masked_magnitude

    config = (algorithm_config(algorithm).environment("Pendulum-v1").env_runners(num_env_runners=0)
              .training(train_batch_size_per_learner=32, num_steps_sampled_before_learning_starts=64,
                        replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 1000})
              .reporting(min_sample_timesteps_per_iteration=128, min_time_s_per_iteration=0))
    sizes = SparseModelConfig.parse({"name": "mlp", "width": 32, "depth": 1, "sparsity": 0.8})
    algo = with_sparse_model(config, sizes).build_algo()  # the row found from the config's own algorithm class
    try:
        assert type(algo.local_replay_buffer) is FastEpisodeReplayBuffer
        assert algo.config.replay_buffer_config["type"] == "EpisodeReplayBuffer"  # the config keeps RLlib's name
        result = algo.train()
        assert result["learners"]["default_policy"]["num_module_steps_trained"] > 0
        module = algo.learner_group._learner.module["default_policy"]
        assert max_masked_magnitude(module) == 0.0
    finally:
        algo.stop()
