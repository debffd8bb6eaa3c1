"""Streaming RL in sweeps: ``algorithm: StreamAC`` on real MuJoCo tasks, planned, trained, checkpointed,
resumed and tracked like every algorithm (the trial-runner seam), and refused one line at a time."""

from __future__ import annotations

import re

import pytest
import torch

from conftest import REPO
from rllib_sparse.sweep.spec import load_sweep
from test_sweep_run import children, progress_records, rllib_sparse

SMALL = REPO / "tune_configs" / "streaming_small.yaml"


def _runner(*overrides: str, init: str = "static_mask", width: int = 32):
    from rllib_sparse.sweep.stream_runner import StreamTrialRunner

    spec = load_sweep(SMALL, [f"grid.width=[{width}]", f"grid.training.init=[{init}]",
                              "reporting.min_sample_timesteps_per_iteration=300", *overrides])
    runner = StreamTrialRunner(spec, spec.points()[0])
    runner.build()
    return runner


def _trainer_state(runner) -> dict:
    agent = runner.trainer.agent
    return {"traces": [s["trace"].clone() for opt in (agent.policy_optimizer, agent.value_optimizer)
                       for s in opt.state.values()],
            "obs_mean": agent.obs_norm.state_dict(), "reward": agent.reward_scale.state_dict(),
            "weights": [p.detach().clone() for p in (*agent.actor.parameters(), *agent.critic.parameters())]}


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return bool(a == b) if not hasattr(a, "shape") else bool((a == b).all())


@pytest.mark.parametrize("env", ["Walker2d-v5", "Ant-v5"])
def test_a_checkpoint_mid_episode_resumes_with_the_same_traces_statistics_and_episode(tmp_path, env):
    straight = _runner(f"env={env}")
    straight.train()  # 300 steps: mid-episode (Walker's and Ant's episodes last up to 1000)
    assert 0 < straight.trainer._episode_length < 1000
    straight.save(str(tmp_path))
    saved = _trainer_state(straight)
    assert any(torch.count_nonzero(t) for t in saved["traces"])  # live traces, not a fresh episode's
    resumed = _runner(f"env={env}")
    resumed.restore(str(tmp_path))
    assert _equal(_trainer_state(resumed), saved)
    assert resumed.trainer._episode_length == straight.trainer._episode_length
    a, b = straight.train(), resumed.train()
    for key in ("iteration", "env_steps", "learner/td_error_abs_mean", "episode_return_mean"):
        assert a.get(key) == b.get(key), key
    assert _equal(_trainer_state(resumed), _trainer_state(straight))  # bit for bit, after 300 more steps
    assert b["learner/episodes_restarted_by_restore"] == 0.0
    assert straight.max_masked_weight() == resumed.max_masked_weight() == 0.0


def test_an_env_whose_state_cannot_be_saved_restarts_its_episode_with_cleared_traces(tmp_path):
    runner = _runner("env=Pendulum-v1")
    runner.train()
    runner.save(str(tmp_path))
    resumed = _runner("env=Pendulum-v1")
    resumed.restore(str(tmp_path))
    traces = _trainer_state(resumed)["traces"]
    assert all(torch.count_nonzero(t) == 0 for t in traces)
    assert resumed.train()["learner/episodes_restarted_by_restore"] == 1.0


def test_the_three_initialisations_plan_their_sizes_and_dense_is_logged_unpruned():
    from rllib_sparse.sweep.plan import plan
    from rllib_sparse.sweep.stream_runner import StreamTrialRunner

    spec = load_sweep(SMALL, ["grid.width=[128]"])
    planned = {t.point.training["init"]: t for t in plan(spec)}
    assert planned["dense"].dense_params == planned["static_mask"].dense_params
    assert planned["dense"].nonzero_params == planned["sparse_init"].nonzero_params == planned["dense"].dense_params
    kept = planned["static_mask"].nonzero_params / planned["static_mask"].dense_params
    assert 0.1 < kept < 0.13  # 10% of the weights, biases and LayerNorm-free heads on top
    params = {init: StreamTrialRunner.params(spec, t.point) for init, t in planned.items()}
    assert params["dense"]["sparsity"] == 0.0 and params["static_mask"]["sparsity"] == 0.9
    assert params["sparse_init"]["init"] == "sparse_init"


