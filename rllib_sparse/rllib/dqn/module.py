"""DQN's sparse RL module and Catalog: one Q network with advantage (and, if dueling, value) heads."""

from __future__ import annotations

from ray.rllib.algorithms.dqn.dqn_catalog import DQNCatalog
from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_sparse.networks import linear_head
from rllib_sparse.rllib.core.catalog import SparseCatalogMixin
from rllib_sparse.rllib.core.encoders import BatchEncoder
from rllib_sparse.rllib.core.module import Network, NetworkLayout, SparseModuleMixin


class SparseDQNCatalog(SparseCatalogMixin, DQNCatalog):
    """One Q network (the critic) with advantage (and, if dueling, value) heads."""

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


class SparseDQNTorchRLModule(SparseModuleMixin, DefaultDQNTorchRLModule):
    default_catalog_class = SparseDQNCatalog

    def network_layout(self) -> NetworkLayout:
        return {"critic": Network("critic", ("encoder", "af", "vf"))}
