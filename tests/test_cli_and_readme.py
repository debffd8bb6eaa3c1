"""The command line and the README, run as a user would."""

import json
import re

import pytest

from conftest import REPO, run_cli, run_python


def test_models_lists_the_built_in_models():
    run = run_cli("models", "--json")
    assert run.returncode == 0, run.stderr
    models = json.loads(run.stdout)
    assert {"simba", "mlp", "nature_cnn", "impala_cnn"} <= set(models)
    assert models["nature_cnn"]["input"] == "image"
    table = run_cli("models")
    assert table.returncode == 0 and "simba" in table.stdout and "residual blocks" in table.stdout


def test_inspect_reports_per_network_layers_and_counts():
    run = run_cli("inspect", "--algorithm", "SAC", "--env", "Pendulum-v1", "--width", "32", "--depth", "1",
                  "--critic-width", "128", "--critic-depth", "2", "--sparsity", "0.9", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert set(report["networks"]) == {"actor", "critic", "critic_twin"}
    critic = report["networks"]["critic"]
    assert critic["sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert critic["layers"][0]["shape"] == [128, 4]  # (obs 3 + action 1) -> width 128
    assert len(critic["layers"]) == 1 + 2 * 2 + 1
    assert report["nonzero_params"] < report["dense_params"]
    assert report["dense_params"] == sum(n["dense_params"] for n in report["networks"].values())
    table = run_cli("inspect", "--width", "16", "--depth", "1", "--sparsity", "0.5")
    assert table.returncode == 0, table.stderr
    assert "[actor]" in table.stdout and "[critic]" in table.stdout and "non-zero of" in table.stdout


@pytest.mark.parametrize("args,message", [
    (["inspect", "--sparsity", "1.5"], "sparsity=1.5 is invalid"),
    (["inspect", "--model", "resnet"], "model='resnet' is invalid: not a registered model; allowed:"),
    (["inspect", "--model", "nature_cnn"], "model='nature_cnn' needs image observations"),
    (["inspect", "--algorithm", "BC"], "algorithm='BC' is not supported; allowed: PPO"),
    (["inspect", "--allocation", "erk"], "allocation='erk' is invalid"),
    (["inspect", "--width", "0"], "width=0 is invalid"),
    (["train", "tune_configs/quickstart.yaml", "--trial", "nope"], "--trial='nope' is not a trial of"),
    (["train", "tune_configs/quickstart.yaml", "--set", "stop.iterations=0"], "stop.iterations=0 is invalid"),
    (["sweep", "tune_configs/missing.yaml"], "cannot read the sweep file"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    run = run_cli(*args)
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.startswith("rllib-sparse: error:")]
    assert len(lines) == 1 and message in lines[0], run.stderr
    assert "Started a local Ray instance" not in run.stderr  # nothing was started


@pytest.mark.ray
def test_train_runs_one_trial_of_a_sweep_file(tmp_path):
    run = run_cli("train", "tune_configs/quickstart.yaml", "--smoke", "--trial", "simba-w128-d1-s0.9-seed0",
                  "--set", "diagnostics.batch_size=256", "--num-cpus", "2", "--checkpoint", str(tmp_path / "ckpt"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "training simba-w128-d1-s0.9-seed0 (PPO on CartPole-v1)" in run.stdout
    iterations = re.findall(r"^iter +(\d+) +env_steps +([\d,]+)", run.stdout, flags=re.M)
    assert [int(i) for i, _ in iterations] == [1, 2]
    # Diagnostics (every 10 iterations by default) come at the last iteration of the smoke run.
    for network in ("actor", "critic"):
        assert len(re.findall(rf"^ +{network}: srank \d+ .*dormant_pct_tau0.2 [\d.e-]+", run.stdout, flags=re.M)) == 1, run.stdout
    assert "max |masked weight| over learner and env runners = 0.0" in run.stdout
    assert (tmp_path / "ckpt" / "algorithm_state.pkl").exists()


def _readme_block(marker: str) -> str:
    """The README's one Python block that contains ``marker``."""
    text = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if marker in b]
    assert len(blocks) == 1, f"expected one README block with {marker!r}, found {len(blocks)}"
    return blocks[0]


def test_readme_first_lines_give_the_two_commands():
    lines = (REPO / "README.md").read_text().splitlines()
    commands = [line for line in lines[:6] if line.startswith("bash scripts/setup.sh")]
    assert len(commands) == 2
    assert "rllib-sparse sweep tune_configs/quickstart.yaml" in commands[0]
    assert commands[1] in (REPO / ".ci" / "run").read_text()


@pytest.mark.ray
def test_readme_rllib_example_runs_as_written():
    block = _readme_block("SACConfig")
    assert "with_sparse_model" in block and "PPOConfig" in block and "SACConfig" in block
    run = run_python(block, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "PPO return:" in run.stdout
    assert "SAC actor sparsity: 0.8" in run.stdout


def test_readme_torch_example_runs_as_written():
    block = _readme_block("sparsify(net")
    run = run_python(block)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "sparsity 0.9000" in run.stdout


@pytest.mark.ray
def test_readme_atari_example_runs_as_written():
    block = _readme_block("with_atari")
    assert "with_atari" in block and "ALE/Pong-v5" in block
    run = run_python(block, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"sampled \d+ env steps on AtariVectorEnv", run.stdout), run.stdout
    assert "sparsity 0.9000" in run.stdout


@pytest.mark.ray
def test_readme_diagnostics_example_runs_as_written():
    run = run_python(_readme_block("learner_diagnostics"), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    found = re.search(r"critic srank (\d+)\.0 dormant % ([\d.e-]+) max \|pruned weight\| 0\.0$", run.stdout, re.M)
    assert found, run.stdout
    assert 1 <= int(found.group(1)) <= 128 and 0.0 <= float(found.group(2)) <= 100.0


def test_readme_sweep_file_is_the_shipped_quickstart(tmp_path):
    from rllib_sparse.sweep.spec import load_sweep

    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, flags=re.S).group(1)
    (tmp_path / "readme.yaml").write_text(block)
    assert load_sweep(tmp_path / "readme.yaml") == load_sweep(REPO / "tune_configs" / "quickstart.yaml")


def test_readme_streaming_example_runs_as_written():
    block = _readme_block("StreamTrainer")
    run = run_python(block, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found = re.search(r"^1500 steps, (\d+) episodes finished, mean \|TD error\| ([\d.]+), max \|pruned weight\| 0\.0$",
                      run.stdout, re.M)
    assert found and int(found.group(1)) >= 1, run.stdout
