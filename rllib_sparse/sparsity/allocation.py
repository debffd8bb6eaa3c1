"""Layer-wise density allocation: how a global sparsity budget is split over layers.

The paper prunes with the Erdős–Rényi (ER) rule: a layer's density is proportional to
sum(shape) / prod(shape), so wide layers are pruned harder than thin ones. One scale factor ε is
solved so that the non-zero budget is met exactly; a layer whose density would exceed 1 becomes dense
and ε is solved again over the rest (the same loop as JaxPruner's ``get_sparsities_erdos_renyi``).

The budget here is over the *prunable weights* only (Linear/Conv kernels). Biases and normalisation
parameters are never pruned and are not part of the budget; the paper's code counted them in the total
(see docs/design.md), which shifts kernel sparsity by about 1% at S = 0.8.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

Shape = Sequence[int]

ALLOCATIONS = ("erdos_renyi", "uniform")


def check_sparsity(sparsity: float, field: str = "sparsity") -> float:
    """Return ``sparsity`` as float, or raise a one-line ValueError naming ``field``."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise ValueError(f"{field}={sparsity!r} is not a number; allowed: a float in [0, 1)") from None
    if not 0.0 <= value < 1.0 or math.isnan(value):
        raise ValueError(f"{field}={sparsity!r} is out of range; allowed: a float in [0, 1)")
    return value


def _numel(shape: Shape) -> int:
    return math.prod(int(d) for d in shape)


def _free_budget(shapes: Mapping[str, Shape], sparsity: float, dense: Collection[str]) -> float:
    """Non-zero weights left for the layers that are not forced dense."""
    total = sum(_numel(s) for s in shapes.values())
    target_nonzero = (1.0 - sparsity) * total
    forced = sum(_numel(shapes[name]) for name in dense)
    budget = target_nonzero - forced
    if budget < -0.5:
        raise ValueError(
            f"sparsity={sparsity} cannot be met: the layers kept dense ({', '.join(sorted(dense))}) "
            f"already hold {forced} of the {round(target_nonzero)} non-zero weights allowed; "
            "allowed: a lower sparsity or fewer dense layers"
        )
    return max(budget, 0.0)


def uniform_densities(
    shapes: Mapping[str, Shape], sparsity: float, dense: Collection[str] = ()
) -> dict[str, float]:
    """Every free layer gets the same density; kept-dense layers are paid for from the budget."""
    sparsity = check_sparsity(sparsity)
    _check_dense_names(shapes, dense)
    free = [n for n in shapes if n not in dense]
    free_total = sum(_numel(shapes[n]) for n in free)
    budget = _free_budget(shapes, sparsity, dense)
    density = min(1.0, budget / free_total) if free_total else 1.0
    return {n: (1.0 if n in dense else density) for n in shapes}


def erdos_renyi_densities(
    shapes: Mapping[str, Shape], sparsity: float, dense: Collection[str] = ()
) -> dict[str, float]:
    """Erdős–Rényi densities d_l = ε·sum(shape_l)/prod(shape_l), with dense overflow re-solved.

    Convolution kernels count their kernel dims too (sum and product over all dims), as in JaxPruner.
    """
    sparsity = check_sparsity(sparsity)
    _check_dense_names(shapes, dense)
    dense_set = set(dense)
    if sparsity == 0.0:
        return {n: 1.0 for n in shapes}
    raw = {n: sum(int(d) for d in s) / _numel(s) for n, s in shapes.items()}
    while True:
        free = [n for n in shapes if n not in dense_set]
        if not free:
            break
        budget = _free_budget(shapes, sparsity, dense_set)
        weighted = sum(raw[n] * _numel(shapes[n]) for n in free)
        eps = budget / weighted
        overflow = [n for n in free if eps * raw[n] > 1.0]
        if not overflow:
            break
        # Densify the layers with the largest raw density first, then solve ε again.
        top = max(raw[n] for n in overflow)
        dense_set.update(n for n in overflow if raw[n] == top)
    return {n: (1.0 if n in dense_set else eps * raw[n]) for n in shapes}


def allocate(
    allocation: str, shapes: Mapping[str, Shape], sparsity: float, dense: Collection[str] = ()
) -> dict[str, float]:
    """Densities for ``shapes`` under the named allocation (``erdos_renyi`` or ``uniform``)."""
    if allocation == "erdos_renyi":
        return erdos_renyi_densities(shapes, sparsity, dense)
    if allocation == "uniform":
        return uniform_densities(shapes, sparsity, dense)
    raise ValueError(f"allocation={allocation!r} is not known; allowed: {', '.join(ALLOCATIONS)}")


def _check_dense_names(shapes: Mapping[str, Shape], dense: Collection[str]) -> None:
    unknown = sorted(set(dense) - set(shapes))
    if unknown:
        raise ValueError(f"dense layers {unknown} are not among the layers; allowed: {sorted(shapes)}")
