"""The learner's update path: sparse layers compile to one graph, in-place Polyak target updates,
diagnostics on the tensors' own device (issue 14)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from rllib_sparse.networks import MLP, NatureCNN, SimBa, polyak_update_
from rllib_sparse.sparsity import max_masked_magnitude, sparsify

NETWORKS = {
    "simba": lambda: (SimBa(10, 32, 2, extra_dim=3), (torch.randn(16, 10), torch.randn(16, 3))),
    "mlp": lambda: (MLP(10, 32, 2), (torch.randn(16, 10),)),
    "nature_cnn": lambda: (NatureCNN((36, 36, 4), 1), (torch.rand(4, 36, 36, 4),)),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_sparse_forward_compiles_to_one_graph_and_compiled_updates_keep_masks_exact(name):
    """``fullgraph=True`` fails on any graph break; the backend counts compilations (a module that
    changed between steps -- e.g. a buffer made lazily in a forward -- compiles again)."""
    torch.manual_seed(0)
    net, inputs = NETWORKS[name]()
    sparsify(net, 0.9, seed=0)
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    torch._dynamo.reset()
    compiled = torch.compile(net, backend=counting_backend, fullgraph=True)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(6):
        optimizer.zero_grad()
        compiled(*inputs).pow(2).mean().backward()
        masks = [m for m in net.modules() if hasattr(m, "grad_mask")]
        assert all(m.weight.grad[~m.mask].abs().max() == 0.0 for m in masks)  # before the optimizer step
        optimizer.step()
    assert len(graphs) == 1
    assert max_masked_magnitude(net) == 0.0
    assert any(m.weight[m.mask].abs().sum() > 0 for m in masks)


def _sparse_simba_pair():
    torch.manual_seed(0)
    main = SimBa(6, 16, 2, extra_dim=2)
    sparsify(main, 0.8, seed=0)
    target = copy.deepcopy(main)
    with torch.no_grad():  # the main network moves on (kept weights only), its statistics too
        for module in main.modules():
            if hasattr(module, "mask"):
                module.weight.add_(torch.randn_like(module.weight) * module.mask)
        main.obs_norm.update(torch.randn(64, 6) * 3 + 1)
    return main, target


def test_in_place_polyak_update_equals_the_state_dict_average_and_keeps_pruned_weights_zero():
    main, target = _sparse_simba_pair()
    expected = {k: 0.005 * main.state_dict()[k] + 0.995 * v if v.is_floating_point() else v
                for k, v in target.state_dict().items()}
    polyak_update_(main, target, 0.005)
    for key, value in target.state_dict().items():
        assert torch.allclose(value, expected[key], rtol=1e-6, atol=1e-7), key
    assert max_masked_magnitude(target) == 0.0
    assert all(torch.equal(a, b) for a, b in zip(main.buffers(), target.buffers()) if a.dtype == torch.bool)
    polyak_update_(main, target, 1.0)  # tau 1: an exact copy (DQN's hard update)
    assert all(torch.equal(a, b) for a, b in zip(main.state_dict().values(), target.state_dict().values()))
    with pytest.raises(ValueError, match=r"tau=1\.5 is invalid; allowed: a number in \[0, 1\]"):
        polyak_update_(main, target, 1.5)
    with pytest.raises(ValueError, match="main and target networks differ in structure"):
        polyak_update_(main, SimBa(6, 16, 1, extra_dim=2), 0.1)


def test_in_place_polyak_update_equals_rllibs_update_target_network():
    pytest.importorskip("ray.rllib")
    from ray.rllib.utils.torch_utils import update_target_network

    main, target = _sparse_simba_pair()
    rllib_target = copy.deepcopy(target)
    for _ in range(3):
        update_target_network(main_net=main, target_net=rllib_target, tau=0.005)
        polyak_update_(main, target, 0.005)
    for (key, ours), theirs in zip(target.state_dict().items(), rllib_target.state_dict().values()):
        assert torch.allclose(ours.double(), theirs.double(), rtol=1e-6, atol=1e-7), key
    assert max_masked_magnitude(target) == max_masked_magnitude(rllib_target) == 0.0


FACTORIES = {"tensor", "as_tensor", "zeros", "ones", "full", "empty", "arange", "eye", "rand", "randn"}


class NoDevicelessFactories(TorchFunctionMode):
    """Fails on any tensor made from Python data without ``device=``: on a GPU learner that tensor
    would be on the CPU and the next op mixing it with the features fails (srank did, issue 14)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in FACTORIES and getattr(func, "__module__", "") in ("torch", "torch._C._VariableFunctions") \
                and "device" not in kwargs:
            raise AssertionError(f"torch.{name} without device= inside a diagnostic")
        return func(*args, **kwargs)


