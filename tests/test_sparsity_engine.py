"""The pure-torch sparsity engine: exact masks, mask enforcement under training, no inference cost."""

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import run_python
from rllib_sparse.sparsity import (
    SparseConv2d,
    SparseLinear,
    max_masked_magnitude,
    random_mask,
    sparsify,
    sparsity_report,
)


def mlp(width=64):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 4 * width), nn.ReLU(),
                         nn.Linear(4 * width, 2))


def cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(4, 16, 8, 4), nn.ReLU(), nn.Conv2d(16, 32, 4, 2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(32 * 9 * 9, 64), nn.ReLU(), nn.Linear(64, 3))


def test_random_mask_has_exact_count():
    for density in (0.0, 0.013, 0.5, 0.9, 1.0):
        mask = random_mask((37, 53), density, seed=1, name="layer")
        assert mask.dtype == torch.bool
        assert int(mask.sum()) == round(density * 37 * 53)


def test_masks_depend_on_seed_and_layer_name():
    a = random_mask((64, 64), 0.1, seed=0, name="encoder.up")
    assert torch.equal(a, random_mask((64, 64), 0.1, seed=0, name="encoder.up"))
    assert not torch.equal(a, random_mask((64, 64), 0.1, seed=1, name="encoder.up"))
    assert not torch.equal(a, random_mask((64, 64), 0.1, seed=0, name="encoder.down"))


