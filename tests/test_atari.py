"""Atari: preprocessing as specified (both env paths), registration, and sparse CNN agents training on a
real ROM from ale-py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rllib_sparse.envs import AtariOptions, atari_env_ids, make_atari, make_atari_vector

REPO = Path(__file__).resolve().parent.parent
FIRE = 1


def _paths(env_id="ALE/Breakout-v5", **options):
    """The same game through the per-env path and the native vector path (one slot each)."""
    return {"single": make_atari(env_id, **options), "vector": make_atari_vector(env_id, 1, **options)}


def _step(env, action):
    """One step of either path, as single-env values."""
    if hasattr(env, "num_envs"):
        obs, reward, terminated, truncated, info = env.step(np.array([action]))
        info = {k: v[0] for k, v in info.items() if not k.startswith("_") and (f"_{k}" not in info or info[f"_{k}"][0])}
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), info
    return env.step(action)


def _reset(env, seed=None):
    obs, info = env.reset(seed=seed)
    if hasattr(env, "num_envs"):
        return obs[0], {k: v[0] for k, v in info.items()}
    return obs, info


@pytest.mark.parametrize("path", ["single", "vector"])
def test_observations_are_84x84_uint8_with_4_stacked_frames_channels_last(path):
    env = _paths()[path]
    space = env.single_observation_space if path == "vector" else env.observation_space
    assert space.shape == (84, 84, 4) and space.dtype == np.uint8
    obs, _ = _reset(env, seed=3)
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8
    # A new game's stack is zero-padded: only the newest frame has pixels.
    assert [int(obs[..., i].max()) for i in range(3)] == [0, 0, 0] and obs[..., 3].max() > 0
    previous = obs
    for _ in range(5):
        obs, *_ = _step(env, FIRE)
        np.testing.assert_array_equal(obs[..., :3], previous[..., 1:])  # the stack shifts by one frame
        previous = obs
    assert all(obs[..., i].max() > 0 for i in range(4))
    env.close()


def test_both_paths_see_the_same_frames():
    envs = _paths(repeat_action_probability=0.0, noop_max=0)
    first = {name: _reset(env, seed=0)[0] for name, env in envs.items()}
    # Same emulator, same resize: the first frame of a game agrees pixel for pixel (no no-ops, no stickiness).
    np.testing.assert_array_equal(first["single"], first["vector"])
    assert 0 < first["single"].mean() < 255


def _trajectories_differ(path, repeat_action_probability, steps=60):
    """Two copies of Breakout with different seeds, no no-op starts, the same actions: do they part?"""
    actions = np.random.default_rng(0).integers(0, 4, steps)  # NOOP, FIRE, RIGHT, LEFT
    if path == "vector":
        env = make_atari_vector("ALE/Breakout-v5", 2, noop_max=0, repeat_action_probability=repeat_action_probability)
        obs, _ = env.reset(seed=0)  # seeds 0 and 1
        frames = [obs]
        for action in actions:
            frames.append(env.step(np.array([action, action]))[0])
        return any(not np.array_equal(f[0], f[1]) for f in frames)
    envs = [make_atari("ALE/Breakout-v5", noop_max=0, repeat_action_probability=repeat_action_probability)
            for _ in range(2)]
    frames = [[env.reset(seed=seed)[0]] for seed, env in enumerate(envs)]
    for action in actions:
        for env, seen in zip(envs, frames):
            seen.append(env.step(int(action))[0])
    return any(not np.array_equal(a, b) for a, b in zip(*frames))


@pytest.mark.parametrize("path", ["single", "vector"])
def test_sticky_actions_are_on_by_default_and_can_be_turned_off(path):
    # The emulator is deterministic: without sticky actions (and no-op starts) the seed changes nothing.
    # With them, the seed decides when an action is repeated, so the two games part ways.
    assert not _trajectories_differ(path, 0.0)
    assert _trajectories_differ(path, AtariOptions().repeat_action_probability)
    assert AtariOptions().repeat_action_probability == 0.25  # Machado et al. (2018)
    if path == "single":
        assert make_atari("ALE/Breakout-v5").unwrapped.ale.getFloat("repeat_action_probability") == 0.25


@pytest.mark.parametrize("path", ["single", "vector"])
def test_life_loss_ends_the_training_episode_but_not_the_game(path):
    env = _paths(repeat_action_probability=0.0)[path]
    _, info = _reset(env, seed=1)
    assert info["lives"] == 5
    for _ in range(500):
        obs, reward, terminated, _, info = _step(env, FIRE)
        if terminated:
            break
    assert terminated and info["lives"] == 4 and "game_return" not in info
    # The next training episode goes on with the same game: 4 lives, a full (not zero-padded) stack.
    if path == "vector":
        obs, _, terminated, _, info = _step(env, FIRE)
    else:
        (obs, info), terminated = _reset(env), False
    assert info["lives"] == 4 and not terminated and obs[..., 0].max() > 0


@pytest.mark.parametrize("path", ["single", "vector"])
def test_game_return_is_unclipped_over_all_lives_while_training_rewards_are_clipped(path):
    # Space Invaders pays 5-30 points per invader: clipping is visible. Random play ends a game quickly.
    env = _paths("ALE/SpaceInvaders-v5", repeat_action_probability=0.0)[path]
    rng = np.random.default_rng(0)
    _reset(env, seed=0)
    rewards, training_episodes = [], 0
    for _ in range(5000):
        _, reward, terminated, truncated, info = _step(env, int(rng.integers(env.single_action_space.n
                                                                            if path == "vector" else
                                                                            env.action_space.n)))
        rewards.append(reward)
        if "game_return" in info:
            break
        if terminated:
            training_episodes += 1
            if path == "single":
                _reset(env)
    assert "game_return" in info, "no game ended"
    assert set(rewards) <= {0.0, 1.0}  # clipped to the sign for training
    assert training_episodes >= 1  # lives ended training episodes before the game ended
    assert info["game_return"] > sum(rewards)  # the real score: all lives, points not clipped
    assert info["game_length"] >= len(rewards)


def test_without_training_signals_a_training_episode_is_the_whole_game():
    env = make_atari_vector("ALE/SpaceInvaders-v5", 2, repeat_action_probability=0.0, clip_rewards=False,
                            terminal_on_life_loss=False)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    totals, done_games = np.zeros(2), []
    for _ in range(5000):
        _, reward, terminated, truncated, info = env.step(rng.integers(0, 6, 2))
        totals += reward
        for slot in np.flatnonzero(terminated | truncated):
            assert info["_game_return"][slot]
            done_games.append((info["game_return"][slot], totals[slot]))
            totals[slot] = 0.0
        if len(done_games) >= 2:
            break
    assert len(done_games) >= 2
    for game_return, summed in done_games:
        assert game_return == summed and game_return > 0


def test_unknown_game_and_bad_option_are_one_line_errors():
    assert len(atari_env_ids()) >= 100 and atari_env_ids()["ALE/Pong-v5"] == "pong"
    with pytest.raises(ValueError, match=r"^env='ALE/Breakou-v5' is not an Atari game bundled with ale-py; "
                                         r"did you mean 'ALE/Breakout-v5'\? .*rllib-sparse envs"):
        make_atari("ALE/Breakou-v5")
    with pytest.raises(ValueError, match=r"^env_config: repeat_action_probability=1.5 is invalid"):
        make_atari("ALE/Pong-v5", repeat_action_probability=1.5)
    with pytest.raises(ValueError, match=r"unknown key 'sticky'.*allowed: .*repeat_action_probability"):
        make_atari("ALE/Pong-v5", sticky=True)


def test_envs_command_lists_the_games():
    exe = Path(sys.executable).with_name("rllib-sparse")
    run = subprocess.run([str(exe), "envs"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "ALE/Breakout-v5" in run.stdout and "repeat_action_probability=0.25" in run.stdout


# ----------------------------------------------------------------------------------------- with RLlib

@pytest.mark.ray
@pytest.mark.parametrize("vectorized", [True, False], ids=["native-vector", "per-env"])
def test_plain_rllib_config_trains_a_sparse_cnn_on_a_real_rom(ray_local, vectorized):
    from ray.rllib.algorithms.ppo import PPOConfig

    from rllib_sparse import with_atari, with_sparse_model
    from rllib_sparse.rllib.core.inspection import max_masked_weight, on_env_runners

    config = (PPOConfig().environment("ALE/Pong-v5", env_config={"vectorized": vectorized})
              .env_runners(num_env_runners=1, num_envs_per_env_runner=2)
              .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1)
              .reporting(min_time_s_per_iteration=0))
    config = with_sparse_model(with_atari(config), "nature_cnn", width=1, sparsity=0.9)
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        env_class = on_env_runners(algo, lambda runner: type(runner.env.unwrapped).__name__)
        obs = on_env_runners(algo, lambda runner: runner.env.single_observation_space)
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 128
        assert max_masked_weight(algo) == 0.0
    finally:
        algo.stop()
    assert env_class == (["AtariVectorEnv"] if vectorized else ["SyncVectorEnv"])
    assert obs[0].shape == (84, 84, 4) and obs[0].dtype == np.uint8


SMOKE_FILE = """
name: atari-{algo}
algorithm: {algo}
env: ALE/Breakout-v5
env_config: {{vectorized: {vectorized}}}
model: {{model: {model}, width: 1}}
grid: {{sparsity: [0.9]}}
stop: {{iterations: 2}}
resources: {{num_envs_per_env_runner: 2}}
"""


@pytest.mark.ray
@pytest.mark.parametrize("algo,model,vectorized", [("PPO", "impala_cnn", True)])
def test_smoke_sweep_on_a_real_rom_keeps_every_masked_weight_at_zero(tmp_path, algo, model, vectorized):
    """The IMPALA CNN on ale-py's vector env; DQN's Nature CNN on a single env runs the same checks in the
    shipped atari100k_dqn.yaml smoke run (tests/test_sweep_run.py)."""
    import mlflow

    file = tmp_path / "atari.yaml"
    file.write_text(SMOKE_FILE.format(algo=algo, model=model, vectorized=str(vectorized).lower()))
    exe = Path(sys.executable).with_name("rllib-sparse")
    run = subprocess.run([str(exe), "sweep", str(file), "--smoke", "--num-cpus", "2"], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert re.search(rf"{model}-w1-d\d-s0.9-seed0 +finished", run.stdout)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name(f"atari-{algo}-smoke")
    runs = client.search_runs([experiment.experiment_id], "tags.`rllib_sparse.trial` != ''")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    history = client.get_metric_history(runs[0].info.run_id, "mask/max_masked_weight")
    assert [m.value for m in history] == [0.0, 0.0]  # every conv and linear mask, after each iteration
    assert runs[0].data.params["env"] == "ALE/Breakout-v5"
