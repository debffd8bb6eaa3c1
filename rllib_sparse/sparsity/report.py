"""What a network really holds: per-layer density and the dense vs non-zero parameter counts.

The paper compares networks at equal *non-zero* (trainable) parameter counts, so both counts are
reported. Counts are over trainable parameters (``requires_grad``), which leaves out target networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from rllib_sparse.sparsity.layers import SparseWeightMixin
from rllib_sparse.sparsity.prune import prunable_layers


@dataclass(frozen=True)
class LayerSparsity:
    name: str
    kind: str
    shape: tuple[int, ...]
    total: int
    nonzero: int  # weights the mask keeps

    @property
    def density(self) -> float:
        return self.nonzero / self.total if self.total else 1.0


@dataclass(frozen=True)
class SparsityReport:
    layers: list[LayerSparsity] = field(default_factory=list)
    dense_params: int = 0  # every trainable parameter, as if nothing were pruned
    nonzero_params: int = 0  # dense_params minus the pruned weights

    @property
    def prunable_total(self) -> int:
        return sum(layer.total for layer in self.layers)

    @property
    def prunable_nonzero(self) -> int:
        return sum(layer.nonzero for layer in self.layers)

    @property
    def sparsity(self) -> float:
        """Realised sparsity over the prunable weights (what ``sparsify``'s budget targets)."""
        total = self.prunable_total
        return 1.0 - self.prunable_nonzero / total if total else 0.0

    def to_dict(self) -> dict:
        return {
            "layers": [dict(asdict(layer), density=layer.density) for layer in self.layers],
            "dense_params": self.dense_params,
            "nonzero_params": self.nonzero_params,
            "prunable_total": self.prunable_total,
            "prunable_nonzero": self.prunable_nonzero,
            "sparsity": self.sparsity,
        }

    def format_table(self) -> str:
        rows = [("layer", "kind", "shape", "density", "non-zero", "total")]
        for layer in self.layers:
            rows.append((layer.name, layer.kind, "x".join(map(str, layer.shape)), f"{layer.density:.4f}",
                          f"{layer.nonzero:,}", f"{layer.total:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append("")
        lines.append(f"prunable weights: {self.prunable_nonzero:,} non-zero of {self.prunable_total:,} "
                     f"(sparsity {self.sparsity:.4f})")
        lines.append(f"parameters: {self.nonzero_params:,} non-zero of {self.dense_params:,} dense")
        return "\n".join(lines)


def sparsity_report(
    module: nn.Module, *, include: Sequence[str] | None = None, trainable_only: bool = True
) -> SparsityReport:
    """Per-layer sparsity of every prunable layer (sparse or still dense) of ``module``.

    ``include`` restricts it to sub-module prefixes (one network of a module), as in ``sparsify``.
    """
    layers = []
    pruned = 0
    for name, sub in prunable_layers(module, include).items():
        if trainable_only and not sub.weight.requires_grad:
            continue
        total = sub.weight.numel()
        kept = int(sub.mask.sum()) if isinstance(sub, SparseWeightMixin) else total
        pruned += total - kept
        layers.append(LayerSparsity(name, type(sub).__name__, tuple(sub.weight.shape), total, kept))
    roots = [module] if include is None else [module.get_submodule(p) for p in include]
    params = {id(p): p for root in roots for p in root.parameters()}.values()
    dense = sum(p.numel() for p in params if p.requires_grad or not trainable_only)
    return SparsityReport(layers=layers, dense_params=dense, nonzero_params=dense - pruned)


@torch.no_grad()
def max_masked_magnitude(module: nn.Module) -> float:
    """Largest |weight| among pruned entries over every sparse layer (0.0 when masks hold)."""
    worst = 0.0
    for sub in module.modules():
        if isinstance(sub, SparseWeightMixin):
            masked = sub.weight.detach()[~sub.mask]
            if masked.numel():
                worst = max(worst, float(masked.abs().max()))
    return worst
