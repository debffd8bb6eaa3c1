"""Sparse modules inside real RLlib training (new API stack) on a real local Ray.

Each algorithm trains a few iterations with a remote env runner; then every copy of the module is
checked: learner (with target networks), env runner, and a checkpoint restored in a new process.
"""

import hashlib
import json

import pytest
import torch

from conftest import run_python
from rllib_sparse.rllib import algorithm_config, with_sparse_model
from rllib_sparse.rllib.core.inspection import max_masked_weight, on_env_runners, on_learners
from rllib_sparse.sparsity import SparseWeightMixin, max_masked_magnitude

pytestmark = pytest.mark.ray

SPARSITY = 0.8


def _replay(config):
    return (config.training(num_steps_sampled_before_learning_starts=64, train_batch_size_per_learner=32)
            .reporting(min_sample_timesteps_per_iteration=128))


CASES = {
    "PPO": dict(env="CartPole-v1", model={"width": 32, "depth": 1, "critic": {"width": 64}},
                tweak=lambda c: c.training(train_batch_size_per_learner=256, minibatch_size=64, num_epochs=2)),
    "SAC": dict(env="Pendulum-v1", model={"width": 32, "depth": 1, "critic": {"width": 64, "depth": 2}},
                tweak=_replay),
    "SAC-discrete": dict(env="CartPole-v1", model={"width": 32, "depth": 1}, tweak=_replay),
    "DQN": dict(env="CartPole-v1", model={"model": "mlp", "width": 64, "depth": 2}, tweak=_replay),
    "APPO": dict(env="CartPole-v1", model={"width": 32, "depth": 1},
                 tweak=lambda c: c.learners(num_learners=0).reporting(min_time_s_per_iteration=0)),
    "IMPALA": dict(env="CartPole-v1", model={"width": 32, "depth": 1},
                   tweak=lambda c: c.learners(num_learners=0).reporting(min_time_s_per_iteration=0)),
}
CHECKPOINTED = ("PPO", "SAC", "DQN")


def mask_digest(module) -> str:
    """A hash over every (name, mask) of the inference-visible sparse layers."""
    h = hashlib.sha256()
    for name, sub in sorted(module.named_modules()):
        if isinstance(sub, SparseWeightMixin) and sub.weight.requires_grad and not name.startswith(("qf", "vf", "encoder.critic")):
            h.update(name.encode())
            h.update(sub.mask.cpu().numpy().tobytes())
    return h.hexdigest()


def learner_stats(module) -> dict:
    sparse = {n: m for n, m in module.named_modules() if isinstance(m, SparseWeightMixin)}
    targets = {n: m for n, m in sparse.items() if not m.weight.requires_grad}
    reports = module.sparsity_reports()
    return {
        "max_masked": max_masked_magnitude(module),
        "num_sparse": len(sparse),
        "num_target_sparse": len(targets),
        "target_max_masked": max((max_masked_magnitude(m) for m in targets.values()), default=0.0),
        "sparsity": {net: (r.sparsity, r.prunable_total, len(r.layers)) for net, r in reports.items()},
        "digest": mask_digest(module),
    }


@pytest.fixture(scope="module")
def trained(ray_local, tmp_path_factory):
    from ray.rllib.core import DEFAULT_MODULE_ID

    out = {}
    for name, case in CASES.items():
        algorithm = name.split("-")[0]
        config = algorithm_config(algorithm).environment(case["env"]).env_runners(num_env_runners=1)
        config = case["tweak"](with_sparse_model(config, sparsity=SPARSITY, **case["model"])).debugging(seed=0)
        algo = config.build_algo()
        for _ in range(3):
            algo.train()
        stats = {
            "learner": on_learners(algo, lambda learner: learner_stats(learner.module[DEFAULT_MODULE_ID]))[0],
            "optimizers": on_learners(algo, lambda learner: {n: (type(o).__name__, bool(o.defaults.get("fused")))
                                                             for n, o in learner._named_optimizers.items()})[0],
            "env_runner": on_env_runners(algo, lambda runner: {"max_masked": max_masked_magnitude(runner.module),
                                                               "digest": mask_digest(runner.module)})[0],
            "max_masked_weight": max_masked_weight(algo),
        }
        if name in CHECKPOINTED:
            stats["checkpoint"] = algo.save_to_path(str(tmp_path_factory.mktemp(name)))
        algo.stop()
        out[name] = stats
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_masked_weights_are_zero_on_learner_targets_and_env_runner(trained, name):
    stats = trained[name]
    learner, runner = stats["learner"], stats["env_runner"]
    assert learner["num_sparse"] > 0
    assert learner["max_masked"] == 0.0
    assert runner["max_masked"] == 0.0
    assert runner["digest"] == learner["digest"]  # env runner holds the learner's masks
    assert stats["max_masked_weight"] == 0.0
    if name in ("SAC", "SAC-discrete", "DQN", "APPO"):
        assert learner["num_target_sparse"] > 0
        assert learner["target_max_masked"] == 0.0


@pytest.mark.parametrize("name", list(CASES))
def test_realised_sparsity_equals_requested(trained, name):
    for network, (realised, total, layers) in trained[name]["learner"]["sparsity"].items():
        # exact-count masks: off by at most half a weight per layer from the budget
        assert abs(realised - SPARSITY) * total <= 0.5 * layers + 1e-6, network


@pytest.mark.parametrize("name", list(CASES))
def test_learners_run_adam_on_the_fused_kernel(trained, name):
    optimizers = trained[name]["optimizers"]
    assert optimizers and all(kind in ("Adam", "AdamW") and fused for kind, fused in optimizers.values()), optimizers


