"""SAC's sparse RL module and Catalog: RLlib's default SAC module on our actor and Q networks."""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_sparse.networks import GaussianHead, linear_head
from rllib_sparse.rllib.core.catalog import ActorAndQCatalogMixin
from rllib_sparse.rllib.core.module import ACTOR_AND_Q_LAYOUT, NetworkLayout, SparseModuleMixin, random_warmup_actions
from rllib_sparse.rllib.sac.distribution import PaperSquashedGaussian


class SparseSACCatalog(ActorAndQCatalogMixin, SACCatalog):
    """Policy network and head; Q networks on (s, a) for Box actions, on s for Discrete ones.

    For Box actions the policy head is two kernels (mean, log-std) as in the paper's code, and the
    action distribution uses the authors' log-std map (``distribution``).
    """

    @override(SACCatalog)
    def get_action_dist_cls(self, framework: str):
        if isinstance(self.action_space, gym.spaces.Box):
            return PaperSquashedGaussian
        return super().get_action_dist_cls(framework)

    @override(SACCatalog)
    def build_pi_head(self, framework: str = "torch") -> nn.Module:
        width = self.feature_dim("actor")
        if isinstance(self.action_space, gym.spaces.Box):
            return GaussianHead(width, int(self.action_space.shape[0]))
        return linear_head(width, self.action_dist_input_dim())


class SparseSACTorchRLModule(SparseModuleMixin, DefaultSACTorchRLModule):
    default_catalog_class = SparseSACCatalog

    def network_layout(self) -> NetworkLayout:
        return ACTOR_AND_Q_LAYOUT

    @override(DefaultSACTorchRLModule)
    def _forward_exploration(self, batch: dict, t: int | None = None, **kwargs) -> dict:
        """Uniform random actions for the first ``random_warmup_steps`` global env steps (the paper's
        5,000), then the policy. ``t`` is RLlib's global env-step count, restored with a checkpoint."""
        out = super()._forward_exploration(batch, t=t, **kwargs)
        random = random_warmup_actions(self, batch, t)
        if random is None:
            return out
        # The same columns as a policy step (where RLlib's connector adds the log-probability of the
        # sampled action), so that an episode straddling the end of the warm-up concatenates in the
        # replay buffer: the log-density of the uniform action in the normalised box [-1, 1]^|A|.
        actions = random[Columns.ACTIONS]
        dims = actions[0].numel()
        out[Columns.ACTIONS] = actions
        out[Columns.ACTION_LOGP] = torch.full(actions.shape[:1], -dims * math.log(2.0), device=actions.device)
        return out
