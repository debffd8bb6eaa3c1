"""DDPG's RL module: RLlib's SAC module layout (``pi_encoder``/``pi``, ``qf_encoder``/``qf`` and target
copies) with a deterministic tanh actor; the action and target math is ``losses``'s."""

from __future__ import annotations

import gymnasium as gym
import torch
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.algorithms.sac.sac_learner import QF_PREDS
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchDeterministic
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_sparse.networks import linear_head
from rllib_sparse.rllib.core.catalog import ActorAndQCatalogMixin
from rllib_sparse.rllib.core.module import ACTOR_AND_Q_LAYOUT, NetworkLayout, SparseModuleMixin, random_warmup_actions
from rllib_sparse.rllib.ddpg import losses

#: Forward-train outputs the learner reads.
Q_TARGET_NEXT = "q_target_next"
Q_OF_ACTOR = "q_curr"


class SparseDDPGCatalog(ActorAndQCatalogMixin, SACCatalog):
    """Actor and Q networks; one ``width × |A|`` kernel for the actor's mean action (tanh applied by the
    module)."""

    @override(SACCatalog)
    def build_pi_head(self, framework: str = "torch") -> nn.Module:
        if not isinstance(self.action_space, gym.spaces.Box):
            raise ValueError(f"DDPG needs Box (continuous) actions; got {self.action_space}")
        return linear_head(self.feature_dim("actor"), int(self.action_space.shape[0]))

    @override(SACCatalog)
    def get_action_dist_cls(self, framework: str):
        return TorchDeterministic


class SparseDDPGTorchRLModule(SparseModuleMixin, DefaultSACTorchRLModule):
    default_catalog_class = SparseDDPGCatalog

    def network_layout(self) -> NetworkLayout:
        return ACTOR_AND_Q_LAYOUT

    def _std(self, name: str) -> float:
        return float(self.model_config.get(name, 0.1))

    def actor_action(self, obs: torch.Tensor) -> torch.Tensor:
        """μ(s) = tanh(head(encoder(s))) in RLlib's normalised action space [−1, 1]."""
        return torch.tanh(self.pi(self.pi_encoder({Columns.OBS: obs})[ENCODER_OUT]))

    @override(RLModule)
    def _forward_inference(self, batch: dict, **kwargs) -> dict:
        return {Columns.ACTIONS: self.actor_action(batch[Columns.OBS])}

    @override(RLModule)
    def _forward_exploration(self, batch: dict, t: int | None = None, **kwargs) -> dict:
        random = random_warmup_actions(self, batch, t)
        if random is not None:
            return random
        action = losses.noisy_action(self.actor_action(batch[Columns.OBS]), self._std("exploration_noise_std"))
        return {Columns.ACTIONS: action}

    @override(RLModule)
    def _forward_train(self, batch: dict) -> dict:
        obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        q = self._qf_forward_train_helper({Columns.OBS: obs, Columns.ACTIONS: batch[Columns.ACTIONS]},
                                          self.qf_encoder, self.qf)
        with torch.no_grad():
            next_action = losses.noisy_action(self.actor_action(next_obs), self._std("target_noise_std"))
            q_next = self.forward_target({Columns.OBS: next_obs, Columns.ACTIONS: next_action})
        actor_action = losses.noisy_action(self.actor_action(obs), self._std("actor_noise_std"))
        critic = list(self.qf_encoder.parameters()) + list(self.qf.parameters())
        for param in critic:  # the actor loss moves the actor only
            param.requires_grad_(False)
        q_of_actor = self.compute_q_values({Columns.OBS: obs, Columns.ACTIONS: actor_action})
        for param in critic:
            param.requires_grad_(True)
        return {QF_PREDS: q, Q_TARGET_NEXT: q_next, Q_OF_ACTOR: q_of_actor}