@pytest.mark.parametrize("overrides,message", [
    (["training.lamda=2"], "training.lamda=2 is invalid; allowed: a number in [0, 1]"),
    (["training.kapa_value=2"], "training.kapa_value is not a STREAMAC training setting; did you mean 'kappa_value'?"),
    (["grid.training.init=[dense, sparse]"], "training.init='sparse' is invalid; allowed: dense, sparse_init, static_mask"),
    (["env=CartPole-v1"], "the action space Discrete(2) is not supported; allowed: a 1-D Box"),
    (["env=Walker2d-v9"], "env='Walker2d-v9' is not a known env (did you mean 'Walker2d-v5'?)"),
    (["evaluation={every_iterations: 1}"], "evaluation is set, which STREAMAC does not take"),
    (["resources.num_env_runners=2"], "resources.num_env_runners=2, which STREAMAC does not take; allowed: 0"),
    (["reporting.min_time_s_per_iteration=1"], "reporting.min_time_s_per_iteration is not a STREAMAC reporting"),
    (["model.name=nature_cnn"], "model='nature_cnn' needs image observations"),
])
def test_bad_streaming_settings_are_refused_in_one_line_by_planning(overrides, message):
    from rllib_sparse.sweep.plan import plan

    with pytest.raises(ValueError) as error:
        plan(load_sweep(SMALL, overrides))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_validate_refuses_a_streaming_setting_in_one_line_with_exit_code_2(tmp_path):
    run = rllib_sparse(["validate", str(SMALL), "--set", "training.lamda=2"], cwd=tmp_path, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "training.lamda=2 is invalid; allowed: a number in [0, 1]" in lines[0], run.stderr


def test_rllib_only_entry_points_name_the_algorithms_they_take():
    from rllib_sparse.rllib import algorithm_config

    with pytest.raises(ValueError, match=r"algorithm='StreamAC' is not an RLlib algorithm .*allowed here: PPO"):
        algorithm_config("StreamAC")
    run = rllib_sparse(["inspect", "--algorithm", "StreamAC", "--env", "Pendulum-v1"], cwd=REPO, timeout=120)
    assert run.returncode == 2 and "is not an RLlib algorithm" in run.stderr, run.stdout + run.stderr


@pytest.mark.ray
def test_train_smoke_runs_a_mujoco_trial_and_writes_a_checkpoint(tmp_path):
    run = rllib_sparse(["train", str(SMALL), "--smoke", "--num-cpus", "1", "--checkpoint", str(tmp_path / "ckpt")],
                       cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert re.search(r"iter +2 +env_steps +400 ", run.stdout), run.stdout
    assert "critic: srank" in run.stdout  # the diagnostics section of the file
    assert "max |masked weight| over learner and env runners = 0.0" in run.stdout
    state = torch.load(tmp_path / "ckpt" / "stream_trainer.pt", weights_only=False)
    assert state["iteration"] == 2 and state["trainer"]["env_steps"] == 400
    assert state["trainer"]["env"]["kind"] == "mujoco"


@pytest.mark.ray
def test_sweep_smoke_tracks_in_mlflow_and_a_crashed_trial_resumes_from_its_checkpoint(tmp_path):
    marker = tmp_path / "crashed-once"
    run = rllib_sparse(["sweep", str(SMALL), "--smoke", "--num-cpus", "2", "--set", "grid.width=[128]"],
                       cwd=tmp_path, env={"RLLIB_SPARSE_INJECT_FAULT": f"static_mask@2@{marker}"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert marker.exists() and "retrying from its last checkpoint" in run.stdout
    assert re.search(r"width \\ sparsity init +0 dense +0.9 static_mask", run.stdout), run.stdout
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client, parents, kids = children(uri, "streaming-small-smoke")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(k.data.params["training.init"] for k in kids) == ["dense", "static_mask"]
    for kid in kids:
        assert kid.info.status == "FINISHED" and kid.data.params["algorithm"] == "STREAMAC"
        iterations = client.get_metric_history(kid.info.run_id, "iteration")
        assert [m.value for m in iterations] == [1.0, 2.0]  # the crashed one: restored at 1, no gap, no repeat
        assert [m.value for m in client.get_metric_history(kid.info.run_id, "env_steps")] == [200.0, 400.0]
        assert {m.value for m in client.get_metric_history(kid.info.run_id, "mask/max_masked_weight")} == {0.0}
        assert "diag/critic/srank" in kid.data.metrics and "diag/actor/dormant_pct_tau0.1" in kid.data.metrics
        artifacts = [a.path for a in client.list_artifacts(kid.info.run_id)]
        assert "sparsity.json" in artifacts
    sparse = next(k for k in kids if k.data.params["training.init"] == "static_mask")
    dense = next(k for k in kids if k.data.params["training.init"] == "dense")
    assert sparse.data.params["sparsity"] == "0.9" and dense.data.params["sparsity"] == "0.0"
    assert int(sparse.data.params["nonzero_params"]) < int(sparse.data.params["dense_params"])
    records = progress_records(tmp_path)
    crashed = next(r for name, r in records.items() if "static_mask" in name)
    assert [a["from_iteration"] for a in crashed["attempts"]] == [0, 1] and crashed["done"]

    from rllib_sparse.report.study import load_study

    study = load_study("streaming-small-smoke", uri)
    assert sorted(t.series.label for t in study.trials) == ["dense, init=dense", "sparsity 0.9, init=static_mask"]
    report = rllib_sparse(["report", "streaming-small-smoke", "--tracking-uri", uri, "--out", str(tmp_path / "r")],
                          cwd=tmp_path, timeout=300)
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    assert (tmp_path / "r" / "heatmap.png").exists() and (tmp_path / "r" / "diagnostics-walker2d-v5-critic.png").exists()
