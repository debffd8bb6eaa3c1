"""What every sparse Catalog shares: our networks instead of RLlib's default encoders.

RLlib's default RL modules ask their Catalog for every sub-network; each algorithm's Catalog answers
with our networks and single dense heads (as in the paper), so the default modules' forward passes,
losses, target networks and inference-only handling are reused unchanged.
"""

from __future__ import annotations

import functools

import gymnasium as gym
from ray.rllib.core.models.catalog import Catalog
from ray.rllib.core.models.configs import MLPEncoderConfig
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_sparse.networks import SparseModelConfig, build_network, get_model, linear_head
from rllib_sparse.rllib.core.encoders import BatchEncoder
from rllib_sparse.rllib.core.model_config import parse_model_config


class SparseCatalogMixin:
    """Builds the ``actor``/``critic`` networks of the sparse config; put before RLlib's Catalog."""

    @classmethod
    @override(Catalog)  # RLlib-private hook, called from Catalog.__init__
    def _get_encoder_config(cls, observation_space, model_config_dict, action_space=None, **kwargs):
        # RLlib's Catalog.__init__ derives an encoder config (and fails for unusual image shapes). It is
        # never built here, so hand it a trivial one; the build_* methods make the real networks.
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


class ActorAndQCatalogMixin(SparseCatalogMixin):
    """RLlib's SAC Catalog interface (``build_encoder``, ``build_qf_encoder``, ``build_qf_head``) answered
    with an actor network and Q networks on (s, a) for Box actions, on s for Discrete ones; each
    algorithm adds its policy head (``build_pi_head``) and action distribution."""

    def build_encoder(self, framework: str = "torch") -> BatchEncoder:
        return self.build_network("actor")

    def build_qf_encoder(self, framework: str = "torch") -> BatchEncoder:
        return self.build_network("critic", with_actions=isinstance(self.action_space, gym.spaces.Box))

    def build_qf_head(self, framework: str = "torch") -> nn.Module:
        width = self.feature_dim("critic")
        outputs = self.action_space.n if isinstance(self.action_space, gym.spaces.Discrete) else 1
        return linear_head(width, int(outputs))
