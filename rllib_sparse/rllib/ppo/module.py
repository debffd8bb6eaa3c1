"""PPO's (and IMPALA's) and APPO's sparse RL modules and their Catalog."""

from __future__ import annotations

from ray.rllib.algorithms.appo.torch.default_appo_torch_rl_module import DefaultAPPOTorchRLModule
from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_sparse.networks import linear_head
from rllib_sparse.rllib.core.catalog import SparseCatalogMixin
from rllib_sparse.rllib.core.encoders import ActorCriticEncoder
from rllib_sparse.rllib.core.module import Network, NetworkLayout, SparseModuleMixin


class SparsePPOCatalog(SparseCatalogMixin, PPOCatalog):
    """Actor and critic networks (or one shared trunk), policy and value heads."""

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


def _actor_critic_layout(module) -> NetworkLayout:
    """The policy on its encoder; the value head on its own encoder or on the shared trunk."""
    critic = ("vf",) if module.catalog.vf_share_layers else ("encoder.critic_encoder", "vf")
    return {"actor": Network("actor", ("encoder.actor_encoder", "pi")), "critic": Network("critic", critic)}


class SparsePPOTorchRLModule(SparseModuleMixin, DefaultPPOTorchRLModule):
    """PPO (and IMPALA, which uses PPO's module)."""

    default_catalog_class = SparsePPOCatalog
    network_layout = _actor_critic_layout


class SparseAPPOTorchRLModule(SparseModuleMixin, DefaultAPPOTorchRLModule):
    default_catalog_class = SparsePPOCatalog
    network_layout = _actor_critic_layout