def test_same_seed_gives_identical_masks_in_another_process():
    code = """
import hashlib, torch
from torch import nn
from rllib_sparse.sparsity import sparsify
net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 2))
sparsify(net, 0.9, seed={seed})
h = hashlib.sha256()
for name, buf in net.named_buffers():
    h.update(name.encode()); h.update(buf.numpy().tobytes())
print(h.hexdigest())
"""
    runs = [run_python(code.format(seed=s)) for s in (7, 7, 8)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    digests = [run.stdout.strip() for run in runs]
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_sparsify_meets_the_global_budget_within_one_weight_per_layer():
    for allocation in ("erdos_renyi", "uniform"):
        net = mlp()
        densities = sparsify(net, 0.9, allocation=allocation, seed=3)
        report = sparsity_report(net)
        target = 0.1 * report.prunable_total
        assert abs(report.prunable_nonzero - target) <= len(densities)
        for layer in report.layers:
            assert abs(layer.nonzero - densities[layer.name] * layer.total) <= 0.5 + 1e-9
        assert all(isinstance(m, SparseLinear) for m in net if isinstance(m, nn.Linear))


def test_sparsify_shares_parameters_and_zeroes_pruned_weights():
    net = mlp()
    before = net[2].weight
    sparsify(net, 0.8)
    assert net[2].weight is before  # no copy of the (possibly huge) weight tensor
    assert max_masked_magnitude(net) == 0.0
    assert float(net[2].weight.detach()[net[2].mask].abs().min()) > 0.0  # kept weights keep their dense init


def test_keep_first_and_last_dense_and_include_prefixes():
    net = mlp()
    densities = sparsify(net, 0.8, include=["4", "2", "0"], keep_first_dense=True, keep_last_dense=True)
    # include order defines the network order: "4" is first, "0" is last.
    assert list(densities) == ["4", "2", "0"]
    assert densities["4"] == 1.0 and densities["0"] == 1.0 and densities["2"] < 1.0
    report = sparsity_report(net)
    assert report.sparsity == pytest.approx(0.8, abs=1e-3)


def test_sparsify_twice_is_refused():
    net = mlp()
    sparsify(net, 0.5)
    with pytest.raises(ValueError, match="already sparse"):
        sparsify(net, 0.5)


def test_rescale_multiplies_kept_weights():
    plain, scaled = mlp(), mlp()
    d_plain = sparsify(plain, 0.75, seed=1)
    sparsify(scaled, 0.75, seed=1, rescale=True)
    ratio = scaled[2].weight[scaled[2].mask] / plain[2].weight[plain[2].mask]
    assert torch.allclose(ratio, torch.full_like(ratio, d_plain["2"] ** -0.5))


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd_momentum"])
def test_pruned_weights_stay_exactly_zero_after_every_optimizer_step(optimizer):
    net = mlp()
    sparsify(net, 0.9, seed=5)
    params = list(net.parameters())
    opt = {
        "adamw": lambda: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1),
        "adam": lambda: torch.optim.Adam(params, lr=1e-2, weight_decay=0.01),
        "sgd_momentum": lambda: torch.optim.SGD(params, lr=1e-2, momentum=0.9, weight_decay=0.01),
    }[optimizer]()
    kept_before = net[2].weight[net[2].mask].clone()
    for step in range(20):
        loss = net(torch.randn(64, 8)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        for layer in (net[0], net[2], net[4]):
            assert torch.count_nonzero(layer.weight.grad[~layer.mask]) == 0
        torch.nn.utils.clip_grad_norm_(params, 0.5)
        opt.step()
        assert max_masked_magnitude(net) == 0.0, f"step {step}"
    assert not torch.equal(kept_before, net[2].weight[net[2].mask])  # the kept weights did train


def test_gradient_norm_only_sees_unmasked_entries():
    net = mlp()
    sparsify(net, 0.9)
    net(torch.randn(16, 8)).sum().backward()
    for layer in (net[0], net[2], net[4]):
        manual = layer.weight.grad[layer.mask].norm()
        assert torch.allclose(layer.weight.grad.norm(), manual)


class _OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def test_inference_forward_is_a_plain_dense_forward():
    net = mlp()
    sparsify(net, 0.9)
    x = torch.randn(32, 8)
    with torch.no_grad(), _OpLog() as log:
        out = net(x)
    assert not any(("mul" in op or "where" in op or "masked" in op) for op in log.ops), log.ops
    with torch.no_grad():
        expected = F.linear(torch.relu(F.linear(torch.relu(F.linear(x, net[0].weight, net[0].bias)),
                                                net[2].weight, net[2].bias)), net[4].weight, net[4].bias)
    assert torch.equal(out, expected)


def test_state_dict_carries_masks_and_loading_reapplies_them():
    net = mlp()
    sparsify(net, 0.9, seed=2)
    state = net.state_dict()
    assert state["2.mask"].dtype == torch.bool
    # A state with non-zero values at pruned places (e.g. a dense checkpoint) cannot revive them.
    dense_state = {k: (torch.randn_like(v) if k.endswith("weight") else v) for k, v in state.items()}
    net.load_state_dict(dense_state)
    assert max_masked_magnitude(net) == 0.0


def test_deepcopy_and_pickle_keep_mask_enforcement():
    net = mlp()
    sparsify(net, 0.9, seed=2)
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    for clone in (copy.deepcopy(net), torch.load(buffer, weights_only=False)):
        assert torch.equal(clone[2].mask, net[2].mask)
        opt = torch.optim.AdamW(clone.parameters(), lr=1e-2, weight_decay=0.1)
        for _ in range(3):
            opt.zero_grad()
            clone(torch.randn(8, 8)).sum().backward()
            opt.step()
        assert max_masked_magnitude(clone) == 0.0


def test_polyak_average_of_state_dicts_keeps_masks_and_zeros():
    # RLlib's target update: tau * main + (1 - tau) * target over the whole state dict, in float.
    main = mlp()
    sparsify(main, 0.9, seed=4)
    target = copy.deepcopy(main)
    opt = torch.optim.Adam(main.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        main(torch.randn(8, 8)).sum().backward()
        opt.step()
        main_state, tau = main.state_dict(), 0.005
        target.load_state_dict({k: tau * main_state[k] + (1 - tau) * v for k, v in target.state_dict().items()})
    assert torch.equal(target[2].mask, main[2].mask)
    assert target[2].mask.dtype == torch.bool
    assert max_masked_magnitude(target) == 0.0


def test_convolutions_are_pruned_with_kernel_dims():
    net = cnn()
    densities = sparsify(net, 0.9, seed=0)
    assert isinstance(net[0], SparseConv2d) and isinstance(net[2], SparseConv2d)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(4, 4, 84, 84)).sum().backward()
        opt.step()
    assert max_masked_magnitude(net) == 0.0
    raw = {n: sum(s) / math.prod(s) for n, s in
           {"0": (16, 4, 8, 8), "2": (32, 16, 4, 4), "5": (64, 2592)}.items()}
    assert densities["0"] / densities["2"] == pytest.approx(raw["0"] / raw["2"])


def test_report_counts_dense_and_nonzero_parameters():
    net = mlp(width=16)
    sparsify(net, 0.5, allocation="uniform")
    report = sparsity_report(net)
    weights = 8 * 16 + 16 * 64 + 64 * 2
    biases = 16 + 64 + 2
    assert report.dense_params == weights + biases
    assert report.nonzero_params == report.dense_params - (weights - report.prunable_nonzero)
    assert report.to_dict()["sparsity"] == pytest.approx(0.5, abs=2 / weights)
    assert "sparsity 0.5" in report.format_table()


def test_pure_torch_layers_do_not_import_ray():
    run = run_python("import sys, rllib_sparse.sparsity, rllib_sparse.networks; "
                     "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_float_gradient_mask_exists_from_construction_follows_the_weight_and_is_never_saved():
    net = mlp()
    sparsify(net, 0.9)
    buffers_before = dict(net.named_buffers())
    net(torch.randn(4, 8)).sum().backward()
    assert dict(net.named_buffers()).keys() == buffers_before.keys()  # a forward adds nothing (torch.compile)
    assert torch.equal(net[2].grad_mask, net[2].mask.float())
    assert not any(key.endswith("grad_mask") for key in net.state_dict())
    net.double()
    assert net[2].grad_mask.dtype == torch.float64 and torch.equal(net[2].grad_mask, net[2].mask.double())
    other = mlp()
    sparsify(other, 0.9, seed=123)  # another mask, loaded into ``net``: the gradient mask follows it
    net.load_state_dict(other.double().state_dict())
    assert torch.equal(net[2].grad_mask, other[2].mask.double())
    net.zero_grad()
    net(torch.randn(4, 8, dtype=torch.float64)).sum().backward()
    assert net[2].weight.grad[~other[2].mask].abs().max() == 0.0
