"""RLlib Catalogs that build the registered pure-torch networks instead of RLlib's default encoders.

RLlib's default RL modules (PPO, APPO/IMPALA, SAC, DQN) ask their Catalog for every sub-network; these
Catalogs answer with our networks and single dense heads (as in the paper), so the default modules'
forward passes, losses, target networks and inference-only handling are reused unchanged.
"""

from __future__ import annotations

import functools

import gymnasium as gym
from ray.rllib.algorithms.dqn.dqn_catalog import DQNCatalog
from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.core.models.catalog import Catalog
from ray.rllib.core.models.configs import MLPEncoderConfig
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_sparse.networks import GaussianHead, SparseModelConfig, build_network, get_model, linear_head
from rllib_sparse.rllib.encoders import ActorCriticEncoder, BatchEncoder

#: The key under an RLlib ``model_config`` that holds the :class:`SparseModelConfig`.
MODEL_CONFIG_KEY = "sparse"


def parse_model_config(model_config: dict | None) -> SparseModelConfig:
    """The sparse model config inside an RLlib ``model_config`` dict (one-line ValueError if bad)."""
    return SparseModelConfig.parse((model_config or {}).get(MODEL_CONFIG_KEY) or {},
                                   source=f"model_config[{MODEL_CONFIG_KEY!r}]")


class SparseCatalogMixin:
    """Shared by the per-algorithm Catalogs below."""

    @classmethod
    @override(Catalog)  # RLlib-private hook, called from Catalog.__init__
    def _get_encoder_config(cls, observation_space, model_config_dict, action_space=None, **kwargs):
        # RLlib's Catalog.__init__ derives an encoder config (and fails for unusual image shapes). It is
        # never built here, so hand it a trivial one; the build_* methods below make the real networks.
        return MLPEncoderConfig(input_dims=(1,), hidden_layer_dims=[], output_layer_dim=1)

    @functools.cached_property
    def sparse_config(self) -> SparseModelConfig:
        """Parsed once per Catalog (the dict is RLlib's ``model_config``; it does not change)."""
        return parse_model_config(self._model_config_dict)

    def build_network(self, role: str, with_actions: bool = False) -> BatchEncoder:
        spec = self.sparse_config.network(role)
        extra_dim = int(self.action_space.shape[0]) if with_actions else 0
        net = build_network(spec.model, tuple(self.observation_space.shape), spec.width, spec.depth, extra_dim)
        return BatchEncoder(net, use_actions=with_actions)

    def feature_dim(self, role: str) -> int:
        """Feature size of the ``role`` network (from the registry, so heads need not build it)."""
        spec = self.sparse_config.network(role)
        return int(get_model(spec.model).output_dim(spec.width))

    def action_dist_input_dim(self) -> int:
        dist_cls = self.get_action_dist_cls(framework="torch")
        return int(dist_cls.required_input_dim(space=self.action_space, model_config=self._model_config_dict))


class SparsePPOCatalog(SparseCatalogMixin, PPOCatalog):
    """PPO, APPO and IMPALA: actor and critic networks (or one shared trunk), policy and value heads."""

    @property
    def vf_share_layers(self) -> bool:
        """One trunk for policy and value (RLlib's default for IMPALA/APPO; PPOConfig turns it off)."""
        return bool(self._model_config_dict.get("vf_share_layers"))

    @override(PPOCatalog)
    def build_actor_critic_encoder(self, framework: str = "torch") -> ActorCriticEncoder:
        inference_only = bool(self.actor_critic_encoder_config.inference_only)
        actor = self.build_network("actor").net
        critic = None if (self.vf_share_layers or inference_only) else self.build_network("critic").net
        return ActorCriticEncoder(actor, critic, shared=self.vf_share_layers)

    def _width(self, role: str) -> int:
        return self.feature_dim("actor" if self.vf_share_layers else role)

    @override(PPOCatalog)
    def build_pi_head(self, framework: str = "torch") -> nn.Module:
        return linear_head(self._width("actor"), self.action_dist_input_dim())

    @override(PPOCatalog)
    def build_vf_head(self, framework: str = "torch") -> nn.Module:
        return linear_head(self._width("critic"), 1)


class SparseSACCatalog(SparseCatalogMixin, SACCatalog):
    """SAC: policy network and head; Q networks on (s, a) for Box actions, on s for Discrete ones.

    For Box actions the policy head is two kernels (mean, log-std) as in the paper's code, and the
    action distribution uses the authors' log-std map (``rllib_sparse.rllib.sac``).
    """

    @override(SACCatalog)
    def get_action_dist_cls(self, framework: str):
        if isinstance(self.action_space, gym.spaces.Box):
            from rllib_sparse.rllib.sac import PaperSquashedGaussian

            return PaperSquashedGaussian
        return super().get_action_dist_cls(framework)

    @override(SACCatalog)
    def build_encoder(self, framework: str = "torch") -> BatchEncoder:
        return self.build_network("actor")

    @override(SACCatalog)
    def build_qf_encoder(self, framework: str = "torch") -> BatchEncoder:
        return self.build_network("critic", with_actions=isinstance(self.action_space, gym.spaces.Box))

    @override(SACCatalog)
    def build_pi_head(self, framework: str = "torch") -> nn.Module:
        width = self.feature_dim("actor")
        if isinstance(self.action_space, gym.spaces.Box):
            return GaussianHead(width, int(self.action_space.shape[0]))
        return linear_head(width, self.action_dist_input_dim())

    @override(SACCatalog)
    def build_qf_head(self, framework: str = "torch") -> nn.Module:
        width = self.feature_dim("critic")
        outputs = self.action_space.n if isinstance(self.action_space, gym.spaces.Discrete) else 1
        return linear_head(width, int(outputs))


class SparseDQNCatalog(SparseCatalogMixin, DQNCatalog):
    """DQN: one Q network (the critic) with advantage (and, if dueling, value) heads."""

    @override(DQNCatalog)
    def build_encoder(self, framework: str = "torch") -> BatchEncoder:
        return self.build_network("critic")

    def _width(self) -> int:
        return self.feature_dim("critic")

    @override(DQNCatalog)
    def build_af_head(self, framework: str = "torch") -> nn.Module:
        return linear_head(self._width(), int(self.action_space.n * self.num_atoms))

    @override(DQNCatalog)
    def build_vf_head(self, framework: str = "torch") -> nn.Module:
        return linear_head(self._width(), 1)

