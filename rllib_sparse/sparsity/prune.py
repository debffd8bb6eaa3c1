"""One-shot random pruning before training: pick layers, allocate densities, draw exact-count masks.

Masks are drawn from a seed *and the layer's qualified name*, so every copy of a network built the
same way (learner, env runners, a restored checkpoint, another process) draws the identical mask
without communication, and two layers of one network never share a mask pattern.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn

from rllib_sparse.sparsity.allocation import allocate, check_sparsity
from rllib_sparse.sparsity.layers import SparseWeightMixin, is_prunable, to_sparse_layer


def layer_seed(seed: int, name: str) -> int:
    """A 63-bit seed from (seed, layer name), stable across processes and Python versions."""
    digest = hashlib.blake2b(f"{int(seed)}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def kept_count(numel: int, density: float) -> int:
    """How many weights a layer of ``numel`` weights keeps at ``density`` (exact-count masks)."""
    return int(round(density * numel))


def random_mask(
    shape: Sequence[int], density: float, seed: int, name: str, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """A bool mask with exactly ``kept_count`` True entries at seeded random places.

    Drawn on the CPU (the same bits on every machine), then moved to ``device``. On the ``meta``
    device nothing is drawn: planning a network's size (``rllib-sparse validate``) needs no masks.
    """
    if torch.device(device).type == "meta":
        return torch.empty(tuple(shape), dtype=torch.bool, device="meta")
    numel = 1
    for d in shape:
        numel *= int(d)
    keep = kept_count(numel, density)
    generator = torch.Generator(device="cpu").manual_seed(layer_seed(seed, name))
    # Choose whichever side is smaller to permute less; the result has exactly `keep` ones.
    flip = keep > numel // 2
    chosen = torch.randperm(numel, generator=generator, device="cpu")[: (numel - keep) if flip else keep]
    mask = torch.full((numel,), flip, dtype=torch.bool, device="cpu")
    mask[chosen] = not flip
    return mask.view(*shape).to(device)


def prunable_layers(root: nn.Module, include: Sequence[str] | None = None) -> dict[str, nn.Module]:
    """Prunable layers (Linear/Conv weights) of ``root`` by qualified name, in network order.

    ``include`` lists sub-module prefixes (e.g. ``["encoder.actor_encoder", "pi"]``); the result keeps
    their order, so the first and last layer of a network split over several sub-modules are right.
    """
    named = [(n, m) for n, m in root.named_modules() if is_prunable(m)]
    if include is None:
        return dict(named)
    picked: dict[str, nn.Module] = {}
    for prefix in include:
        for name, module in named:
            if name == prefix or name.startswith(prefix + ".") or prefix == "":
                picked.setdefault(name, module)
    return picked


def sparsify(
    root: nn.Module,
    sparsity: float,
    *,
    allocation: str = "erdos_renyi",
    seed: int = 0,
    include: Sequence[str] | None = None,
    keep_first_dense: bool = False,
    keep_last_dense: bool = False,
    rescale: bool = False,
) -> dict[str, float]:
    """Prune ``root`` in place, once, and return the density given to each layer.

    Every selected ``nn.Linear``/``nn.ConvNd`` is replaced by its sparse twin sharing the same
    parameter tensors. The global non-zero count over the selected weights is ``(1 - sparsity)`` of
    their total to within one weight per layer. ``rescale`` multiplies the kept weights by
    ``1/sqrt(density)`` (a variance-preserving ablation; the paper does not rescale).
    """
    sparsity = check_sparsity(sparsity)
    layers = prunable_layers(root, include)
    if not layers:
        raise ValueError(f"include={list(include or [])} selects no Linear/Conv layer to prune")
    already = [n for n, m in layers.items() if isinstance(m, SparseWeightMixin)]
    if already:
        raise ValueError(f"layers {already} are already sparse; a mask is drawn once, before training")
    names = list(layers)
    dense = set()
    if keep_first_dense:
        dense.add(names[0])
    if keep_last_dense:
        dense.add(names[-1])
    shapes = {n: tuple(m.weight.shape) for n, m in layers.items()}
    densities = allocate(allocation, shapes, sparsity, dense)
    for name, layer in layers.items():
        mask = random_mask(shapes[name], densities[name], seed, name, device=layer.weight.device)
        sparse = to_sparse_layer(layer, mask)
        if rescale and densities[name] > 0:
            with torch.no_grad():
                sparse.weight.mul_(densities[name] ** -0.5)
        _set_submodule(root, name, sparse)
    return densities


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)
