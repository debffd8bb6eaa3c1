"""Non-finite training: a NaN return, loss or observation stops the trial in one line that names it
(``failure.on_nonfinite: fail``, the default), or is warned about once per metric (``warn``).

The branches are unit tests of ``iterate_trial`` with a scripted ``TrialRunner`` subclass, of the
metric rules and of the observation check; two real sweeps (a local Ray, the embedded MLflow store) show
the end-to-end behaviour: the terminal's lines, the exit code, the MLflow run's status and reason tag.
The envs come from the plugin module ``nonfinite_plugin`` (tests/), named under ``plugins:``.
"""

import logging
import math
import re

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

import nonfinite_plugin  # noqa: F401 - registers NanReward-v0 and NanObservation-v0
from conftest import run_cli
from rllib_sparse import metrics as m
from rllib_sparse.envs import NonFiniteObservationError, check_observations, make_env
from rllib_sparse.sweep.callbacks import failure_reason
from rllib_sparse.sweep.spec import SweepSpec
from rllib_sparse.sweep.trial import NonFiniteTrainingError, PlannedCounts, TrialRunner, iterate_trial

SWEEP = {
    "name": "nonfinite",
    "plugins": ["nonfinite_plugin"],
    "algorithm": "PPO",
    "env": "NanReward-v0",
    "model": {"model": "simba", "depth": 1, "width": 16},
    "stop": {"iterations": 2},
    "failure": {"max_retries": 0},
}
NAN = float("nan")


class ScriptedRunner(TrialRunner):
    """A trial runner whose iterations are a script: each item a metrics dict, or an exception to raise."""

    script: list = []

    @classmethod
    def plan(cls, spec, point, source):
        return PlannedCounts(0, 0, {})

    @classmethod
    def resources(cls, spec, point):
        return [{"CPU": 1}]

    def build(self):
        self.steps = iter(self.script)

    def train(self):
        step = next(self.steps)
        if isinstance(step, BaseException):
            raise step
        return step

    def save(self, folder):
        pass

    def restore(self, folder):
        pass


def iterations(*script, **failure):
    spec = SweepSpec.model_validate({**SWEEP, "stop": {"iterations": len(script)},
                                     "failure": {"max_retries": 0, **failure}})
    runner = ScriptedRunner(spec, spec.points()[0])
    runner.script = [{m.ITERATION: float(i), m.ENV_STEPS: 100.0 * i, **step} if isinstance(step, dict) else step
                     for i, step in enumerate(script, start=1)]
    runner.build()
    return spec.points()[0].name, list(iterate_trial(runner, spec))


def test_the_metric_rules_tell_a_missing_return_from_finished_episodes_nan():
    assert m.no_episode_yet({}) and m.format_return(None) == "no episode finished yet"
    finished_nan = {m.EPISODE_RETURN: NAN, m.EPISODE_LENGTH: 12.0}
    assert not m.no_episode_yet(finished_nan) and m.return_text(finished_nan) == "nan"
    assert m.return_text({m.EPISODE_RETURN: math.inf}) == "inf"  # no length: a value means finished episodes
    # A runner that reports NaN before the first episode says so with a NaN (or 0) episode length.
    assert m.return_text({m.EPISODE_RETURN: NAN, m.EPISODE_LENGTH: NAN}) == "no episode finished yet"
    assert m.nonfinite({m.EPISODE_RETURN: NAN, m.EPISODE_LENGTH: 0.0, "learner/entropy": NAN}) == {}
    found = m.nonfinite({f"{m.LEARNER_PREFIX}total_loss": math.inf, m.EPISODE_RETURN_MAX: NAN,
                         m.EPISODE_LENGTH: 9.0, f"{m.LEARNER_PREFIX}td_error_abs_mean": 1.0})
    assert list(found) == [m.EPISODE_RETURN_MAX, "learner/total_loss"]  # returns first


def test_a_nonfinite_metric_fails_the_trial_in_one_line_naming_it():
    with pytest.raises(NonFiniteTrainingError) as caught:
        iterations({"learner/total_loss": 1.0},  # no episode has finished: no return yet, no problem
                   {m.EPISODE_RETURN: 20.0, m.EPISODE_LENGTH: 20.0, "learner/total_loss": 0.5},
                   {m.EPISODE_RETURN: NAN, m.EPISODE_LENGTH: 20.0, "learner/vf_loss": NAN, "learner/total_loss": NAN},
                   {m.EPISODE_RETURN: 1.0})
    message = str(caught.value)
    assert "\n" not in message
    assert message == ("episode_return_mean is nan at iteration 3 of trial simba-w16-d1-s0-seed0 (the env's rewards "
                       "are not finite); also learner/vf_loss, learner/total_loss; to keep training past non-finite "
                       "values, set failure.on_nonfinite: warn")
    with pytest.raises(NonFiniteTrainingError, match=r"^learner/policy_loss is -inf at iteration 1 of trial"):
        iterations({"learner/policy_loss": -math.inf})


