"""The columnar replay returns exactly the transitions it was given (observations stored once), drops
the oldest first, chains interleaved envs, and continues exactly from a saved state. No Ray."""

import numpy as np
import pytest
import torch

from rllib_sparse.replay import TransitionReplay


class Recorder:
    """Drives ``num_envs`` toy envs whose observations are unique ids; keeps every transition given."""

    def __init__(self, replay: TransitionReplay, seed: int = 0):
        self.replay, self.rng = replay, np.random.default_rng(seed)
        self.next_id = 1.0
        self.obs = [self._new() for _ in range(replay.num_envs)]
        self.given: dict[float, tuple] = {}  # action id -> (obs, reward, next_obs, terminated)

    def _new(self) -> float:
        self.next_id += 1.0
        return self.next_id

    def step(self) -> None:
        n = self.replay.num_envs
        obs = np.array(self.obs, dtype=np.float32)[:, None]
        actions = np.array([self._new() for _ in range(n)], dtype=np.float32)[:, None]
        rewards = self.rng.normal(size=n).astype(np.float32)
        end = self.rng.random(n)
        terminated, truncated = end < 0.05, (end >= 0.05) & (end < 0.1)
        next_obs = np.array([self._new() for _ in range(n)], dtype=np.float32)[:, None]
        self.replay.add_batch(obs, actions, rewards, next_obs, terminated, truncated)
        for e in range(n):
            self.given[float(actions[e, 0])] = (float(obs[e, 0]), float(rewards[e]), float(next_obs[e, 0]),
                                                bool(terminated[e]))
            self.obs[e] = self._new() if (terminated[e] or truncated[e]) else float(next_obs[e, 0])


def sampled_transitions(replay: TransitionReplay, batch_size: int = 512, k: int = 2) -> list[tuple]:
    batch = replay.sample(batch_size, k)
    assert batch["obs"].shape == (k, batch_size, 1) and batch["rewards"].shape == (k, batch_size)
    flat = {key: value.reshape(k * batch_size, -1) for key, value in batch.items()}
    return [(float(flat["actions"][i, 0]), float(flat["obs"][i, 0]), float(flat["rewards"][i, 0]),
             float(flat["next_obs"][i, 0]), bool(flat["terminated"][i, 0])) for i in range(k * batch_size)]


@pytest.mark.parametrize("num_envs", [1, 3])
def test_every_sampled_transition_is_one_that_was_added_and_the_newest_are_kept(num_envs):
    replay = TransitionReplay(200, (1,), (1,), num_envs=num_envs, seed=1)
    recorder = Recorder(replay)
    for _ in range(700 // num_envs):
        recorder.step()
    # Episodes end every ~10 steps here: their final observations take room, so a little under 200 live.
    assert 150 < len(replay) <= 200
    newest = sorted(recorder.given)[-len(replay):]
    seen = set()
    for action, obs, reward, next_obs, terminated in sampled_transitions(replay):
        assert (obs, reward, next_obs, terminated) == recorder.given[action]
        seen.add(action)
    assert seen <= set(newest) and len(seen) > 0.8 * len(replay)  # uniform over the live ones


def test_observations_are_stored_once_and_the_memory_is_within_ten_percent_of_the_arrays():
    # DeepMind Control humanoid: 67 observation and 21 action dimensions.
    capacity = 100_000
    replay = TransitionReplay(capacity, (67,), (21,))
    arrays = capacity * (67 * 4 + 21 * 4 + 4 + 1)  # observations once, actions, rewards, terminated flags
    assert replay.nbytes() <= 1.1 * arrays, replay.nbytes() / arrays


def test_a_saved_replay_continues_exactly(tmp_path):
    replay = TransitionReplay(300, (1,), (1,), num_envs=2, seed=3)
    recorder = Recorder(replay, seed=3)
    for _ in range(400):
        recorder.step()
    replay.save(tmp_path / "replay.npz")
    restored = TransitionReplay(300, (1,), (1,), num_envs=2, seed=99)
    restored.load(tmp_path / "replay.npz")
    assert len(restored) == len(replay)
    expected, got = replay.sample(64, 3), restored.sample(64, 3)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    # Adding continues both alike: each env's chain survives the save.
    step = (np.array([[recorder.obs[0]], [recorder.obs[1]]], np.float32), np.array([[-1.0], [-2.0]], np.float32),
            np.array([0.5, 0.25], np.float32), np.array([[-3.0], [-4.0]], np.float32), [False, True], [False, False])
    for one in (replay, restored):
        one.add_batch(*step)
    expected, got = replay.sample(256), restored.sample(256)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_bad_sizes_and_a_misshaped_step_are_refused():
    with pytest.raises(ValueError, match="capacity=0"):
        TransitionReplay(0, (1,), (1,))
    replay = TransitionReplay(10, (1,), (1,), num_envs=2)
    with pytest.raises(ValueError, match="add_batch got 1 env rows; allowed: num_envs=2"):
        replay.add_batch(np.zeros((1, 1)), np.zeros((1, 1)), [0.0], np.zeros((1, 1)), [False], [False])
    with pytest.raises(ValueError, match="the replay is empty"):
        replay.sample(4)
