"""Networks, the model registry and the sparse model config (pure torch)."""

import numpy as np
import pytest
import torch
from torch import nn

from rllib_sparse.networks import (
    MLP,
    ImpalaCNN,
    NatureCNN,
    SimBa,
    SparseModelConfig,
    build_network,
    get_model,
    register_model,
    registered_models,
)


def simba_params(obs, extra, width, depth):
    block = 2 * width + (width * 4 * width + 4 * width) + (4 * width * width + width)
    return (obs + extra) * width + width + depth * block + 2 * width


@pytest.mark.parametrize("width,depth,extra", [(32, 1, 0), (64, 2, 3)])
def test_simba_shape_and_parameter_count(width, depth, extra):
    net = SimBa(17, width, depth, extra_dim=extra)
    out = net(torch.randn(5, 17), torch.randn(5, extra) if extra else None)
    assert out.shape == (5, width) and net.output_dim == width
    assert sum(p.numel() for p in net.parameters()) == simba_params(17, extra, width, depth)
    # post-LayerNorm output: zero mean, unit variance per sample
    assert torch.allclose(out.mean(-1), torch.zeros(5), atol=1e-5)


def test_simba_obs_norm_learns_only_from_training_batches():
    net = SimBa(3, 16, 1)
    data = torch.randn(4000, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 0.0])
    with torch.no_grad():
        net(data)  # inference: no update
    assert torch.equal(net.obs_norm.mean, torch.zeros(3))
    net.eval()
    net(data)  # eval mode: no update
    assert torch.equal(net.obs_norm.mean, torch.zeros(3))
    net.train()
    for chunk in data.split(500):
        net(chunk)
    assert np.allclose(net.obs_norm.mean.numpy(), data.mean(0).numpy(), atol=1e-3)
    assert np.allclose(net.obs_norm.var.numpy(), data.var(0, unbiased=False).numpy(), rtol=1e-3)
    frozen = SimBa(3, 16, 1).requires_grad_(False)  # a target-network copy never updates its own stats
    frozen(data)
    assert torch.equal(frozen.obs_norm.mean, torch.zeros(3))


def test_mlp_shape():
    net = MLP(4, 32, 3, extra_dim=2)
    assert net(torch.randn(7, 4), torch.randn(7, 2)).shape == (7, 32)
    assert sum(isinstance(m, nn.Linear) for m in net.modules()) == 3


def test_nature_cnn_scales_with_width_and_reads_uint8_frames():
    small, wide = NatureCNN((84, 84, 4), width=1), NatureCNN((84, 84, 4), width=2)
    frames = torch.randint(0, 256, (2, 84, 84, 4), dtype=torch.uint8)
    assert small(frames).shape == (2, 512) and wide(frames).shape == (2, 1024)
    assert torch.allclose(small(frames), small(frames.float() / 255.0))
    assert wide.convs[0].out_channels == 64
    with pytest.raises(ValueError, match="too small for nature_cnn"):
        NatureCNN((20, 20, 4))


def test_impala_cnn_shape():
    net = ImpalaCNN((64, 64, 3), width=2, depth=1)
    assert net(torch.zeros(3, 64, 64, 3)).shape == (3, 512) and net.output_dim == 512


def test_registry_lists_the_built_in_models_and_checks_observation_rank():
    assert {"simba", "mlp", "nature_cnn", "impala_cnn"} <= set(registered_models())
    with pytest.raises(ValueError, match=r"model='nature_cnn' needs image observations.*allowed models for it: layernorm_mlp, mlp, simba"):
        build_network("nature_cnn", (4,), 1, 1)
    with pytest.raises(ValueError, match=r"model='simba' needs vector observations"):
        build_network("simba", (84, 84, 4), 64, 1)
    with pytest.raises(ValueError, match="model='nope' is not registered; allowed: "):
        get_model("nope")


def test_third_party_models_can_be_registered():
    class Tiny(nn.Module):
        def __init__(self, obs_dim, width, extra):
            super().__init__()
            self.fc = nn.Linear(obs_dim + extra, width)
            self.output_dim = width

        def forward(self, obs, extra=None):
            return self.fc(obs if extra is None else torch.cat([obs, extra], -1))

    register_model("tiny_test", lambda shape, w, d, e: Tiny(shape[0], w, e), input_kind="vector",
                   default_width=8, default_depth=1, replace=True)
    assert SparseModelConfig.parse({"model": "tiny_test"}).network("actor").width == 8
    assert build_network("tiny_test", (5,), 8, 1)(torch.randn(2, 5)).shape == (2, 8)
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny_test", lambda *a: None, input_kind="vector", default_width=1, default_depth=1)


def test_config_resolves_actor_and_critic():
    config = SparseModelConfig.parse({"width": 128, "sparsity": 0.8, "critic": {"width": 512, "depth": 3}})
    actor, critic = config.network("actor"), config.network("critic")
    assert (actor.width, actor.depth, actor.sparsity) == (128, get_model("simba").default_depth, 0.8)
    assert (critic.width, critic.depth, critic.sparsity) == (512, 3, 0.8)
    assert SparseModelConfig.parse({"critic": {"sparsity": 0.0}, "sparsity": 0.9}).network("critic").sparsity == 0.0
    mixed = SparseModelConfig.parse({"allocation": "uniform", "critic": {"allocation": "erdos_renyi"}})
    assert (mixed.network("actor").allocation, mixed.network("critic").allocation) == ("uniform", "erdos_renyi")


@pytest.mark.parametrize("data,pattern", [
    ({"sparsity": 1.0}, r"sparsity=1.0 is invalid: Input should be less than 1"),
    ({"actor": {"sparsity": -0.5}}, r"actor.sparsity=-0.5 is invalid: .*greater than or equal to 0"),
    ({"width": 0}, r"width=0 is invalid: .*greater than or equal to 1"),
    ({"critic": {"depth": 0}}, r"critic.depth=0 is invalid"),
    ({"model": "resnet"}, r"model='resnet' is invalid: not a registered model; allowed: .*simba"),
    ({"allocation": "erk"}, r"allocation='erk' is invalid: .*allowed: erdos_renyi, uniform"),
    ({"critic": {"allocation": "erk"}}, r"critic.allocation='erk' is invalid: .*allowed: erdos_renyi, uniform"),
    ({"widht": 64}, r"unknown key 'widht'; did you mean 'width'\?"),
    ({"actor": {"sparsty": 0.5}}, r"unknown key 'actor.sparsty'; did you mean 'sparsity'\?"),
])
def test_config_errors_are_one_line_and_name_field_value_and_allowed(data, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        SparseModelConfig.parse(data)
    assert "\n" not in str(info.value)
