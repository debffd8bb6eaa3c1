"""Static network sparsity in pure PyTorch (no Ray import): allocation, masked layers, pruning, report."""

from rllib_sparse.sparsity.allocation import (
    ALLOCATIONS,
    allocate,
    erdos_renyi_densities,
    uniform_densities,
)
from rllib_sparse.sparsity.layers import (
    SparseConv1d,
    SparseConv2d,
    SparseConv3d,
    SparseLinear,
    SparseWeightMixin,
)
from rllib_sparse.sparsity.prune import layer_seed, prunable_layers, random_mask, sparsify
from rllib_sparse.sparsity.report import (
    LayerSparsity,
    SparsityReport,
    max_masked_magnitude,
    sparsity_report,
)

__all__ = [
    "ALLOCATIONS",
    "LayerSparsity",
    "SparseConv1d",
    "SparseConv2d",
    "SparseConv3d",
    "SparseLinear",
    "SparseWeightMixin",
    "SparsityReport",
    "allocate",
    "erdos_renyi_densities",
    "layer_seed",
    "max_masked_magnitude",
    "prunable_layers",
    "random_mask",
    "sparsify",
    "sparsity_report",
    "uniform_densities",
]