def test_warn_mode_warns_once_per_metric_and_trains_to_the_stop(caplog):
    caplog.set_level(logging.WARNING, logger="rllib_sparse.sweep.trial")
    name, steps = iterations({"learner/vf_loss": NAN},
                             {"learner/vf_loss": NAN, m.EPISODE_RETURN: NAN, m.EPISODE_LENGTH: 9.0},
                             {"learner/vf_loss": NAN, m.EPISODE_RETURN: NAN, m.EPISODE_LENGTH: 9.0},
                             on_nonfinite="warn")
    assert [s.iteration for s in steps] == [1, 2, 3] and steps[-1].done
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"learner/vf_loss is nan at iteration 1 of trial {name}; training goes on "
                    "(failure.on_nonfinite: warn)"),
        ("WARNING", f"episode_return_mean is nan at iteration 2 of trial {name}; training goes on "
                    "(failure.on_nonfinite: warn)")]


def test_an_envs_nonfinite_observation_is_named_even_when_rllib_wrapped_it():
    cause = NonFiniteObservationError("env 'X-v0' returned a non-finite observation (nan at element 1) at step 7 "
                                      "of episode 2")
    wrapped = RuntimeError()  # RLlib's env runner: ``raise RuntimeError from e``
    wrapped.__cause__ = cause
    with pytest.raises(NonFiniteTrainingError) as caught:
        iterations({"learner/total_loss": 1.0}, wrapped, on_nonfinite="warn")  # warn cannot act on NaN inputs
    assert str(caught.value) == (f"{cause} in trial simba-w16-d1-s0-seed0; an env's observations must be finite")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(RuntimeError, match="something else"):  # other errors go through as they are
        iterations(RuntimeError("something else"))


def test_the_observation_check_names_env_step_and_episode():
    env = make_env("NanObservation-v0", {"nan_from": 3})  # a NaN in element 2 from the env's 3rd step
    env.reset(seed=0)
    for _ in range(2):
        env.step(0)
    with pytest.raises(NonFiniteObservationError) as caught:
        env.step(0)
    assert str(caught.value) == ("env 'NanObservation-v0' returned a non-finite observation (nan at element 2) "
                                 "at step 3 of episode 1")
    # Integer observations (Atari frames, discrete states) are not checked: nothing is added to their step.
    frozen = gym.make("FrozenLake-v1")
    assert check_observations(frozen, "FrozenLake-v1") is frozen
    vector = check_observations(gym.make_vec("NanObservation-v0", 2, vectorization_mode="sync", nan_from=2), "V")
    vector.reset(seed=0)
    vector.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(NonFiniteObservationError, match=r"^env 'V' \(sub-env 0\) returned a non-finite observation "
                                                        r"\(nan at element 2\) at step 2 of episode 1$"):
        vector.step(np.zeros(2, dtype=np.int64))


def test_rllib_makes_a_plain_gymnasium_id_with_its_observations_checked():
    from ray.rllib.env.env_context import EnvContext
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from rllib_sparse.rllib.core.env_families import register_checked_env

    assert not register_checked_env("NoSuchEnv-v0")  # left to RLlib, which names the problem as before
    register_checked_env("NanObservation-v0")
    env = _global_registry.get(ENV_CREATOR, "NanObservation-v0")(EnvContext({"nan_from": 2}, worker_index=0))
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(NonFiniteObservationError, match="^env 'NanObservation-v0' .* at step 2 of episode 1$"):
        env.step(0)


class _Trial:
    """What ``failure_reason`` reads of a Tune trial: the error files Tune wrote for it."""

    def __init__(self, folder, error=None, text=None):
        folder.mkdir()
        self.pickled_error_file = self.error_file = None
        if error is not None:
            self.pickled_error_file = str(folder / "error.pkl")
            (folder / "error.pkl").write_bytes(cloudpickle.dumps(error))
        if text is not None:
            self.error_file = str(folder / "error.txt")
            (folder / "error.txt").write_text(text)


