"""Each diagnostic against values worked out by hand on constructed inputs."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

from rllib_sparse.diagnostics.metrics import (
    dormant_ratios,
    gradient_cosines,
    interference_summary,
    parameter_norm,
    recorded_activations,
    srank,
)


def _with_singular_values(values, rows=64, seed=0):
    """A (rows, len(values)) matrix U diag(values) V^T with random orthonormal U, V."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(rows, len(values), generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ v.T


def test_srank_counts_the_directions_that_hold_99_percent_of_the_spectrum():
    # Sum 100: the top 1..4 hold 50, 90, 98, 99.5 -> the smallest k reaching 99 is 4.
    assert srank(_with_singular_values([50, 40, 8, 1.5, 0.5])) == 4
    assert srank(_with_singular_values([50, 40, 8, 1.5, 0.5]), delta=0.05) == 3  # 98 >= 95
    # Eight equal values: 8 directions are needed (7 of them hold only 87.5%).
    assert srank(_with_singular_values([1.0] * 8)) == 8
    assert srank(_with_singular_values([1.0] * 8), delta=0.2) == 7  # 7/8 = 0.875 >= 0.8, 6/8 < 0.8
    assert srank(_with_singular_values([3.0, 0, 0, 0])) == 1  # rank one
    assert srank(torch.zeros(10, 4)) == 0
    # The batch caps srank: 256 samples of 1024 independent features cannot show more than 256.
    assert srank(torch.randn(256, 1024)) <= 256
    with pytest.raises(ValueError, match="features must be a"):
        srank(torch.zeros(3))


def test_dormant_ratio_finds_planted_dead_and_weak_neurons():
    acts = torch.ones(32, 10)
    acts[:, :3] = 0.0  # 3 dead neurons
    acts[:, 3] = 0.05  # weak: its score is 0.05 / mean
    per_layer, total = dormant_ratios({"fc": acts}, tau=0.0)
    assert per_layer == {"fc": 0.3} and total == 0.3
    mean = (6 * 1.0 + 0.05) / 10  # 0.605: the weak neuron's normalised score is 0.083 <= 0.1
    assert 0.05 / mean <= 0.1
    _, total = dormant_ratios({"fc": acts}, tau=0.1)
    assert total == pytest.approx(0.4)
    # Conv maps: a channel is one neuron, averaged over batch and space.
    conv = torch.ones(4, 8, 5, 5)
    conv[:, 0] = 0.0
    per_layer, total = dormant_ratios({"fc": acts, "conv": conv}, tau=0.0)
    assert per_layer["conv"] == 1 / 8 and total == pytest.approx((3 + 1) / 18)
    _, total = dormant_ratios({"dead": torch.zeros(4, 6)}, tau=0.0)
    assert total == 1.0


def test_activations_are_recorded_after_the_nonlinearity():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Tanh())
    x = torch.randn(5, 3)
    with recorded_activations(net) as outputs:
        net(x)
    assert list(outputs) == ["1", "3"]
    assert torch.equal(outputs["1"], torch.relu(net[0](x))) and (outputs["1"] >= 0).all()
    net(x)
    assert not net[1]._forward_hooks  # hooks removed afterwards


def test_parameter_norm_by_hand():
    net = nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[3.0, 0.0]]))
        net.bias.fill_(4.0)
    assert parameter_norm(net) == 5.0


def _linear_loss(params, sample):
    (x,) = sample
    return (params["w"] * x).sum()  # gradient w.r.t. w is x itself


