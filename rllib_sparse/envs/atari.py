"""Atari 2600 games from ale-py, preprocessed as in Machado et al. (2018) and the Nature DQN.

Two ways to step the same game, with the same observations and rewards:

- ``make_atari_vector`` runs ale-py's native ``AtariVectorEnv`` (C++ threads; frame skip, max-pool,
  resize, grayscale and frame stack done in C++): the fast path.
- ``make_atari`` builds one gymnasium env with ``AtariPreprocessing`` and ``FrameStackObservation``:
  the per-env path, for ``gym_env_vectorize_mode="sync"`` and for debugging.

Both pass raw (unclipped, all-lives) rewards out of the emulator; the training signals (reward
clipping, terminal on life loss) are added on top by the same rules in both paths, so that the game's
real return stays measurable. When a game ends, ``info["game_return"]`` and ``info["game_length"]``
carry the full-game return and agent steps. Observations are ``uint8`` ``(H, W, stack)``: channels
last, as the image encoders (and RLlib) expect. ale-py (and OpenCV, for the per-env path) are the
package's ``atari`` extra, imported on first use: without them an ``ALE/...`` env is refused in one
line naming the extra. No Ray import here.
"""

from __future__ import annotations

import difflib
import os
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rllib_sparse.envs.registry import RLLIB_CONTEXT_KEYS, EnvFamily, register_env_family
from rllib_sparse.errors import validate

NOOP = 0  # action 0 is NOOP in every ALE action set
ID_PREFIX, ID_SUFFIX = "ALE/", "-v5"


