"""Layer-wise density allocation against closed forms."""

import math

import pytest

from rllib_sparse.sparsity import erdos_renyi_densities, uniform_densities
from rllib_sparse.sparsity.allocation import allocate


def nonzero(shapes, densities):
    return sum(densities[n] * math.prod(s) for n, s in shapes.items())


def test_uniform_gives_every_layer_the_global_density():
    shapes = {"a": (64, 10), "b": (256, 64), "c": (1, 256)}
    densities = uniform_densities(shapes, 0.75)
    assert densities == pytest.approx({"a": 0.25, "b": 0.25, "c": 0.25})


def test_uniform_pays_for_kept_dense_layers_from_the_budget():
    shapes = {"a": (10, 10), "b": (30, 10)}  # 100 + 300 weights, 50% target -> 200 non-zero
    densities = uniform_densities(shapes, 0.5, dense={"a"})
    assert densities["a"] == 1.0
    assert densities["b"] == pytest.approx(100 / 300)
    assert nonzero(shapes, densities) == pytest.approx(200)


def test_erdos_renyi_closed_form_without_overflow():
    # raw_l = sum/prod; eps = (1-S) * N / sum(raw_l * N_l) = (1-S) * N / sum(sum(shape_l)).
    shapes = {"a": (100, 100), "b": (200, 100)}
    sparsity = 0.9
    total = 100 * 100 + 200 * 100
    eps = (1 - sparsity) * total / (200 + 300)
    densities = erdos_renyi_densities(shapes, sparsity)
    assert densities["a"] == pytest.approx(eps * 200 / 10_000)
    assert densities["b"] == pytest.approx(eps * 300 / 20_000)
    assert nonzero(shapes, densities) == pytest.approx((1 - sparsity) * total)
    assert densities["a"] > densities["b"]  # the larger layer is pruned harder


def test_erdos_renyi_counts_convolution_kernel_dims():
    shapes = {"conv": (32, 4, 8, 8), "fc": (512, 3136)}
    densities = erdos_renyi_densities(shapes, 0.9)
    raw_conv = (32 + 4 + 8 + 8) / (32 * 4 * 8 * 8)
    raw_fc = (512 + 3136) / (512 * 3136)
    assert densities["conv"] / densities["fc"] == pytest.approx(raw_conv / raw_fc)


def test_erdos_renyi_dense_overflow_is_resolved_again():
    # total 17,152 weights, S = 0.5 -> 8,576 non-zero. First eps = 8576 / (72 + 320 + 257) gives the head
    # (raw 257/256) and the input layer (raw 72/512) densities > 1. The head has the largest raw density:
    # it becomes dense first (8,320 left), then the input layer (7,808 left), all for the hidden layer.
    shapes = {"in": (64, 8), "hidden": (256, 64), "head": (1, 256)}
    densities = erdos_renyi_densities(shapes, 0.5)
    assert densities["head"] == 1.0
    assert densities["in"] == 1.0
    assert densities["hidden"] == pytest.approx(7808 / 16384)
    assert nonzero(shapes, densities) == pytest.approx(8576)


def test_erdos_renyi_overflow_of_one_layer_only():
    shapes = {"hidden": (256, 64), "head": (1, 256)}  # 16,640 weights, S = 0.8 -> 3,328 non-zero
    densities = erdos_renyi_densities(shapes, 0.8)
    assert densities["head"] == 1.0
    assert densities["hidden"] == pytest.approx((3328 - 256) / 16384)


def test_erdos_renyi_overflow_cascades_until_valid():
    shapes = {"tiny": (2, 2), "small": (8, 4), "big": (512, 512)}
    densities = erdos_renyi_densities(shapes, 0.2)
    total = sum(math.prod(s) for s in shapes.values())
    assert densities["tiny"] == densities["small"] == 1.0
    assert nonzero(shapes, densities) == pytest.approx(0.8 * total)


def test_sparsity_zero_is_dense_everywhere():
    shapes = {"a": (3, 4), "b": (4, 5)}
    assert erdos_renyi_densities(shapes, 0.0) == {"a": 1.0, "b": 1.0}
    assert uniform_densities(shapes, 0.0) == {"a": 1.0, "b": 1.0}


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan"), "x"])
def test_bad_sparsity_is_one_line_value_error(bad):
    with pytest.raises(ValueError, match=r"sparsity=.*allowed: a float in \[0, 1\)") as info:
        erdos_renyi_densities({"a": (4, 4)}, bad)
    assert "\n" not in str(info.value)


def test_unknown_allocation_names_the_allowed_ones():
    with pytest.raises(ValueError, match="allocation='erk'.*erdos_renyi, uniform"):
        allocate("erk", {"a": (4, 4)}, 0.5)


def test_infeasible_dense_budget_is_rejected():
    shapes = {"a": (100, 100), "b": (10, 10)}
    with pytest.raises(ValueError, match="cannot be met"):
        uniform_densities(shapes, 0.9, dense={"a"})
