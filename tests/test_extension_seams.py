"""A new env family and new algorithms, plugged in through the seams only, run by `train` and `sweep`.

The plugin module is written by the test into its own folder, as a user's would be: it registers an
env family (``toy/<gymnasium id>``: a capped episode, with its own full-episode return in the episode's
last ``info``), an algorithm RLlib trains (its PPO under the name TOYPPO) and one it does not (TOYCOUNT:
random actions, by a trial runner of the plugin's own that the algorithm's row names). The sweep file
names it under ``plugins:``; nothing in rllib_sparse knows about any of them.
"""

import os
import pickle
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import REPO, run_cli

pytestmark = pytest.mark.ray

PLUGIN = textwrap.dedent('''
    import dataclasses

    import gymnasium as gym
    from pydantic import BaseModel, ConfigDict, Field

    from rllib_sparse.algorithms import AlgorithmRow, get_algorithm, register_algorithm
    from rllib_sparse.envs import EnvFamily, make_env, register_env_family
    from rllib_sparse.sweep.trial import PlannedCounts, TrialRunner


    class ToyOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")
        max_steps: int = Field(50, ge=1)


    class EpisodeReturnInfo(gym.Wrapper):
        """Puts the episode's return (doubled, so it differs from RLlib's own) into the last info."""

        def reset(self, **kwargs):
            self.total = 0.0
            return self.env.reset(**kwargs)

        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            self.total += float(reward)
            if terminated or truncated:
                info = dict(info, toy_return=2 * self.total)
            return obs, reward, terminated, truncated, info


    def make(env_id, max_steps=50):
        return EpisodeReturnInfo(gym.make(env_id.removeprefix("toy/"), max_episode_steps=max_steps))


    register_env_family(EnvFamily(
        name="toy", matches=lambda env_id: env_id.startswith("toy/"), make=make, options=ToyOptions,
        episode_info_metrics={"toy_return": "toy_return_mean"}, full_episode_return="toy_return_mean",
        list_ids=lambda: {"toy/CartPole-v1": "CartPole-v1"}, summary="a family made by a test"))
    register_algorithm(dataclasses.replace(get_algorithm("PPO"), name="TOYPPO", summary="PPO, renamed"))


    class RandomActions(TrialRunner):
        """A trainer that is not RLlib: each iteration plays one episode with random actions."""

        @classmethod
        def plan(cls, spec, point, source):
            return PlannedCounts(0, 0, {})

        @classmethod
        def resources(cls, spec, point):
            return [{"CPU": 1}]

        def build(self):
            self.env = make_env(self.point.env, dict(self.spec.env_config))
            self.iteration, self.env_steps = 0, 0

        def train(self):
            self.env.reset(seed=self.iteration)
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = self.env.step(self.env.action_space.sample())
                total, done, self.env_steps = total + reward, terminated or truncated, self.env_steps + 1
            self.iteration += 1
            return {"iteration": self.iteration, "env_steps": self.env_steps, "episode_return_mean": total}

        def save(self, folder):
            pass

        def restore(self, folder):
            pass

        def stop(self):
            self.env.close()


    register_algorithm(AlgorithmRow("TOYCOUNT", runner="toy_plugin:RandomActions", summary="random actions"))
''')

SWEEP = {
    "name": "toy",
    "plugins": ["toy_plugin"],
    "algorithm": "TOYPPO",
    "env": "toy/CartPole-v1",
    "env_config": {"max_steps": 20},
    "model": {"model": "simba", "depth": 1},
    "grid": {"width": [16], "sparsity": [0.0, 0.9]},
    "training": {"train_batch_size_per_learner": 200, "minibatch_size": 100, "num_epochs": 1},
    "stop": {"iterations": 3},
}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy_plugin.py").write_text(PLUGIN)
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(SWEEP))
    # The driver and the Ray workers it starts import the plugin from the test's folder.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


def test_toy_family_and_algorithm_train_in_process(toy):
    run = run_cli("train", "toy.yaml", "--smoke", "--num-cpus", "2", cwd=toy)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "training simba-w16-d1-s0-seed0 (TOYPPO on toy/CartPole-v1)" in run.stdout
    assert "max |masked weight| over learner and env runners = 0.0" in run.stdout