def test_a_failed_trials_reason_is_read_from_the_error_tune_saved(tmp_path):
    from ray.exceptions import RayTaskError

    reason = "learner/total_loss is nan at iteration 3 of trial t; to keep training past non-finite values, set ..."
    error = RayTaskError("train", "Traceback (most recent call last):\n  ...", NonFiniteTrainingError(reason))
    assert failure_reason(_Trial(tmp_path / "a", error.as_instanceof_cause(), "Failure # 1\nTraceback ...")) == reason
    crash = RayTaskError("train", "Traceback ...", RuntimeError("injected fault\nsecond line"))
    assert failure_reason(_Trial(tmp_path / "b", crash)) == "RuntimeError: injected fault"
    text = "Failure # 1 (occurred at now)\nTraceback (most recent call last):\n  File x\nKeyError: 'x'\n"
    assert failure_reason(_Trial(tmp_path / "c", None, text)) == "KeyError: 'x'"  # no pickle: the text's last line


# ------------------------------------------------------------------------------ real sweeps, end to end


def sweep(folder, **changes):
    (folder / "nonfinite.yaml").write_text(yaml.safe_dump({**SWEEP, **changes}))
    return run_cli("sweep", "nonfinite.yaml", "--smoke", "--num-cpus", "2", cwd=folder)


def child_runs(folder):
    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("nonfinite-smoke")
    runs = client.search_runs([experiment.experiment_id])
    return client, {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}


@pytest.mark.ray
def test_nonfinite_rewards_and_observations_fail_their_trials_in_one_line(tmp_path):
    # Both envs go wrong from their 150th step: the 2nd iteration of --smoke's 128-step ones.
    run = sweep(tmp_path, env_config={"nan_from": 150}, grid={"env": ["NanReward-v0", "NanObservation-v0"]})
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-4000:]
    assert "Traceback" not in out
    reward_trial, obs_trial = "simba-w16-d1-s0-NanRewardv0-seed0", "simba-w16-d1-s0-NanObservationv0-seed0"
    failed = {line.split()[3]: line for line in run.stdout.splitlines() if " FAILED after its retries: " in line}
    assert set(failed) == {reward_trial, obs_trial}, run.stdout
    # A NaN reward shows in the losses first (RLlib's mean return skips NaN episodes among finite ones).
    assert re.search(rf"FAILED after its retries: learner/\w*loss\w* is nan at iteration 2 of trial {reward_trial}"
                     r"; also .*; to keep training past non-finite values, set failure.on_nonfinite: warn \(error file: ",
                     failed[reward_trial]), failed[reward_trial]
    assert re.search(r"FAILED after its retries: env 'NanObservation-v0' returned a non-finite observation "
                     rf"\(nan at element 2\) at step \d+ of episode \d+ in trial {obs_trial}; an env's observations "
                     "must be finite", failed[obs_trial]), failed[obs_trial]
    assert "return no episode finished yet" not in run.stdout  # CartPole's episodes end within an iteration
    _, kids = child_runs(tmp_path)
    for name in (reward_trial, obs_trial):
        assert kids[name].info.status == "FAILED"
        assert kids[name].data.tags["rllib_sparse.failure_reason"] in failed[name]


@pytest.mark.ray
def test_warn_mode_trains_on_and_warns_once_per_metric(tmp_path):
    run = sweep(tmp_path, env_config={"nan_from": 1}, failure={"max_retries": 0, "on_nonfinite": "warn"})
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    lines = run.stdout.splitlines()
    assert sum("iter    1 " in line and line.endswith("return nan") for line in lines) == 1, run.stdout
    assert any("iter    2 " in line for line in lines) and any(line.endswith(" finished") for line in lines)
    warnings = [line.split(" warning: ", 1)[1] for line in lines if " warning: " in line]
    assert ("episode_return_mean is nan at iteration 1; training goes on (failure.on_nonfinite: warn)" in warnings
            and any(w.startswith("learner/total_loss is nan at iteration 1;") for w in warnings)), run.stdout
    metrics = [w.split()[0] for w in warnings]
    assert len(metrics) == len(set(metrics)), warnings  # once per metric, not once per iteration
    client, kids = child_runs(tmp_path)
    [kid] = kids.values()
    assert kid.info.status == "FINISHED" and "rllib_sparse.failure_reason" not in kid.data.tags
    # The NaN is in MLflow as a NaN point (the tracker logs non-finite values rather than dropping them).
    history = client.get_metric_history(kid.info.run_id, "episode_return_mean")
    assert len(history) == 2 and all(math.isnan(point.value) for point in history)