def test_gradient_cosines_identical_orthogonal_and_opposite():
    params = {"w": torch.zeros(4)}
    identical = torch.tensor([[1.0, 2.0, 0, 0]] * 3)
    cos, mean = gradient_cosines(_linear_loss, params, (identical,), chunk_size=2)
    assert torch.allclose(cos, torch.ones(3, 3, dtype=torch.float64))
    assert interference_summary(cos) == {"grad_cosine_mean": pytest.approx(1.0), "grad_negative_fraction": 0.0}
    assert torch.allclose(mean, torch.tensor([1.0, 2.0, 0, 0], dtype=torch.float64))

    orthogonal = torch.eye(4)
    cos, _ = gradient_cosines(_linear_loss, params, (orthogonal,), chunk_size=3)
    assert torch.allclose(cos, torch.eye(4, dtype=torch.float64))
    assert interference_summary(cos) == {"grad_cosine_mean": 0.0, "grad_negative_fraction": 0.0}

    opposite = torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    cos, _ = gradient_cosines(_linear_loss, params, (opposite,))
    summary = interference_summary(cos)  # pairs: (0,1) -1, (0,2) +1, (1,2) -1
    assert summary["grad_cosine_mean"] == pytest.approx(-1 / 3) and summary["grad_negative_fraction"] == pytest.approx(2 / 3)


def test_gradient_cosines_are_exactly_symmetric_with_a_unit_diagonal():
    torch.manual_seed(0)  # float32 rounding alone gave diagonals of 1 - 4e-6 and triangles 5e-8 apart
    wide = torch.randn(33, 200_000)
    cos, _ = gradient_cosines(_linear_loss, {"w": torch.zeros(200_000)}, (wide,), chunk_size=16)
    assert torch.equal(cos, cos.T) and bool((cos.diagonal() == 1.0).all())


def test_gradient_cosines_of_a_real_network_match_a_loop_of_backward_passes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))
    x = torch.randn(6, 5)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, sample):
        (xi,) = sample
        return torch.func.functional_call(net, p, (xi.unsqueeze(0),)).sum()

    cos, _ = gradient_cosines(loss, params, (x,), chunk_size=4)
    grads = []
    for xi in x:
        net.zero_grad()
        net(xi.unsqueeze(0)).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]).double())
    g = torch.stack(grads)
    expected = (g @ g.T) / (g.norm(dim=1, keepdim=True) * g.norm(dim=1))
    assert torch.allclose(cos, expected, atol=1e-6)