def test_toy_family_and_algorithm_sweep_with_tracking(toy):
    run = run_cli("sweep", "toy.yaml", "--smoke", "--num-cpus", "2", cwd=toy)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "2 trial(s) of TOYPPO on toy/CartPole-v1 (smoke)" in run.stdout
    client = MlflowClient(f"sqlite:///{toy / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("toy-smoke")
    kids = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert sorted(k.info.run_name for k in kids) == ["simba-w16-d1-s0-seed0", "simba-w16-d1-s0.9-seed0"]
    for kid in kids:
        assert kid.info.status == "FINISHED" and kid.data.params["algorithm"] == "TOYPPO"
        metrics = kid.data.metrics
        # The family's own return replaced RLlib's, which moved aside: twice RLlib's, by the plugin's design.
        assert metrics["episode_return_mean"] > 0 and metrics["training_episode_return_mean"] > 0
        assert metrics["episode_return_mean"] != metrics["training_episode_return_mean"]


def test_toy_runner_named_by_its_row_trains_an_algorithm_that_is_not_rllib(toy):
    (toy / "count.yaml").write_text(yaml.safe_dump(
        {**{k: v for k, v in SWEEP.items() if k != "training"}, "name": "count", "algorithm": "TOYCOUNT"}))
    run = run_cli("train", "count.yaml", "--num-cpus", "1", cwd=toy)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "training simba-w16-d1-s0-seed0 (TOYCOUNT on toy/CartPole-v1)" in run.stdout
    assert re.search(r"^iter +3 +env_steps +\d+ +return +\d", run.stdout, re.MULTILINE), run.stdout


def test_toy_options_are_checked_like_built_in_ones(toy):
    (toy / "bad.yaml").write_text(yaml.safe_dump({**SWEEP, "env_config": {"max_step": 20}}))
    run = run_cli("validate", "bad.yaml", cwd=toy)
    assert run.returncode == 2 and "unknown key 'max_step'; did you mean 'max_steps'?" in run.stderr, run.stderr


def docs_files(page: Path, package: str) -> dict[str, str]:
    """The code blocks of a docs page whose first line names a file of ``package`` (``# pkg/x.py``)."""
    blocks = re.findall(r"```python\n(# (" + package + r"/[\w/]+\.py)\n.*?)```", page.read_text(), re.DOTALL)
    return {path: code for code, path in blocks}


def test_the_worked_off_policy_example_of_the_docs_is_one_folder_and_one_row_and_trains(tmp_path, monkeypatch):
    files = docs_files(REPO / "docs" / "extending.md", "my_algos")
    assert set(files) == {"my_algos/__init__.py", "my_algos/twin_ddpg/config.py", "my_algos/twin_ddpg/module.py",
                          "my_algos/twin_ddpg/learner.py"}
    for path, code in {**files, "my_algos/twin_ddpg/__init__.py": ""}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(code)
    (tmp_path / "twin.yaml").write_text(yaml.safe_dump({
        "name": "twin", "plugins": ["my_algos"], "algorithm": "TwinDDPG", "env": "Pendulum-v1",
        "model": {"model": "simba", "depth": 1, "width": 16}, "grid": {"sparsity": [0.9]},
        "training": {"weight_decay": 0.01, "target_noise_clip": 0.3}, "stop": {"iterations": 2}}))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    run = run_cli("train", "twin.yaml", "--smoke", "--num-cpus", "1", "--checkpoint", "ckpt", cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "training simba-w16-d1-s0.9-seed0 (TWINDDPG on Pendulum-v1)" in run.stdout
    assert re.search(r"^iter +2 +env_steps +\d+ +return +-?\d", run.stdout, re.MULTILINE), run.stdout
    # Trained: the masks held through the updates, and the layout's three optimizers (AdamW) have stepped.
    assert "max |masked weight| over learner and env runners = 0.0" in run.stdout
    with open(tmp_path / "ckpt" / "learner_group" / "learner" / "state.pkl", "rb") as file:
        optimizers = pickle.load(file)["optimizer"]
    assert list(optimizers) == ["default_policy_qf", "default_policy_qf_twin", "default_policy_policy"]
    for optimizer in optimizers.values():
        assert optimizer["state"]["state"] and optimizer["state"]["param_groups"][0]["weight_decay"] == 0.01