def test_diagnostics_make_no_tensor_off_the_features_device():
    """The CPU test that would have caught srank's CUDA failure (``torch.tensor(1 - delta)`` made on
    the CPU, then ``searchsorted`` against CUDA values)."""
    from rllib_sparse.diagnostics import network_diagnostics, srank

    torch.manual_seed(0)
    encoder, head = SimBa(10, 32, 2, extra_dim=3), nn.Linear(32, 1)
    sparsify(encoder, 0.9, seed=0)
    obs, act = torch.randn(128, 10), torch.randn(128, 3)
    with NoDevicelessFactories():
        assert 1 <= srank(encoder(obs, act)) <= 32
        for dormant in ("pre_activation", "post_activation"):
            metrics, cosines = network_diagnostics(encoder, head, obs, act, dormant=dormant, interference_samples=4)
            assert cosines.shape == (4, 4) and metrics["srank"] >= 1
    with pytest.raises(AssertionError, match="torch.tensor without device="):  # the check itself works
        with NoDevicelessFactories():
            torch.searchsorted(torch.arange(3.0, device="cpu"), torch.tensor(1.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_every_diagnostic_runs_on_cuda():
    from rllib_sparse.diagnostics import network_diagnostics

    torch.manual_seed(0)
    encoder, head = SimBa(10, 32, 2, extra_dim=3).cuda(), nn.Linear(32, 1).cuda()
    sparsify(encoder, 0.9, seed=0)
    obs, act = torch.randn(128, 10, device="cuda"), torch.randn(128, 3, device="cuda")
    metrics, cosines = network_diagnostics(encoder, head, obs, act, interference_samples=8)
    assert 1 <= metrics["srank"] <= 32 and 0 <= metrics["dormant_pct_tau0.1"] <= 100
    assert cosines.shape == (8, 8) and metrics["param_norm"] > 0


@pytest.mark.ray
@pytest.mark.parametrize("algorithm", ["SAC", "DDPG", "DQN"])
def test_learners_update_targets_in_place_with_rllibs_schedule(ray_local, algorithm):
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME, NUM_TARGET_UPDATES

    from rllib_sparse import DDPGConfig, SparseSACConfig, with_sparse_model
    from rllib_sparse.rllib.core.learner import InPlaceTargetUpdateMixin

    config = {"SAC": lambda: SparseSACConfig().environment("Pendulum-v1").training(tau=0.01),
              "DDPG": lambda: DDPGConfig().environment("Pendulum-v1").training(tau=0.01, twin_q=False),
              "DQN": lambda: DQNConfig().environment("CartPole-v1").training(tau=0.01, target_network_update_freq=8),
              }[algorithm]().env_runners(num_env_runners=0)
    algo = with_sparse_model(config, "simba", width=16, sparsity=0.8).build_algo()
    try:
        learner = algo.learner_group._learner
        assert isinstance(learner, InPlaceTargetUpdateMixin)
        pairs = learner.module[DEFAULT_MODULE_ID].unwrapped().get_target_network_pairs()
        with torch.no_grad():  # move the main networks (kept weights only)
            for main, _ in pairs:
                for module in main.modules():
                    if hasattr(module, "mask"):
                        module.weight.add_(torch.randn_like(module.weight) * module.mask)
        before = [copy.deepcopy(target.state_dict()) for _, target in pairs]
        learner.after_gradient_based_update(timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: 100})
        for (main, target), old in zip(pairs, before):
            for key, value in target.state_dict().items():
                if value.is_floating_point():
                    expected = 0.01 * main.state_dict()[key] + 0.99 * old[key]
                    assert torch.allclose(value, expected, rtol=1e-5, atol=1e-7), key
            assert max_masked_magnitude(target) == 0.0
        assert learner.metrics.peek((DEFAULT_MODULE_ID, NUM_TARGET_UPDATES)) == 1
        learner.after_gradient_based_update(timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: 101})
        expected_updates = 1 if algorithm == "DQN" else 2  # DQN: only every target_network_update_freq steps
        assert learner.metrics.peek((DEFAULT_MODULE_ID, NUM_TARGET_UPDATES)) == expected_updates
    finally:
        algo.stop()


@pytest.mark.ray
@pytest.mark.parametrize("compile_what", ["forward_train", pytest.param("update", marks=pytest.mark.slow)])
def test_the_sweep_files_learner_switch_reaches_rllibs_learner_and_masks_stay_exact(ray_local, tmp_path,
                                                                                     compile_what):
    import yaml
    from ray.rllib.core import DEFAULT_MODULE_ID

    from rllib_sparse.rllib.core.inspection import max_masked_weight
    from rllib_sparse.sweep.rllib_runner import trial_config
    from rllib_sparse.sweep.spec import load_sweep

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "name": "fast", "algorithm": "SAC", "env": "Pendulum-v1", "model": {"name": "simba", "width": 32},
        "grid": {"sparsity": [0.9]}, "stop": {"iterations": 2}, "smoke": True,
        "learner": {"compile": compile_what, "backend": "aot_eager"}}))
    spec = load_sweep(path)
    (point,) = spec.points()
    algo = trial_config(spec, point).env_runners(num_env_runners=0).build_algo()
    try:
        learner = algo.learner_group._learner
        module = learner.module[DEFAULT_MODULE_ID].unwrapped()
        if compile_what == "forward_train":  # RLlib swapped in the compiled forward
            assert hasattr(module._forward_train, "_torchdynamo_orig_callable")
        else:  # RLlib compiles its whole update step instead
            assert learner._torch_compile_complete_update and not hasattr(module._forward_train,
                                                                          "_torchdynamo_orig_callable")
        before = {k: v.clone() for k, v in module.state_dict().items() if v.is_floating_point()}
        for _ in range(2):
            algo.train()
        moved = [k for k, v in module.state_dict().items() if k in before and not torch.equal(v, before[k])]
        assert any("weight" in k for k in moved)  # it trained
        assert max_masked_weight(algo) == 0.0
    finally:
        algo.stop()
