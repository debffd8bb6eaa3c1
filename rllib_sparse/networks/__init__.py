"""Networks in pure PyTorch (no Ray import): SimBa, MLP, LayerNorm MLP, Nature-CNN, Impala-CNN and their
registry."""

from rllib_sparse.networks.cnn import ImpalaCNN, NatureCNN
from rllib_sparse.networks.config import NetworkOverrides, NetworkShape, SparseModelConfig
from rllib_sparse.networks.init import GaussianHead, linear_head
from rllib_sparse.networks.mlp import MLP, LayerNormMLP, SimBa
from rllib_sparse.networks.normalization import RunningObsNorm
from rllib_sparse.networks.registry import (
    ModelEntry,
    build_network,
    get_model,
    register_model,
    registered_models,
)
from rllib_sparse.networks.target import polyak_update_

__all__ = [
    "MLP",
    "GaussianHead",
    "ImpalaCNN",
    "LayerNormMLP",
    "ModelEntry",
    "NatureCNN",
    "NetworkOverrides",
    "NetworkShape",
    "RunningObsNorm",
    "SimBa",
    "SparseModelConfig",
    "build_network",
    "get_model",
    "linear_head",
    "polyak_update_",
    "register_model",
    "registered_models",
]
