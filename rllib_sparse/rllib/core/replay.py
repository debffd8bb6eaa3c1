"""RLlib's uniform ``EpisodeReplayBuffer``, with its n-step transition sampling made cheap.

Why: for SAC with plain MLPs of the SimBa default sizes (actor 128x1, critic 512x2; batch 256,
``benchmarks/rllib_sac_profile.py``), sampling 256 transitions from RLlib's buffer took ~60 ms on
CPU — more than the whole gradient update. For every sampled transition RLlib slices the stored
episode (a full ``SingleAgentEpisode`` with lookback buffers for every column), reads two
observations back out of the slice, runs ``scipy.signal.lfilter`` over the rewards (one of them
when ``n_step`` is 1) and builds a second ``SingleAgentEpisode`` from those. This buffer reads the
same few values straight from the stored episode and builds only the second one.

Nothing else changes: it is RLlib's class (adding, eviction, checkpoint state, metrics), the same
random draws in the same order, and the returned 1-step episodes equal RLlib's field by field
(``tests/test_replay.py`` samples both from one state and compares them). Sequence sampling
(``batch_length_T``), which SAC/DDPG/DQN use only for stateful modules, is left to RLlib.

SAC and DDPG (RLlib's SAC loop, ``rllib_sparse.rllib.core.sac_loop.SACLoop``) sample with it wherever
a config names RLlib's uniform ``EpisodeReplayBuffer``: RLlib's SAC config accepts only its own buffer
names, and since the transitions are the same there is nothing to choose.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.signal
from ray.rllib.core import DEFAULT_AGENT_ID, DEFAULT_MODULE_ID
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer
from ray.rllib.utils.annotations import override
from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

#: Its ``replay_buffer_config`` ``type`` for RLlib's ``from_config`` (which needs the name to contain
#: ``EpisodeReplayBuffer``).
FAST_EPISODE_REPLAY_BUFFER = f"{__name__}.FastEpisodeReplayBuffer"


class FastEpisodeReplayBuffer(EpisodeReplayBuffer):
    """``EpisodeReplayBuffer`` whose n-step sampling reads the stored episodes without slicing them."""

    @override(EpisodeReplayBuffer)
    def _sample_episodes(self, num_items=None, *, batch_size_B=None, batch_length_T=None, n_step=None,
                         gamma=0.99, include_infos=False, include_extra_model_outputs=False, to_numpy=False,
                         lookback=1, min_batch_length_T=0, **kwargs):
        if batch_length_T:  # sequences: RLlib's own path
            return super()._sample_episodes(
                num_items, batch_size_B=batch_size_B, batch_length_T=batch_length_T, n_step=n_step,
                gamma=gamma, include_infos=include_infos, include_extra_model_outputs=include_extra_model_outputs,
                to_numpy=to_numpy, lookback=lookback, min_batch_length_T=min_batch_length_T, **kwargs)
        if num_items is not None:
            assert batch_size_B is None, "Cannot call `sample()` with both `num_items` and `batch_size_B`."
            batch_size_B = num_items
        batch_size_B = batch_size_B or self.batch_size_B
        assert n_step is not None, "When sampling episodes, `n_step` must be provided."
        random_n_step = isinstance(n_step, tuple)

        self._last_sampled_indices = []
        sampled_episodes, sampled_n_steps = [], []
        sampled_env_step_idxs, sampled_episode_idxs = set(), set()
        B = 0
        while B < batch_size_B:
            # The same draws as RLlib's loop, in the same order: an index, then (if a range) the n-step.
            eps_idx, episode_ts = self._indices[self.rng.integers(len(self._indices))]
            episode_idx = eps_idx - self._num_episodes_evicted
            episode = self.episodes[episode_idx]
            actual_n_step = int(self.rng.integers(n_step[0], n_step[1])) if random_n_step else n_step
            if min_batch_length_T > 0 and episode_ts + min_batch_length_T >= len(episode):
                continue
            sampled_episodes.append(self._transition(episode, episode_ts, actual_n_step, gamma,
                                                     include_extra_model_outputs, lookback))
            sampled_env_step_idxs.add(hashlib.sha256(f"{episode.id_}-{episode_ts}".encode()).hexdigest())
            sampled_episode_idxs.add(episode_idx)
            sampled_n_steps.append(actual_n_step)
            # RLlib's count, kept as is: 1 per transition, except where t + n runs past the episode's
            # end by 2 or more steps, where it adds 1 - overshoot (so the batch comes out larger).
            B += min(0, len(episode) - (episode_ts + actual_n_step - 1)) + 1 or 1

        self.sampled_timesteps += batch_size_B
        self._record_sample_metrics(batch_size_B, len(sampled_episode_idxs), len(sampled_env_step_idxs),
                                    sum(sampled_n_steps) / batch_size_B)
        return sampled_episodes

    @staticmethod
    def _transition(episode: SingleAgentEpisode, ts: int, n_step: int, gamma: float,
                    include_extra_model_outputs: bool, lookback: int) -> SingleAgentEpisode:
        """(o_t, a_t, discounted sum of r_t..r_(t+n-1), o_(t+n)) as RLlib's 1-step episode.

        RLlib's slice ``[ts, ts + n)`` ends early at the episode's end and only keeps the episode's
        terminated/truncated flags when it ends exactly there; this reads the same positions.
        """
        stop = min(ts + n_step, len(episode))
        keep_done = ts + n_step == len(episode)
        if stop - ts == 1:  # lfilter of one reward is that reward, as float64
            reward = np.float64(episode.get_rewards(ts))
        else:
            raw = episode.get_rewards(slice(ts, stop))
            reward = scipy.signal.lfilter([1], [1, -gamma], raw[::-1], axis=0)[-1]
        extra = {k: [episode.get_extra_model_outputs(k, 0)] for k in episode.extra_model_outputs
                 } if include_extra_model_outputs else {}
        transition = SingleAgentEpisode(
            id_=episode.id_, agent_id=episode.agent_id, module_id=episode.module_id,
            observation_space=episode.observation_space, action_space=episode.action_space,
            observations=[episode.get_observations(ts), episode.get_observations(stop)],
            actions=[episode.get_actions(ts)], rewards=[reward],
            infos=[episode.get_infos(ts), episode.get_infos(stop)],
            terminated=episode.is_terminated if keep_done else False,
            truncated=episode.is_truncated if keep_done else False,
            extra_model_outputs=extra, t_started=episode.t_started + ts, len_lookback_buffer=0)
        transition.extra_model_outputs["n_step"] = InfiniteLookbackBuffer(
            np.full((1 + lookback,), n_step), lookback=lookback)
        transition.extra_model_outputs["weights"] = InfiniteLookbackBuffer(np.ones((1 + lookback,)), lookback=lookback)
        return transition

    def _record_sample_metrics(self, steps: int, episodes: int, distinct_steps: int, mean_n_step: float) -> None:
        """The sample metrics RLlib's loop records (one agent, one module, no resampling)."""
        self._update_sample_metrics(
            num_env_steps_sampled=steps, num_episodes_per_sample=episodes, num_env_steps_per_sample=distinct_steps,
            sampled_n_step=mean_n_step, num_resamples=0,
            agent_to_num_steps_sampled={DEFAULT_AGENT_ID: steps},
            agent_to_num_episodes_per_sample={DEFAULT_AGENT_ID: episodes},
            agent_to_num_steps_per_sample={DEFAULT_AGENT_ID: distinct_steps},
            agent_to_sampled_n_step={DEFAULT_AGENT_ID: mean_n_step},
            agent_to_num_resamples={DEFAULT_AGENT_ID: 0},
            module_to_num_steps_sampled={DEFAULT_MODULE_ID: steps},
            module_to_num_episodes_per_sample={DEFAULT_MODULE_ID: episodes},
            module_to_num_steps_per_sample={DEFAULT_MODULE_ID: distinct_steps},
            module_to_sampled_n_step={DEFAULT_MODULE_ID: mean_n_step},
            module_to_num_resamples={DEFAULT_MODULE_ID: 0})