def test_with_sparse_model_keeps_the_users_model_config():
    config = algorithm_config("PPO").environment("CartPole-v1").rl_module(model_config={"vf_share_layers": True})
    config = with_sparse_model(config, width=16, sparsity=0.5)
    assert config.model_config["vf_share_layers"] is True
    assert config.model_config["sparse"]["width"] == 16 and config.model_config["sparse"]["sparsity"] == 0.5
    assert config.rl_module_spec.module_class.__name__ == "SparsePPOTorchRLModule"


def test_a_custom_learner_class_is_left_alone():
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

    class MyLearner(PPOTorchLearner):
        pass

    config = algorithm_config("PPO").environment("CartPole-v1").learners(learner_class=MyLearner)
    assert with_sparse_model(config, sparsity=0.5).learner_class is MyLearner


def test_fused_twin_keeps_groups_and_hyper_parameters():
    from rllib_sparse.rllib.core.learner import fused_twin

    a, b = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2))
    adam = torch.optim.AdamW([{"params": [a], "lr": 0.1}, {"params": [b]}], lr=0.01, weight_decay=0.5, eps=1e-7)
    twin = fused_twin(adam)
    assert twin is not adam and type(twin) is torch.optim.AdamW and twin.defaults["fused"]
    assert [g["lr"] for g in twin.param_groups] == [0.1, 0.01]
    assert all(g["eps"] == 1e-7 and g["weight_decay"] == 0.5 for g in twin.param_groups)
    assert twin.param_groups[0]["params"][0] is a
    sgd = torch.optim.SGD([a], lr=0.1)
    assert fused_twin(sgd) is sgd
    chosen = torch.optim.Adam([a], foreach=True)
    assert fused_twin(chosen) is chosen


def test_sac_prunes_every_network_including_twin_q_and_targets(trained):
    learner = trained["SAC"]["learner"]
    assert set(learner["sparsity"]) == {"actor", "critic", "critic_twin"}
    # actor: input, 2 block layers, 2 head kernels (mean, log-std: the authors' two Dense layers);
    # each critic: input, 4 block layers, head; 2 target critics
    assert learner["num_sparse"] == 5 + 2 * 6 + 2 * 6
    assert learner["num_target_sparse"] == 2 * 6


RESTORE = """
import json, sys
import ray
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import DEFAULT_MODULE_ID
from test_rllib_modules import learner_stats
from rllib_sparse.rllib.core.inspection import on_learners
from rllib_sparse.sparsity import max_masked_magnitude
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
out = {}
for name, path in json.loads(sys.argv[1]).items():
    algo = Algorithm.from_checkpoint(path)
    first = on_learners(algo, lambda l: learner_stats(l.module[DEFAULT_MODULE_ID]))[0]
    algo.train()
    after = on_learners(algo, lambda l: learner_stats(l.module[DEFAULT_MODULE_ID]))[0]
    out[name] = {"restored": first, "trained": after, "class": type(algo.get_module()).__name__,
                 "env_runner_max": max_masked_magnitude(algo.get_module())}
    algo.stop()
print("RESULT" + json.dumps(out))
"""


def test_checkpoint_restore_in_a_new_process_keeps_masks(trained):
    paths = {name: trained[name]["checkpoint"] for name in CHECKPOINTED}
    run = run_python(RESTORE.replace("sys.argv[1]", repr(json.dumps(paths))), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.split("RESULT", 1)[1])
    for name in CHECKPOINTED:
        restored = result[name]
        assert restored["class"].startswith("Sparse"), restored["class"]
        assert restored["restored"]["digest"] == trained[name]["learner"]["digest"]
        assert restored["restored"]["max_masked"] == 0.0
        assert restored["trained"]["max_masked"] == 0.0  # and it keeps training sparse
        assert restored["trained"]["target_max_masked"] == 0.0
        assert restored["env_runner_max"] == 0.0


def test_model_that_does_not_fit_the_env_fails_on_the_driver():
    with pytest.raises(ValueError, match=r"model='nature_cnn' needs image observations") as info:
        with_sparse_model(algorithm_config("PPO").environment("CartPole-v1"), "nature_cnn")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="algorithm='BC' is not supported; allowed: PPO, APPO, IMPALA, SAC, DQN"):
        algorithm_config("BC")


def test_module_build_errors_surface_as_value_errors():
    """A bad config that reaches RLlib's own build path raises our ValueError, not RLlib's fallback."""
    import gymnasium as gym
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from rllib_sparse.rllib import SparsePPOTorchRLModule

    spec = RLModuleSpec(module_class=SparsePPOTorchRLModule, observation_space=gym.spaces.Box(-1, 1, (4,)),
                        action_space=gym.spaces.Discrete(2),
                        model_config={"sparse": {"model": "impala_cnn"}, "vf_share_layers": False})
    with pytest.raises(ValueError, match="model='impala_cnn' needs image observations"):
        spec.build()
    spec.model_config = {"sparse": {"sparsity": 2}, "vf_share_layers": False}
    with pytest.raises(ValueError, match=r"model_config\['sparse'\]: sparsity=2 is invalid"):
        spec.build()
    spec.model_config = {"sparse": {"model": "nature_cnn", "sparsity": 0.9}, "vf_share_layers": False}
    spec.observation_space = gym.spaces.Box(0, 255, (84, 84, 4), dtype="uint8")
    module = spec.build()
    assert module.sparsity_reports()["actor"].sparsity == pytest.approx(0.9, abs=1e-3)
    with torch.no_grad():
        out = module.forward_inference({"obs": torch.zeros(2, 84, 84, 4, dtype=torch.uint8)})
    assert out["action_dist_inputs"].shape == (2, 2)