class AtariOptions(BaseModel):
    """Preprocessing settings (the ``env_config`` of an ``ALE/<Game>-v5`` env).

    Defaults follow Machado et al. (2018): sticky actions (p = 0.25), no-op starts, frame skip 4 with
    max-pooling of the last two frames, 84x84 grayscale, 4 stacked frames, 108k-frame episode cap.
    Terminal on life loss and reward clipping shape the *training* signal only; the full-game return
    is reported either way.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    repeat_action_probability: float = Field(0.25, ge=0.0, lt=1.0, description="sticky actions; 0 turns them off")
    frame_skip: int = Field(4, ge=1, le=16)
    frame_stack: int = Field(4, ge=1, le=16)
    screen_size: int = Field(84, ge=8, le=210)
    noop_max: int = Field(30, ge=0)
    terminal_on_life_loss: bool = True
    clip_rewards: bool = True
    full_action_space: bool = False
    max_episode_frames: int = Field(108_000, ge=1)
    vectorized: bool = Field(True, description="ale-py's native vector env (True) or one gymnasium env per slot")
    num_threads: int = Field(0, ge=0, description="native vector env threads; 0: one per env, at most one per core")

    @classmethod
    def parse(cls, env_config: dict | None, source: str = "env_config") -> AtariOptions:
        known = {k: v for k, v in (env_config or {}).items() if k not in RLLIB_CONTEXT_KEYS}
        return validate(cls, known, source)


#: How to install what this family needs (ale-py, OpenCV): the package's ``atari`` extra.
EXTRA = "pip install 'rllib-sparse[atari]'"


def _missing_extra(what: str, error: ImportError) -> ValueError:
    reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return ValueError(f"{what}, which cannot be imported here ({reason}); install it with: {EXTRA}")


def _ale(env_id: str | None = None):
    """ale-py, or a one-line ValueError naming the extra to install (naming ``env`` if given)."""
    try:
        import ale_py
        from ale_py import roms  # noqa: F401 - the bundled ROMs, listed by atari_env_ids
    except ImportError as error:
        what = f"env={env_id!r} needs" if env_id is not None else "Atari games (ALE/<Game>-v5) need"
        raise _missing_extra(f"{what} the Atari emulator ale-py", error) from None
    return ale_py


@lru_cache(maxsize=1)
def atari_env_ids() -> dict[str, str]:
    """``ALE/<Game>-v5`` id -> ROM name, for every game whose ROM ships inside ale-py."""
    ale_py = _ale()
    from ale_py import roms

    gym.register_envs(ale_py)
    bundled = set(roms.get_all_rom_ids())
    ids = {}
    for env_id, spec in gym.registry.items():
        game = (spec.kwargs or {}).get("game")
        if env_id.startswith(ID_PREFIX) and env_id.endswith(ID_SUFFIX) and game in bundled:
            ids[env_id] = game
    return dict(sorted(ids.items()))


def is_atari_id(env: Any) -> bool:
    return isinstance(env, str) and env.startswith(ID_PREFIX)


def atari_game(env_id: str) -> str:
    """The ROM name of ``ALE/<Game>-v5``, or a one-line error that says how to list the games (or which
    extra to install)."""
    _ale(env_id)
    ids = atari_env_ids()
    if env_id in ids:
        return ids[env_id]
    close = difflib.get_close_matches(env_id, list(ids), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"env={env_id!r} is not an Atari game bundled with ale-py{hint} "
                     f"(allowed: ALE/<Game>-v5 for the {len(ids)} games `rllib-sparse envs` lists)")


def _single_env(env_id: str, options: AtariOptions) -> gym.Env:
    try:
        import cv2  # noqa: F401 - gymnasium's AtariPreprocessing resizes with OpenCV
    except ImportError as error:
        raise _missing_extra("the per-env Atari path (env_config vectorized: false) needs OpenCV", error) from None
    env = gym.make(env_id, frameskip=1, repeat_action_probability=options.repeat_action_probability,
                   full_action_space=options.full_action_space,
                   max_num_frames_per_episode=options.max_episode_frames)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=options.noop_max, frame_skip=options.frame_skip,
                                          screen_size=options.screen_size, terminal_on_life_loss=False)
    # Zero padding after a reset, as the native vector env does.
    return gym.wrappers.FrameStackObservation(env, options.frame_stack, padding_type="zero")


def make_atari(env_id: str, **options: Any) -> gym.Env:
    """One preprocessed Atari env (the per-env path)."""
    atari_game(env_id)
    opts = AtariOptions.parse(options)
    return TrainingSignals(_single_env(env_id, opts), opts)


def make_atari_vector(env_id: str, num_envs: int, **options: Any) -> gym.vector.VectorEnv:
    """``num_envs`` preprocessed copies of a game: ale-py's native vector env if ``vectorized`` (the
    default), else gymnasium's ``SyncVectorEnv`` over the per-env path."""
    game = atari_game(env_id)
    opts = AtariOptions.parse(options)
    if not opts.vectorized:
        return gym.vector.SyncVectorEnv([lambda: make_atari(env_id, **options)] * num_envs,
                                        autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    from ale_py.vector_env import AtariVectorEnv

    threads = opts.num_threads or min(num_envs, len(os.sched_getaffinity(0)))
    native = AtariVectorEnv(
        game, num_envs, num_threads=threads, repeat_action_probability=opts.repeat_action_probability,
        full_action_space=opts.full_action_space, max_num_frames_per_episode=opts.max_episode_frames,
        img_height=opts.screen_size, img_width=opts.screen_size, grayscale=True, stack_num=opts.frame_stack,
        frameskip=opts.frame_skip, maxpool=True, noop_max=opts.noop_max, episodic_life=False,
        reward_clipping=False, use_fire_reset=False)
    return VectorTrainingSignals(native, opts)


class _GameTracker:
    """Training signals over raw emulator results, for ``n`` slots; shared by both paths.

    A life loss ends the *training* episode (``terminated``) while the game goes on; the slot's next
    step is a NOOP whose observation starts the next training episode (as the classic EpisodicLife
    wrapper does on reset). Rewards are clipped to their sign for training; the raw ones add up to the
    game's return, handed out in ``info`` when the game really ends.
    """

    def __init__(self, n: int, options: AtariOptions):
        self.options = options
        self.game_return = np.zeros(n, dtype=np.float64)
        self.game_length = np.zeros(n, dtype=np.int64)
        self.lives = np.zeros(n, dtype=np.int64)
        self.continue_after_life_loss = np.zeros(n, dtype=bool)

    def start(self, idx, lives) -> None:
        self.game_return[idx] = 0.0
        self.game_length[idx] = 0
        self.lives[idx] = lives
        self.continue_after_life_loss[idx] = False

    def step(self, raw_reward, terminated, truncated, lives):
        """Returns (training reward, training terminated, finished-game mask, their returns, lengths)."""
        raw_reward = np.asarray(raw_reward, dtype=np.float64)
        self.game_return += raw_reward
        self.game_length += 1
        game_over = np.logical_or(terminated, truncated)
        life_lost = (np.asarray(lives) < self.lives) & ~game_over
        self.lives = np.asarray(lives, dtype=np.int64).copy()
        train_terminated = np.asarray(terminated, dtype=bool).copy()
        if self.options.terminal_on_life_loss:
            train_terminated |= life_lost
            self.continue_after_life_loss = life_lost
        reward = np.sign(raw_reward) if self.options.clip_rewards else raw_reward
        returns, lengths = self.game_return.copy(), self.game_length.copy()
        return reward.astype(np.float32), train_terminated, game_over, returns, lengths


def _to_channels_last(obs: np.ndarray) -> np.ndarray:
    # A view, not a copy: ale-py hands out a fresh array each step, and RLlib's batching copies anyway.
    return np.moveaxis(obs, -3, -1)


def _channels_last_space(space: gym.spaces.Box) -> gym.spaces.Box:
    *lead, c, h, w = space.shape
    return gym.spaces.Box(0, 255, (*lead, h, w, c), np.uint8)


class TrainingSignals(gym.Wrapper):
    """The per-env path's training signals (see ``_GameTracker``), channels-last observations."""

    def __init__(self, env: gym.Env, options: AtariOptions):
        super().__init__(env)
        self.observation_space = _channels_last_space(env.observation_space)
        self._tracker = _GameTracker(1, options)

    def reset(self, *, seed=None, options=None):
        if self._tracker.continue_after_life_loss[0]:
            # The game goes on: the training episode starts from a NOOP step, not a new game.
            obs, raw, terminated, truncated, info = self.env.step(NOOP)
            reward, _, game_over, returns, lengths = self._tracker.step([raw], [terminated], [truncated],
                                                                         [info["lives"]])
            self._tracker.continue_after_life_loss[0] = False
            if not game_over[0]:
                return _to_channels_last(obs), info
        obs, info = self.env.reset(seed=seed, options=options)
        self._tracker.start(0, info["lives"])
        return _to_channels_last(obs), info

    def step(self, action):
        obs, raw, terminated, truncated, info = self.env.step(action)
        reward, train_terminated, game_over, returns, lengths = self._tracker.step(
            [raw], [terminated], [truncated], [info["lives"]])
        if game_over[0]:
            info = {**info, "game_return": float(returns[0]), "game_length": int(lengths[0])}
        return _to_channels_last(obs), float(reward[0]), bool(train_terminated[0]), bool(truncated), info


class VectorTrainingSignals(gym.vector.VectorWrapper):
    """The native path's training signals (see ``_GameTracker``), channels-last observations.

    Autoreset is NEXT_STEP, as RLlib's env runner expects: after a game ends, the slot's next step
    returns the reset observation and its reward is not part of any game.
    """

    def __init__(self, env: gym.vector.VectorEnv, options: AtariOptions):
        super().__init__(env)
        self.single_observation_space = _channels_last_space(env.single_observation_space)
        self.observation_space = _channels_last_space(env.observation_space)
        self._tracker = _GameTracker(env.num_envs, options)
        self._reset_next = np.zeros(env.num_envs, dtype=bool)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._tracker.start(slice(None), info["lives"])
        self._reset_next[:] = False
        return _to_channels_last(obs), info

    def step(self, actions):
        actions = np.asarray(actions).astype(np.int64, copy=True)
        actions[self._tracker.continue_after_life_loss] = NOOP
        obs, raw, terminated, truncated, info = self.env.step(actions)
        was_reset = self._reset_next
        if was_reset.any():
            self._tracker.start(was_reset, info["lives"][was_reset])
        reward, train_terminated, game_over, returns, lengths = self._tracker.step(
            np.where(was_reset, 0.0, raw), terminated & ~was_reset, truncated & ~was_reset, info["lives"])
        if was_reset.any():  # a reset step is not a game step
            self._tracker.game_length[was_reset] = 0
            reward[was_reset] = 0.0
            train_terminated[was_reset] = False
            game_over[was_reset] = False
        self._reset_next = np.logical_or(terminated, truncated) & ~was_reset
        if game_over.any():
            info = {**info, "game_return": np.where(game_over, returns, 0.0), "_game_return": game_over,
                    "game_length": np.where(game_over, lengths, 0), "_game_length": game_over}
        return _to_channels_last(obs), reward, train_terminated, truncated & ~was_reset, info


ATARI = register_env_family(EnvFamily(
    name="atari",
    matches=is_atari_id,
    make=make_atari,
    make_vector=make_atari_vector,
    options=AtariOptions,
    episode_info_metrics={"game_return": "game_return_mean", "game_length": "game_length_mean"},
    full_episode_return="game_return_mean",
    full_episode_length="game_length_mean",
    check_id=atari_game,
    list_ids=atari_env_ids,
    summary="Atari 2600 games bundled with ale-py, preprocessed as in Machado et al. (2018)",
))
