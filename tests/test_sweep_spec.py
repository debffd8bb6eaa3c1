"""Sweep files: validation with one-line errors, grid expansion and trial planning."""

import textwrap

import pytest
import yaml

from conftest import REPO, run_cli
from rllib_sparse.sweep.plan import plan
from rllib_sparse.sweep.rllib_runner import trial_config
from rllib_sparse.sweep.spec import load_sweep

BASE = {
    "name": "study",
    "algorithm": "ppo",
    "env": "CartPole-v1",
    "model": {"model": "simba", "depth": 1},
    "grid": {"width": [16, 32], "sparsity": [0.0, 0.9], "seed": [0, 1]},
    "training": {"lr": 0.001},
    "stop": {"iterations": 2},
}


def write(tmp_path, data, name="sweep.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_grid_expands_to_the_cartesian_product_with_readable_names(tmp_path):
    spec = load_sweep(write(tmp_path, BASE))
    assert spec.algorithm == "PPO"
    points = spec.points()
    assert len(points) == 8
    names = [p.name for p in points]
    assert names[0] == "simba-w16-d1-s0-seed0" and "simba-w32-d1-s0.9-seed1" in names
    assert len(set(names)) == 8
    point = points[-1]
    assert point.model.seed == point.seed == 1  # the run seed also draws the masks
    assert point.model.network("critic").sparsity == 0.9


def test_training_and_actor_critic_axes(tmp_path):
    data = dict(BASE, grid={"critic.width": [64, 128], "training.lr": [0.001, 0.0003]})
    points = load_sweep(write(tmp_path, data)).points()
    assert [(p.model.network("critic").width, p.training["lr"]) for p in points] == [
        (64, 0.001), (64, 0.0003), (128, 0.001), (128, 0.0003)]
    assert points[0].name == "simba-w256-d1-s0-cw64-cd1-cs0-lr0.001-seed0"


def test_per_network_allocation_axis(tmp_path):
    data = dict(BASE, grid={"critic.allocation": ["erdos_renyi", "uniform"]})
    trials = plan(load_sweep(write(tmp_path, data)))
    assert [t.point.name for t in trials] == ["simba-w256-d1-s0-critic-erdos_renyi-seed0",
                                              "simba-w256-d1-s0-critic-uniform-seed0"]
    sparse = load_sweep(write(tmp_path, dict(data, model={"depth": 1, "sparsity": 0.9})))
    layers = [t.layers["critic"] for t in plan(sparse)]
    densities = [{row["density"] for row in rows} for rows in layers]
    assert len(densities[1]) == 1 and len(densities[0]) > 1  # uniform: one density; ER: several


def test_plan_counts_parameters_and_builds_rllib_configs(tmp_path):
    spec = load_sweep(write(tmp_path, BASE), ["grid.seed=[0]"])
    trials = plan(spec)
    assert len(trials) == 4
    by_name = {t.point.name: t for t in trials}
    dense, sparse = by_name["simba-w32-d1-s0-seed0"], by_name["simba-w32-d1-s0.9-seed0"]
    assert dense.dense_params == dense.nonzero_params == sparse.dense_params
    assert sparse.nonzero_params < 0.25 * dense.dense_params
    config = trial_config(spec, trials[0].point)
    assert config.lr == 0.001 and config.seed == 0
    assert config.model_config["sparse"]["width"] == 16


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(widht=3), r"unknown key 'widht'"),
    (lambda d: d.update(stpo={"iterations": 1}), r"unknown key 'stpo'; did you mean 'stop'\?"),
    (lambda d: d["stop"].update(iterations=0), r"stop.iterations=0 is invalid"),
    (lambda d: d.update(stop={}), r"stop=\{\} is invalid: set at least one of env_steps, iterations, time_s"),
    (lambda d: d.update(algorithm="A2C"), r"algorithm='A2C' is invalid: Input should be 'PPO', 'APPO'"),
    (lambda d: d["grid"].update(sparsity=[0.5, 1.0]), r"grid.sparsity\[1\]=1.0: .*less than 1"),
    (lambda d: d["grid"].update(widht=[1]), r"grid.widht is not a known axis \(did you mean 'width'\?\)"),
    (lambda d: d["grid"].update(seed=[]), r"grid.seed=\[\] has no values"),
    (lambda d: d["model"].update(model="resnet"), r"model.model='resnet' is invalid: not a registered model"),
    (lambda d: d["resources"].update(cpus_per_trial=0) if "resources" in d else d.update(
        resources={"cpus_per_trial": 0}), r"resources.cpus_per_trial=0 is invalid"),
    (lambda d: d.update(name="bad name!"), r"name='bad name!' is invalid"),
    (lambda d: d.update(learner={"compile": "fast"}), r"learner.compile='fast' is invalid: .*'off', 'forward_train'"),
    (lambda d: d.update(learner={"compile": True}), r"learner.compile=True is invalid"),
    (lambda d: d.update(learner={"mode": "reduce-overhead"}), r"learner.compile='off' ignores backend/mode; "
                                                             r"allowed: set learner.compile to forward_train"),
])
def test_bad_files_fail_with_one_line_naming_file_field_value(tmp_path, mutate, message):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ValueError, match=message) as info:
        load_sweep(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_malformed_yaml_and_unknown_hyper_parameter(tmp_path):
    bad = write(tmp_path, "name: x\ngrid: [1, 2\n")
    with pytest.raises(ValueError, match=r"not valid YAML at line 3"):
        load_sweep(bad)
    spec = load_sweep(write(tmp_path, dict(BASE, training={"lrr": 0.1})))
    with pytest.raises(ValueError, match=r"training.lrr is not a PPO training setting; did you mean 'lr'\?"):
        plan(spec)
    with pytest.raises(ValueError, match=r"--set 'stop' is invalid"):
        load_sweep(write(tmp_path, BASE), ["stop"])


def test_validate_command_prints_the_grid(tmp_path):
    run = run_cli("validate", str(REPO / "tune_configs" / "quickstart.yaml"))
    assert run.returncode == 0, run.stderr
    assert "9 trial(s)" in run.stdout
    assert "simba-w128-d1-s0.9-seed0" in run.stdout
    bad = run_cli("validate", str(write(tmp_path, textwrap.dedent("""
        name: s
        algorithm: PPO
        env: CartPole-v1
        model: {model: nature_cnn}
        stop: {iterations: 1}
        """))))
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "needs image observations" in bad.stderr


@pytest.mark.parametrize("path", [pytest.param(p, marks=[pytest.mark.slow] if p.name.startswith("dmc_hard") else [])
                                  for p in sorted((REPO / "tune_configs").glob("*.yaml"))],  # 240 trials: ~35 s
                         ids=lambda p: p.name)
def test_every_shipped_sweep_file_validates(path):
    assert plan(load_sweep(path))


def test_learner_section_reaches_rllibs_config_and_a_bare_yaml_off_means_off(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    spec = load_sweep(write(tmp_path, textwrap.dedent(yaml.safe_dump(data)) + "learner:\n  compile: off\n"))
    assert spec.learner.compile == "off"
    point = spec.points()[0]
    assert trial_config(spec, point).torch_compile_learner is False
    fast = load_sweep(write(tmp_path, data), ["learner.compile=forward_train", "learner.mode=reduce-overhead"])
    config = trial_config(fast, point)
    assert (config.torch_compile_learner, config.torch_compile_learner_what_to_compile,
            config.torch_compile_learner_dynamo_backend, config.torch_compile_learner_dynamo_mode) == (
        True, "forward_train", "inductor", "reduce-overhead")
    assert trial_config(load_sweep(write(tmp_path, data), ["learner.compile=update"]),
                        point).torch_compile_learner_what_to_compile == "complete_update"
    # How fast the Learner runs is not part of what the study is: --resume takes the other setting.
    assert fast.fingerprint() == spec.fingerprint()


def test_diagnostics_section_defaults_schedule_and_errors(tmp_path):
    from rllib_sparse.rllib.core.diagnostics import ROWS_KEY

    assert load_sweep(write(tmp_path, BASE)).diagnostics is None  # absent: off
    spec = load_sweep(write(tmp_path, dict(BASE, diagnostics={})))
    diag = spec.diagnostics
    assert (diag.every, diag.batch_size, diag.delta, diag.dormant, diag.taus) == (10, 1024, 0.01, "pre_activation", None)
    assert diag.learner_settings()["taus"] is None  # the convention's own: the paper's 0.1 and 0.2
    assert [i for i in range(1, 31) if diag.due(i, last=False)] == [10, 20, 30]
    assert diag.due(7, last=True)  # a trial's last iteration always gets them
    config = trial_config(spec, spec.points()[0])
    assert config.learner_config_dict[ROWS_KEY] == 1024
    assert ROWS_KEY not in trial_config(load_sweep(write(tmp_path, BASE)), spec.points()[0]).learner_config_dict
    with pytest.raises(ValueError, match=r"diagnostics\.taus\.0.*1\.5"):
        load_sweep(write(tmp_path, dict(BASE, diagnostics={"taus": [1.5]})))
    with pytest.raises(ValueError, match=r"unknown key 'diagnostics.evry'; did you mean 'every'\? allowed: batch_size, delta, dormant, every"):
        load_sweep(write(tmp_path, dict(BASE, diagnostics={"evry": 5})))
    with pytest.raises(ValueError, match=r"diagnostics\.dormant.*'pre'.*pre_activation.*post_activation"):
        load_sweep(write(tmp_path, dict(BASE, diagnostics={"dormant": "pre"})))


def test_the_documented_sweep_file_validates(tmp_path):
    import re

    block = re.search(r"```yaml\n(.*?)```", (REPO / "docs" / "sweeps.md").read_text(), re.S).group(1)
    spec = load_sweep(write(tmp_path, block))
    assert spec.learner.compile == "off" and spec.diagnostics.dormant == "pre_activation"
    assert len(spec.points()) == 9


def test_a_trial_whose_actor_never_ran_is_still_named_in_the_summary(tmp_path):
    """Tune's result of a trial that never started has no config; the sweep names it by its folder."""
    from types import SimpleNamespace

    from rllib_sparse.sweep.summary import trial_index

    trials = plan(load_sweep(write(tmp_path, BASE)))
    name = trials[1].point.name
    never_ran = SimpleNamespace(config=None, path=f"/tmp/runs/x/20260101-000000/{name}", error=RuntimeError())
    ran = SimpleNamespace(config={"index": 0}, path="/elsewhere", error=None)
    assert trial_index(never_ran, trials) == (1, name)
    assert trial_index(ran, trials) == (0, trials[0].point.name)
    assert trial_index(SimpleNamespace(config=None, path=None), trials)[0] is None


def test_every_settings_field_has_a_description_in_the_json_schema():
    """Each field of a sweep file, the sparse model and its per-network overrides says what it means."""
    from rllib_sparse.networks import SparseModelConfig
    from rllib_sparse.sweep.spec import SweepSpec

    def undescribed(node, where: str = "") -> list[str]:
        """Every property, at any depth ($defs, inline objects, anyOf/items), without a description."""
        if isinstance(node, list):
            return [path for index, item in enumerate(node) for path in undescribed(item, f"{where}[{index}]")]
        if not isinstance(node, dict):
            return []
        found = [f"{where}.{field}" for field, prop in node.get("properties", {}).items()
                 if not (isinstance(prop.get("description"), str) and prop["description"].strip())]
        return found + [path for key, value in node.items() for path in undescribed(value, f"{where}/{key}")]

    sweep = SweepSpec.model_json_schema()
    assert {"SparseModelConfig", "NetworkOverrides", "StopSpec", "DiagnosticsSpec"} <= set(sweep["$defs"])
    assert undescribed(sweep) == []
    assert undescribed(SparseModelConfig.model_json_schema()) == []


@pytest.mark.parametrize("name", ["quickstart.yaml", "dmc_small_scaling.yaml", "dmc_hard_scaling_ddpg.yaml"])
def test_a_trials_own_point_is_the_grids_and_each_point_is_a_valid_typed_model(name):
    from rllib_sparse.networks import SparseModelConfig

    spec = load_sweep(REPO / "tune_configs" / name)
    points = spec.points()
    assert [spec.point(i) for i in range(len(points))] == points
    for point in points:  # typed copies, not re-parsed: a re-parse of each gives the same model
        assert SparseModelConfig.parse(point.model.model_dump()) == point.model
    with pytest.raises(IndexError):
        spec.point(len(points))


def test_a_width_and_a_width_scale_axis_of_one_network_are_refused_in_one_line(tmp_path):
    data = dict(BASE, grid={"actor.width": [16, 32], "actor.width_scale": [0.25, 0.5]})
    with pytest.raises(ValueError, match="grid.actor.width and grid.actor.width_scale are both axes; allowed: "
                                         "one of them") as error:
        load_sweep(write(tmp_path, data))
    assert "\n" not in str(error.value)