def test_diagnostics_import_no_ray():
    import subprocess

    code = "import sys, rllib_sparse.diagnostics; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_per_sample_gradients_of_a_sparse_network_are_zero_at_pruned_weights():
    from rllib_sparse.sparsity import sparsify

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    sparsify(net, 0.8, seed=0)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, sample):
        (xi,) = sample
        return torch.func.functional_call(net, p, (xi.unsqueeze(0),)).sum()

    _, mean = gradient_cosines(loss, params, (torch.randn(5, 6),))
    offset, pruned_grads = 0, []
    for name, p in net.named_parameters():
        g = mean[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
        if name.endswith("weight"):
            mask = dict(net.named_buffers())[name.replace("weight", "mask")]
            pruned_grads.append(g[~mask])
            assert g[mask].abs().sum() > 0
    assert torch.cat(pruned_grads).abs().max() == 0.0


# ------------------------------------------------------------------------------ one network, in one call

class _PlantedEncoder(nn.Module):
    """x (B, 3) -> ReLU(W x) with W = [[1,0,0],[0,1,0],[0,0,0],[0,0,-1]]: neuron 2 is dead (its weights are
    0) and neuron 3 is silent for positive inputs; features are the ReLU outputs."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4, bias=False)
        self.act = nn.ReLU()
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, -1]]))

    def forward(self, x):
        return self.act(self.fc(x))


def test_network_diagnostics_on_a_planted_network():
    from rllib_sparse.diagnostics import network_diagnostics

    encoder, head = _PlantedEncoder(), nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 2.0, 0.0, 0.0]]))
    x = torch.rand(64, 3) + 0.1  # positive inputs: features are (x0, x1, 0, 0)
    encoder.train()
    metrics, cosines = network_diagnostics(encoder, head, x, dormant="post_activation", taus=(0.0,),
                                           interference_samples=6)
    assert encoder.training  # mode restored
    assert metrics["srank"] == float(srank(torch.stack([x[:, 0], x[:, 1]], 1)))  # the two live directions
    assert metrics["srank"] <= 2
    assert metrics["dormant_tau0"] == 0.5 and metrics["dormant_tau0/act"] == 0.5  # 2 of 4 ReLU units silent
    assert metrics["param_norm"] == pytest.approx(math.sqrt(3 + 5))  # |W|^2 = 3, |head|^2 = 5
    assert metrics["feature_norm"] == pytest.approx(float(x[:, :2].norm(dim=1).mean()), rel=1e-5)
    # Output = x0 + 2 x1: its gradient w.r.t. W is head^T x^T (rows 0, 1 live), w.r.t. head it is the features.
    grads = []
    for xi in x[:6]:
        g_w = torch.zeros(4, 3)
        g_w[0], g_w[1] = xi * 1.0, xi * 2.0  # head weight times ReLU'(1 on live rows) times the input
        g_head = torch.tensor([xi[0], xi[1], 0.0, 0.0])
        grads.append(torch.cat([g_w.flatten(), g_head]).double())
    g = torch.stack(grads)
    expected = (g @ g.T) / (g.norm(dim=1, keepdim=True) * g.norm(dim=1))
    assert torch.allclose(cosines, expected, atol=1e-5)
    assert metrics["grad_cosine_mean"] == pytest.approx(float(interference_summary(expected)["grad_cosine_mean"]), abs=1e-5)


def test_gradient_norm_reads_the_last_backward_and_heads_concatenate():
    from rllib_sparse.diagnostics import Heads, gradient_norm

    a, b = nn.Linear(2, 1, bias=False), nn.Linear(2, 2, bias=False)
    assert gradient_norm([a, b]) == 0.0  # no backward yet
    heads = Heads([a, b])
    x = torch.tensor([[3.0, 4.0]])
    out = heads(x)
    assert out.shape == (1, 3) and torch.equal(out, torch.cat([a(x), b(x)], -1))
    out.sum().backward()  # d/dW of each unit is x: |grad|^2 = 3 units * 25
    assert gradient_norm([heads, a]) == pytest.approx(math.sqrt(75))  # shared parameters counted once


def test_interference_matrix_can_be_turned_off():
    from rllib_sparse.diagnostics import network_diagnostics

    metrics, cosines = network_diagnostics(_PlantedEncoder(), nn.Linear(4, 1), torch.rand(8, 3),
                                           interference_samples=0)
    assert cosines.numel() == 0 and "grad_cosine_mean" not in metrics and "srank" in metrics


# ------------------------------------------------------------------------------------- report statistics

def test_iqm_and_bootstrap_summary():
    from rllib_sparse.report.stats import iqm, summarize

    # 8 values: int(8/4) = 2 cut from each end -> mean of the middle 4.
    assert iqm(np.array([100.0, 1, 2, 3, 4, 5, 6, -50])) == pytest.approx((2 + 3 + 4 + 5) / 4)
    assert iqm(np.array([[1.0, 2, 3, 4, 5], [5, 5, 5, 5, 5]]), axis=1).tolist() == [3.0, 5.0]
    few = summarize([1.0, 2.0, 3.0])
    assert few.method == "mean" and few.center == 2.0 and few.n == 3
    assert 1.0 <= few.low < 2.0 < few.high <= 3.0  # a bootstrap mean never leaves the data's range
    many = summarize([0.0, 10, 10, 10, 10, 10, 1000])
    assert many.method == "IQM" and many.center == 10.0  # the outliers are cut
    assert summarize([7.0, 7.0]).low == summarize([7.0, 7.0]).high == 7.0
    assert summarize([5.0, float("nan")]).n == 1 and summarize([]).n == 0
    assert summarize([1.0, 5.0, 2.0], seed=3) == summarize([1.0, 5.0, 2.0], seed=3)  # reproducible


# ------------------------------------------------------------------ the paper's dormant convention, grad norm

def test_dormant_conventions_differ_as_the_paper_and_the_usual_definition_do():
    """Pre-activation (the paper's code): W x scores neuron 3 (-x2) as alive, only the zero row is dead,
    in percent; post-activation: ReLU silences neuron 3 too, as a fraction."""
    from rllib_sparse.diagnostics import network_diagnostics

    x = torch.rand(64, 3) + 0.1
    paper, _ = network_diagnostics(_PlantedEncoder(), nn.Linear(4, 1), x, interference_samples=0)
    assert paper["dormant_pct_tau0.1"] == 25.0 and paper["dormant_pct_tau0.1/fc"] == 25.0
    assert "dormant_pct_tau0.2" in paper and not any(k.startswith("dormant_tau") for k in paper)
    usual, _ = network_diagnostics(_PlantedEncoder(), nn.Linear(4, 1), x, dormant="post_activation",
                                   interference_samples=0)
    assert usual["dormant_tau0"] == 0.5 and usual["dormant_tau0.1/act"] == 0.5 and "dormant_pct_tau0.1" not in usual
    with pytest.raises(ValueError, match="dormant convention 'pre' is unknown; allowed: pre_activation, post_activation"):
        network_diagnostics(_PlantedEncoder(), nn.Linear(4, 1), x, dormant="pre", interference_samples=0)


def test_paper_dormant_count_scores_the_simba_dense_outputs_before_relu_and_residual():
    from rllib_sparse.diagnostics import network_diagnostics
    from rllib_sparse.diagnostics.metrics import dormant_ratios
    from rllib_sparse.networks.mlp import SimBa
    from rllib_sparse.sparsity import sparsify

    torch.manual_seed(0)
    encoder = SimBa(obs_dim=5, width=16, depth=2, extra_dim=2)
    sparsify(encoder, 0.8, seed=0)
    obs, act = torch.randn(128, 5), torch.randn(128, 2)
    metrics, _ = network_diagnostics(encoder, nn.Linear(16, 1), obs, act, taus=(0.2,), interference_samples=0)
    layers = sorted(k.split("/", 1)[1] for k in metrics if k.startswith("dormant_pct_tau0.2/"))
    assert layers == ["blocks.0.down", "blocks.0.up", "blocks.1.down", "blocks.1.up", "input"]
    # By hand: the same outputs, taken apart (eval mode: the observation statistics do not move).
    encoder.eval()
    with torch.no_grad():
        z = encoder.input(torch.cat([encoder.obs_norm(obs), act], -1))
        outputs = {"input": z}
        for i, block in enumerate(encoder.blocks):
            up = block.up(block.norm(z))
            down = block.down(torch.relu(up))
            outputs |= {f"blocks.{i}.up": up, f"blocks.{i}.down": down}
            z = z + down
    per_layer, total = dormant_ratios(outputs, 0.2)
    assert metrics["dormant_pct_tau0.2"] == pytest.approx(100 * total)
    assert all(metrics[f"dormant_pct_tau0.2/{k}"] == pytest.approx(100 * v) for k, v in per_layer.items())
    assert outputs["blocks.0.up"].min() < 0  # pre-activation: the ReLU has not cut the negatives yet


def test_gradient_norm_window_is_the_mean_of_per_update_norms():
    from rllib_sparse.diagnostics import GradientNormWindow

    actor, critic = nn.Linear(2, 1, bias=False), nn.Linear(2, 1, bias=False)
    window = GradientNormWindow({"actor": [actor], "critic": [critic, critic]})  # shared parameters once
    assert window.mean_and_reset() == ({}, 0)
    for x in ([3.0, 4.0], [0.0, 1.0]):  # gradient of w.x is x: norms 5 and 1
        actor.zero_grad()
        critic.zero_grad()
        actor(torch.tensor([x])).sum().backward()
        (2 * critic(torch.tensor([x]))).sum().backward()
        window.add_update()
    means, updates = window.mean_and_reset()
    assert updates == 2 and means == {"actor": pytest.approx(3.0), "critic": pytest.approx(6.0)}  # not |mean grad|
    assert window.mean_and_reset() == ({}, 0)  # a new window
