"""The paper's DMC study: DMC envs, the SAC settings that reach RLlib, DDPG's math, the actor's head
allocation against the Erdős–Rényi rule by hand, and (slow) smoke runs through both commands."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import yaml

from conftest import run_cli
from rllib_sparse.envs import dmc_task, env_family, make_dmc
from rllib_sparse.networks import SparseModelConfig

# The authors' per-layer *sparsities* (paper-notes §1.3, recomputed from their code: biases and LayerNorm
# in the budget). Ours budgets kernels only (docs/design.md), so each layer may differ by a few 0.01.
AUTHORS = {
    "dmc/humanoid-run": {"actor": {"input": 0.641, "residual": 0.846, "head": 0.126},
                         "critic": {"input": 0.0, "residual": 0.810, "head": 0.0}},
    "dmc/dog-run": {"actor": {"input": 0.795, "residual": 0.837, "head": 0.430},
                    "critic": {"input": 0.549, "residual": 0.810, "head": 0.0}},
}


# ----------------------------------------------------------------------------------------------- envs

def test_dmc_ids_are_checked_with_the_valid_tasks_and_a_did_you_mean():
    assert dmc_task("dmc/humanoid-run") == ("humanoid", "run")
    assert dmc_task("dmc/ball_in_cup-catch") == ("ball_in_cup", "catch")
    with pytest.raises(ValueError) as caught:
        dmc_task("dmc/humanoid-rn")
    message = str(caught.value)
    assert "\n" not in message and "did you mean dmc/humanoid-run?" in message
    assert "allowed tasks of humanoid: stand, walk, run" in message
    with pytest.raises(ValueError, match="domain 'humanoidd' is not in the DeepMind Control suite "
                                         r"\(did you mean 'humanoid'\?\)"):
        dmc_task("dmc/humanoidd-run")
    with pytest.raises(ValueError, match="allowed: dmc/<domain>-<task>"):
        dmc_task("dmc/humanoid")
    assert env_family("dmc/cheetah-run").name == "dmc" and env_family("Humanoid-v5") is None


def test_dmc_env_flat_float32_observations_action_repeat_and_seeded_resets():
    env = make_dmc("dmc/cheetah-run")
    assert env.observation_space.shape == (17,) and env.observation_space.dtype == np.float32
    assert env.action_space.shape == (6,) and env.action_space.dtype == np.float32
    first, _ = env.reset(seed=7)
    again, _ = make_dmc("dmc/cheetah-run").reset(seed=7)
    other, _ = make_dmc("dmc/cheetah-run").reset(seed=8)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.dtype == np.float32 and env.observation_space.contains(first)
    steps, total, rng = 0, 0.0, np.random.default_rng(0)
    while True:
        _, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 6).astype(np.float32))
        steps, total = steps + 1, total + reward
        assert reward <= 2.0 + 1e-9  # two simulator steps of at most 1 each
        if terminated or truncated:
            break
    assert (steps, terminated, truncated) == (500, False, True)  # 1000 simulator steps, a time limit
    single = make_dmc("dmc/cheetah-run", action_repeat=1)
    single.reset(seed=0)
    assert sum(1 for _ in iter(lambda: any(single.step(np.zeros(6, np.float32))[2:4]), True)) == 999


# ------------------------------------------------------------------------------------ the actor's head

def _hand_er_densities(shapes: dict[str, tuple[int, int]], sparsity: float) -> dict[str, float]:
    """The Erdős–Rényi rule by hand: d = ε(n_in + n_out)/(n_in n_out), ε meeting the budget; a layer
    whose d would pass 1 is made dense and ε solved again over the rest."""
    dense: set[str] = set()
    total = sum(a * b for a, b in shapes.values())
    while True:
        free = [n for n in shapes if n not in dense]
        budget = (1 - sparsity) * total - sum(shapes[n][0] * shapes[n][1] for n in dense)
        eps = budget / sum(a + b for n in free for a, b in [shapes[n]])
        over = [n for n in free if eps * sum(shapes[n]) / math.prod(shapes[n]) > 1]
        if not over:
            return {n: 1.0 if n in dense else eps * sum(s) / math.prod(s) for n, s in shapes.items()}
        dense.add(max(over, key=lambda n: sum(shapes[n]) / math.prod(shapes[n])))


@pytest.mark.parametrize("env_id", sorted(AUTHORS))
def test_paper_actor_and_critic_densities_match_the_er_rule_and_the_authors(env_id):
    from rllib_sparse.rllib import with_sparse_model
    from rllib_sparse.rllib.core.sparse_model import planned_module
    from rllib_sparse.rllib.sac import SparseSACConfig

    config = with_sparse_model(SparseSACConfig().environment(env_id).training(twin_q=False), "simba",
                               sparsity=0.8, actor={"width": 128, "depth": 1}, critic={"width": 512, "depth": 2})
    module = planned_module(config)
    layers = module.planned_layers()
    obs, act = make_dmc(env_id).observation_space.shape[0], make_dmc(env_id).action_space.shape[0]
    # Two head kernels (mean, log-std), each width x |A|, as the authors' two Dense layers.
    heads = [row for row in layers["actor"] if row["layer"].startswith("pi.")]
    assert [(row["layer"], row["shape"]) for row in heads] == [("pi.mean", [act, 128]), ("pi.log_std", [act, 128])]
    for network in ("actor", "critic"):
        shapes = {row["layer"]: tuple(row["shape"]) for row in layers[network]}
        hand = _hand_er_densities(shapes, 0.8)
        for row in layers[network]:
            assert row["density"] == pytest.approx(hand[row["layer"]], abs=1e-9), row
        by_kind = {"input": [], "residual": [], "head": []}
        for row in layers[network]:
            kind = "input" if row["layer"].endswith(".input") else "residual" if ".blocks." in row["layer"] else "head"
            by_kind[kind].append(1 - row["density"])
        for kind, expected in AUTHORS[env_id][network].items():
            assert max(by_kind[kind]) == pytest.approx(expected, abs=0.04), (network, kind, by_kind[kind])
    assert layers["critic"][0]["shape"] == [512, obs + act]


def test_actor_head_as_one_fused_kernel_would_be_pruned_much_harder():
    """The reason for the two-kernel head, in numbers (humanoid, width 128, S 0.8)."""
    two = _hand_er_densities({"in": (128, 67), "up": (512, 128), "down": (128, 512), "mean": (21, 128),
                              "log_std": (21, 128)}, 0.8)
    one = _hand_er_densities({"in": (128, 67), "up": (512, 128), "down": (128, 512), "head": (42, 128)}, 0.8)
    assert two["mean"] > 0.85 and one["head"] < 0.6


# ------------------------------------------------------------------------------------------ SAC's policy

def test_paper_log_std_map_and_tanh_deterministic_action():
    from rllib_sparse.rllib.sac import LOG_STD_MAX, LOG_STD_MIN, PaperSquashedGaussian, log_std_from_raw

    raw = torch.tensor([-50.0, 0.0, 50.0])
    assert log_std_from_raw(raw).tolist() == pytest.approx([LOG_STD_MIN, -4.0, LOG_STD_MAX])
    logits = torch.tensor([[3.0, -0.5, -50.0, -50.0]])  # mean (3, -0.5), log σ at its floor -10
    dist = PaperSquashedGaussian.from_logits(logits)
    assert dist.to_deterministic().sample().tolist()[0] == pytest.approx([math.tanh(3.0), math.tanh(-0.5)])
    assert torch.allclose(dist.sample(), torch.tanh(logits[:, :2]), atol=1e-3)  # σ = e^-10: nearly the mean


# --------------------------------------------------------------------------------------------- DDPG math

def test_ddpg_noise_targets_and_losses():
    from rllib_sparse.rllib.ddpg import losses

    torch.manual_seed(0)
    action = torch.zeros(20_000, 3)
    noisy = losses.noisy_action(action, 0.1)
    assert noisy.std().item() == pytest.approx(0.1, rel=0.03) and noisy.mean().abs().item() < 0.01
    assert torch.equal(losses.noisy_action(action, 0.0), action)
    edge = losses.noisy_action(torch.full((20_000, 1), 0.99), 0.1)
    assert edge.max().item() == 1.0  # clipped to the action bounds...
    big = losses.noisy_action(torch.zeros(20_000, 1), 0.5)
    assert (big.abs() > 0.5).float().mean() > 0.25  # ...but the noise itself is not clipped (TD3 would at 0.5)
    reward, terminated = torch.tensor([1.0, 1.0]), torch.tensor([False, True])
    target = losses.td_target(reward, terminated, 0.99, torch.tensor([10.0, 10.0]))
    assert target.tolist() == pytest.approx([1.0 + 9.9, 1.0]) and not target.requires_grad
    q = torch.tensor([2.0, 4.0], requires_grad=True)
    assert losses.critic_loss(q, torch.tensor([1.0, 1.0])).item() == pytest.approx((1 + 9) / 2)
    assert losses.critic_loss(q, torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5)
    assert losses.actor_loss(q).item() == pytest.approx(-3.0)


# ----------------------------------------------------------------------------------- configs and files

def test_width_scale_scales_the_actor_with_the_shared_width():
    config = SparseModelConfig.parse({"width": 1024, "actor": {"width_scale": 0.25, "depth": 1},
                                      "critic": {"depth": 2}})
    assert (config.network("actor").width, config.network("actor").depth) == (256, 1)
    assert (config.network("critic").width, config.network("critic").depth) == (1024, 2)
    with pytest.raises(ValueError, match="width=3 and width_scale=0.5 are both set; allowed: one of them"):
        SparseModelConfig.parse({"actor": {"width": 3, "width_scale": 0.5}})


@pytest.mark.parametrize("name", [pytest.param("dmc_hard_scaling.yaml", marks=pytest.mark.slow),  # 240 trials planned
                                  pytest.param("dmc_hard_scaling_ddpg.yaml", marks=pytest.mark.slow),
                                  "dmc_small_scaling.yaml"])
def test_study_files_plan_with_the_paper_settings(name):
    from rllib_sparse.sweep.plan import plan
    from rllib_sparse.sweep.rllib_runner import trial_config
    from rllib_sparse.sweep.spec import load_sweep

    spec = load_sweep(f"tune_configs/{name}")
    trials = plan(spec, source=name)
    config = trial_config(spec, trials[-1].point)
    assert (config.actor_lr, config.critic_lr, config.weight_decay, config.tau, config.gamma) == \
        (1e-4, 1e-4, 0.01, 0.005, 0.99)
    assert (config.train_batch_size_per_learner, config.training_intensity, config.twin_q) == (256, 512, False)
    assert config.num_steps_sampled_before_learning_starts == config.random_warmup_steps == 5000
    assert (config.evaluation_interval, config.evaluation_duration, config.evaluation_config) == \
        (5, 10, {"explore": False})
    assert config.env_config == {"action_repeat": 2}
    if spec.algorithm == "SAC":
        assert (config.initial_alpha, config.target_entropy_scale) == (0.01, -0.5)
    else:
        assert (config.exploration_noise_std, config.target_noise_std, config.actor_noise_std) == (0.1, 0.1, 0.1)
    if "hard" in name:
        assert len(trials) == 4 * 3 * 4 * 5
        widths = {(t.point.model.network("actor").width, t.point.model.network("critic").width) for t in trials}
        assert widths == {(128, 512), (256, 1024), (512, 2048)}


def test_ddpg_refuses_discrete_actions_and_twin_critics(tmp_path):
    from rllib_sparse.rllib import with_sparse_model
    from rllib_sparse.rllib.ddpg import DDPGConfig

    with pytest.raises(ValueError, match="DDPG on env='CartPole-v1': the action space Discrete.* DDPG needs Box"):
        with_sparse_model(DDPGConfig().environment("CartPole-v1"), "simba")
    sweep = {"name": "x", "algorithm": "DDPG", "env": "dmc/cheetah-run", "stop": {"iterations": 1},
             "training": {"twin_q": True}}
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(sweep))
    run = run_cli("sweep", str(tmp_path / "x.yaml"), "--num-cpus", "1", cwd=tmp_path)
    assert run.returncode == 2 and not (tmp_path / "runs").exists(), run.stderr
    assert run.stderr.strip().splitlines()[-1].endswith("twin_q=True is not DDPG (one critic); allowed: false")


def test_unknown_dmc_task_in_a_sweep_file_is_one_line_before_anything_starts(tmp_path):
    sweep = {"name": "x", "algorithm": "SAC", "env": "dmc/cheetah-rnu", "stop": {"iterations": 1}}
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(sweep))
    run = run_cli("sweep", str(tmp_path / "x.yaml"), cwd=tmp_path)
    assert run.returncode == 2 and not (tmp_path / "runs").exists() and not (tmp_path / "mlruns").exists()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean dmc/cheetah-run?" in lines[0] and "allowed tasks of cheetah: run" in lines[0]


# ------------------------------------------------------------------------------------- real smoke runs

SMOKE = {
    "name": "dmc-smoke", "algorithm": "SAC", "env": "dmc/cheetah-run",
    "model": {"name": "simba", "sparsity": 0.8, "actor": {"width": 16, "depth": 1}, "critic": {"width": 32, "depth": 1}},
    "training": {"weight_decay": 0.01, "initial_alpha": 0.01, "target_entropy_scale": -0.5, "twin_q": False,
                 "random_warmup_steps": 64},
    "reporting": {"min_sample_timesteps_per_iteration": 128},
    "evaluation": {"every_iterations": 1, "episodes": 1},
    "stop": {"iterations": 2},
}


@pytest.mark.ray
@pytest.mark.parametrize("algorithm,env", [("SAC", "Hopper-v5"), ("DDPG", "Hopper-v5")])
def test_sparse_sac_and_ddpg_smoke_on_dmc_and_gymnasium_mujoco(tmp_path, algorithm, env):
    """``sweep --smoke`` end to end on Gymnasium's MuJoCo: masks hold in every copy, evaluation returns
    reach MLflow. DeepMind Control's SAC and DDPG run the same checks in the shipped files' smoke runs
    (tests/test_sweep_run.py::test_every_shipped_sweep_file_runs_with_smoke)."""
    from mlflow.tracking import MlflowClient

    sweep = {**SMOKE, "name": f"smoke-{algorithm.lower()}", "algorithm": algorithm, "env": env,
             "training": {k: v for k, v in SMOKE["training"].items()
                          if algorithm == "SAC" or k in ("weight_decay", "random_warmup_steps")}}
    if not env.startswith("dmc/"):
        sweep["evaluation"] = {"every_iterations": 1, "episodes": 1}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep))
    run = run_cli("sweep", "s.yaml", "--smoke", "--num-cpus", "2", cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "eval return" in run.stdout and "Wrote the latest version" not in run.stdout
    assert re.search(r"runs: http://127\.0\.0\.1:5000/#/experiments/\d+/runs\?workflowType=machine_learning$",
                     run.stdout, re.M)  # MLflow's run table, not its GenAI overview (test_report.py opens it)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name(f"{sweep['name']}-smoke")
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    children = [r for r in client.search_runs([experiment.experiment_id]) if "rllib_sparse.trial" in r.data.tags]
    assert len(children) == 1
    metrics = children[0].data.metrics
    assert math.isfinite(metrics["evaluation_return_mean"])
    assert metrics["mask/max_masked_weight"] == 0.0  # learner, target copies and env runners


@pytest.mark.ray
def test_train_smoke_of_ddpg_on_dmc_reports_evaluation_and_exact_zero_masks(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**SMOKE, "algorithm": "DDPG", "training": {"weight_decay": 0.01}}))
    run = run_cli("train", "s.yaml", "--smoke", "--num-cpus", "2", cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "eval return" in run.stdout
    assert "max |masked weight| over learner and env runners = 0.0" in run.stdout


@pytest.mark.ray
@pytest.mark.parametrize("algorithm", ["SAC", "DDPG"])
def test_random_warmup_ending_mid_episode_keeps_the_episode_whole(ray_local, algorithm):
    """Pendulum's episodes are 200 steps; a 50-step warm-up ends inside the first one. The episode's
    random and policy chunks must concatenate in the replay buffer (same columns on both sides)."""
    from rllib_sparse import DDPGConfig, SparseSACConfig, learner_diagnostics, with_diagnostics, with_sparse_model

    config_class = SparseSACConfig if algorithm == "SAC" else DDPGConfig
    config = (config_class().environment("Pendulum-v1")
              .training(random_warmup_steps=50, num_steps_sampled_before_learning_starts=64,
                        train_batch_size_per_learner=32, training_intensity=32, twin_q=False)
              .env_runners(num_env_runners=0).reporting(min_sample_timesteps_per_iteration=40,
                                                        min_time_s_per_iteration=0))
    algo = with_diagnostics(with_sparse_model(config, "mlp", width=16, sparsity=0.5), rows=32).build_algo()
    try:
        algo.train()
        before_learning = learner_diagnostics(algo, interference_samples=0)  # 40 steps: no update yet
        for _ in range(3):  # 160 steps: the warm-up's end (50) and the learning start (64) in one episode
            result = algo.train()
        after = learner_diagnostics(algo, interference_samples=0)
    finally:
        algo.stop()
    assert before_learning == {"metrics": {}, "cosines": {}}  # a sweep's diagnostics skip the warm-up
    assert after["metrics"]["diag/critic/grad_norm"] > 0 and after["metrics"]["diag/critic/grad_norm_updates"] >= 1
    assert result["num_env_steps_sampled_lifetime"] >= 160
    assert any("loss" in key for key in result["learners"]["default_policy"])  # it learned after the warm-up


@pytest.mark.ray
def test_evaluation_return_is_reported_only_in_the_iterations_that_evaluated(tmp_path):
    """RLlib repeats an evaluation's result in the next iteration's; a curve must not get that
    earlier measurement again at a later step."""
    sweep = {"name": "eval-every-2", "algorithm": "PPO", "env": "CartPole-v1", "model": {"name": "mlp", "width": 16},
             "training": {"train_batch_size_per_learner": 128, "minibatch_size": 64, "num_epochs": 1},
             "evaluation": {"every_iterations": 2, "episodes": 1}, "stop": {"iterations": 4}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep))
    run = run_cli("train", "s.yaml", "--num-cpus", "2", cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = re.findall(r"^iter +(\d+) .*$", run.stdout, flags=re.M)
    evaluated = [int(i) for i, line in zip(lines, re.findall(r"^iter .*$", run.stdout, flags=re.M))
                 if "eval return" in line]
    assert [int(i) for i in lines] == [1, 2, 3, 4] and evaluated == [2, 4], run.stdout
