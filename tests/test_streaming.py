"""Streaming RL's optimizer, ObGD: one step by hand, trace reset, and masks under many steps."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from rllib_sparse.networks import MLP
from rllib_sparse.sparsity import SparseWeightMixin, sparsify
from rllib_sparse.streaming import ObGD


def _value_step(layer: nn.Linear, optimizer: ObGD, s: list[float], delta: float, reset: bool = False) -> float:
    optimizer.zero_grad()
    layer(torch.tensor(s)).sum().backward()
    return optimizer.step(delta, reset=reset)


def test_two_steps_equal_the_algorithm_by_hand():
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -1.0]]))
    optimizer = ObGD(layer.parameters(), lr=1.0, gamma=0.99, lamda=0.8, kappa=2.0)
    w = torch.tensor([0.5, -1.0], dtype=torch.float64)

    # Step 1: z = ∇v = s = (1, 2); M = α κ max(|δ|, 1) ‖z‖₁ = 1·2·1·3 = 6 > 1: step 1/6.
    z = torch.tensor([1.0, 2.0], dtype=torch.float64)
    used = _value_step(layer, optimizer, [1.0, 2.0], delta=0.5)
    w = w + (1 / 6) * 0.5 * z
    assert used == pytest.approx(1 / 6)
    assert torch.allclose(layer.weight.detach().double()[0], w, atol=1e-6)

    # Step 2: the trace decays by γλ and adds s = (0, 1); |δ| = 2 > 1 scales the bound; episode ends.
    z = 0.99 * 0.8 * z + torch.tensor([0.0, 1.0], dtype=torch.float64)
    bound = 1.0 * 2.0 * 2.0 * float(z.abs().sum())
    used = _value_step(layer, optimizer, [0.0, 1.0], delta=-2.0, reset=True)
    w = w + (1 / bound) * -2.0 * z
    assert used == pytest.approx(1 / bound)
    assert torch.allclose(layer.weight.detach().double()[0], w, atol=1e-6)
    assert torch.equal(optimizer.state[layer.weight]["trace"], torch.zeros(1, 2))  # reset after the update


def test_a_step_that_cannot_overshoot_is_the_plain_step_size():
    layer = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(layer.weight)
    optimizer = ObGD(layer.parameters(), lr=0.1, kappa=1.0)
    used = _value_step(layer, optimizer, [0.5, 0.25], delta=0.3)  # M = 0.1·1·1·0.75 < 1
    assert used == 0.1
    assert torch.allclose(layer.weight.detach()[0], 0.1 * 0.3 * torch.tensor([0.5, 0.25]))


def test_static_masks_keep_pruned_weights_and_traces_at_zero_while_sparse_init_zeros_move():
    torch.manual_seed(0)
    static = nn.Sequential(MLP(8, 32, 2), nn.Linear(32, 1))
    sparsify(static, 0.9, seed=0)
    sparse_init = nn.Sequential(MLP(8, 32, 2), nn.Linear(32, 1))
    zeros = {}
    with torch.no_grad():  # SparseInit-like: 90% of each row set to 0, weights trainable
        for name, module in sparse_init.named_modules():
            if isinstance(module, nn.Linear):
                drop = torch.rand_like(module.weight) < 0.9
                module.weight[drop] = 0.0
                zeros[name] = drop
    for net in (static, sparse_init):
        optimizer = ObGD(net.parameters(), lr=1.0, kappa=2.0)
        generator = torch.Generator().manual_seed(1)
        for t in range(300):
            optimizer.zero_grad()
            net(torch.randn(8, generator=generator)).sum().backward()
            optimizer.step(float(torch.randn((), generator=generator)) * 3, reset=t % 50 == 49)
        if net is static:
            for module in net.modules():
                if isinstance(module, SparseWeightMixin):
                    assert torch.count_nonzero(module.weight[~module.mask]) == 0
                    assert torch.count_nonzero(optimizer.state[module.weight]["trace"][~module.mask]) == 0
        else:
            moved = [torch.count_nonzero(m.weight[zeros[n]]) for n, m in net.named_modules() if n in zeros]
            assert all(count > 0 for count in moved)


@pytest.mark.parametrize("kwargs", [{"lr": -1.0}, {"kappa": "2"}, {"gamma": 1.5}, {"lamda": True}])
def test_bad_settings_are_one_line_errors(kwargs):
    with pytest.raises(ValueError, match="invalid|allowed"):
        ObGD(nn.Linear(2, 1).parameters(), **kwargs)


def test_traces_are_in_the_state_dict_so_a_checkpoint_resumes_them():
    layer = nn.Linear(3, 1)
    optimizer = ObGD(layer.parameters())
    _value_step(layer, optimizer, [1.0, 2.0, 3.0], delta=0.2)
    restored = ObGD(layer.parameters())
    restored.load_state_dict(optimizer.state_dict())
    assert torch.equal(restored.state[layer.weight]["trace"], optimizer.state[layer.weight]["trace"])
    assert torch.count_nonzero(restored.state[layer.weight]["trace"]) == 3


def test_sparse_init_zeros_the_same_number_in_every_row_and_keeps_the_fan_in_scale():
    from rllib_sparse.networks import LayerNormMLP
    from rllib_sparse.streaming.init import sparse_init_

    net = LayerNormMLP(17, 128, 2)
    sparse_init_(net, 0.9, generator=torch.Generator().manual_seed(0))
    for layer in (m for m in net.modules() if isinstance(m, nn.Linear)):
        zeros_per_row = (layer.weight == 0).sum(dim=1)
        assert torch.all(zeros_per_row == -(-9 * layer.in_features // 10))  # ⌈0.9·fan_in⌉ in every row
        assert layer.weight.abs().max() <= 1 / layer.in_features ** 0.5
        assert torch.all(layer.bias == 0) and layer.weight.requires_grad
    assert not any(isinstance(m, SparseWeightMixin) for m in net.modules())  # nothing is masked


def test_layernorm_mlp_normalises_each_layer_without_parameters():
    from rllib_sparse.networks import LayerNormMLP, build_network

    net = build_network("layernorm_mlp", (5,), 32, 2, 3)
    assert isinstance(net, LayerNormMLP) and net.output_dim == 32
    norms = [m for m in net.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 and all(not list(n.parameters()) for n in norms)
    out = net(torch.randn(4, 5), torch.randn(4, 3))
    assert out.shape == (4, 32)


def _model(width: int, sparsity: float = 0.9, seed: int = 0, **fields):
    from rllib_sparse.networks import SparseModelConfig

    return SparseModelConfig.parse({"model": "layernorm_mlp", "width": width, "depth": 2, "sparsity": sparsity,
                                    "seed": seed, **fields})


def _run_stream_ac(agent, steps: int, seed: int = 0):
    import gymnasium as gym

    env = gym.make("Pendulum-v1", max_episode_steps=50)
    obs, _ = env.reset(seed=seed)
    obs = agent.normalize(obs)
    deltas = []
    for _ in range(steps):
        action = agent.act(obs)
        next_raw, reward, terminated, truncated, _ = env.step(np.clip(action, -2.0, 2.0))
        next_obs = agent.normalize(next_raw)
        deltas.append(agent.learn(obs, action, reward, next_obs, terminated, truncated))
        obs = agent.normalize(env.reset()[0]) if terminated or truncated else next_obs
    return deltas


@pytest.mark.parametrize("init", ["dense", "sparse_init", "static_mask"])
def test_stream_ac_learns_from_one_transition_at_a_time_and_static_masks_hold(init):
    from rllib_sparse.streaming.agent import StreamAC

    agent = StreamAC(3, 1, _model(32), init=init)
    before = [p.detach().clone() for p in agent.critic.parameters()]
    deltas = _run_stream_ac(agent, 120)
    assert all(np.isfinite(deltas))
    assert any(not torch.equal(b, p) for b, p in zip(before, agent.critic.parameters()))
    masked = [m for net in (agent.actor, agent.critic) for m in net.modules() if isinstance(m, SparseWeightMixin)]
    assert bool(masked) == (init == "static_mask")
    for module in masked:
        assert torch.count_nonzero(module.weight[~module.mask]) == 0


def test_stream_ac_resumes_exactly_with_its_traces_normalisers_and_random_state():
    from rllib_sparse.streaming.agent import StreamAC

    straight = StreamAC(3, 1, _model(16, seed=3), init="static_mask")
    _run_stream_ac(straight, 60, seed=1)
    saved = copy.deepcopy(straight.state_dict())
    resumed = StreamAC(3, 1, _model(16, seed=3), init="static_mask")
    resumed.load_state_dict(saved)
    assert _run_stream_ac(straight, 40, seed=2) == _run_stream_ac(resumed, 40, seed=2)
    for a, b in zip(straight.actor.parameters(), resumed.actor.parameters()):
        assert torch.equal(a, b)


def test_normalisers_use_the_sample_statistics_of_what_they_have_seen():
    from rllib_sparse.streaming.normalize import ObservationNormalizer, RewardScaler

    rng = np.random.default_rng(0)
    seen = rng.normal(3.0, 2.0, size=(50, 4))
    norm = ObservationNormalizer((4,))
    for row in seen[:-1]:
        norm(row)
    last = norm(seen[-1])
    expected = (seen[-1] - seen.mean(0)) / np.sqrt(seen.var(0, ddof=1) + 1e-8)
    assert np.allclose(last, expected, atol=1e-5)
    assert np.allclose(norm(seen[0], update=False), (seen[0] - seen.mean(0)) / np.sqrt(seen.var(0, ddof=1) + 1e-8),
                       atol=1e-5)

    scaler, returns, g = RewardScaler(gamma=0.9), [], 0.0
    rewards, dones = [1.0, 2.0, -1.0, 0.5, 3.0], [False, True, False, False, True]
    for r, done in zip(rewards, dones):
        g = 0.9 * g + r
        returns.append(g)
        scaled = scaler(r, done)
        var = np.var(returns, ddof=1) if len(returns) > 1 else 1.0
        assert scaled == pytest.approx(r / np.sqrt(var + 1e-8))
        g = 0.0 if done else g
