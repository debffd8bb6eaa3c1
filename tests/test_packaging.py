"""The package as people install it: metadata, extras, exports, shipped studies, the sweep-file schema.

Quick (no Ray starts): subprocesses run the installed ``rllib-sparse`` as a user would. The metadata
tests read the installed distribution (``importlib.metadata``): after a change to pyproject.toml,
``pip install -e . --no-deps`` (scripts/setup.sh does) refreshes it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_cli, run_python

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SHIPPED = sorted((REPO / "tune_configs").glob("*.yaml"))
SIMULATORS = {"atari": ["ale-py", "opencv-python-headless"], "dmc": ["dm-control", "mujoco", "shimmy"],
              "mujoco": ["gymnasium", "mujoco"]}


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0).lower().replace("_", "-")


def _error_lines(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("rllib-sparse: error:")]


# ------------------------------------------------------------------------------------------ metadata


def test_installed_metadata_declares_license_authors_urls_and_version():
    meta = metadata.metadata("rllib-sparse")
    assert meta["License-Expression"] == "Apache-2.0"  # PEP 639: an SPDX expression, not free text
    assert "LICENSE" in (meta.get_all("License-File") or [])
    assert not [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]  # PEP 639 forbids both
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert meta["Author"] == "rllib-sparse developers" or "rllib-sparse developers" in (meta["Author-email"] or "")
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL"))
    assert set(urls) >= {"Homepage", "Documentation", "Issues", "Changelog"}
    assert all(url.startswith("https://github.com/rllib-sparse/rllib-sparse") for url in urls.values())
    assert meta["Keywords"] and "sparsity" in meta["Keywords"]
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text


def test_version_is_written_once():
    import rllib_sparse

    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rllib_sparse.__version__"}
    assert metadata.version("rllib-sparse") == rllib_sparse.__version__
    run = run_cli("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"rllib-sparse {rllib_sparse.__version__}"


def test_simulators_are_extras_not_dependencies():
    requires = metadata.requires("rllib-sparse")
    core = {_requirement_name(r) for r in requires if "extra ==" not in r}
    for extra, names in SIMULATORS.items():
        declared = {_requirement_name(r) for r in requires if re.search(rf'extra == "{extra}"', r)}
        assert set(names) <= declared, (extra, declared)
        if extra != "mujoco":  # gymnasium itself is a core dependency; gymnasium[mujoco] is the extra
            assert not set(names) & core, (extra, core)
    assert "mujoco" not in core
    assert set(metadata.metadata("rllib-sparse").get_all("Provides-Extra")) >= {"atari", "dmc", "mujoco", "all",
                                                                                 "cluster", "test"}
    assert PYPROJECT["project"]["optional-dependencies"]["all"] == ["rllib-sparse[atari,dmc,mujoco]"]
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert re.search(r'install\.sh \.venv/bin/python -e "\.\[test,all\]"', setup)  # the suite runs every simulator


def test_every_subpackage_is_packaged_and_the_studies_are_package_data():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "rllib_sparse").rglob("__init__.py")}
    assert found - listed == set(), "add the new subpackage to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == {"rllib_sparse.tune_configs"}
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"rllib_sparse.tune_configs": "tune_configs"}
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "*.yaml" in data["rllib_sparse.tune_configs"] and "py.typed" in data["rllib_sparse"]
    assert (REPO / "rllib_sparse" / "py.typed").is_file()


@pytest.mark.slow
def test_a_built_wheel_has_the_studies_the_typing_marker_and_the_license(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        (source / name).write_bytes((REPO / name).read_bytes())
    for folder in ("rllib_sparse", "tune_configs"):
        subprocess.run(["cp", "-r", str(REPO / folder), str(source / folder)], check=True)
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = (tmp_path / "wheel").glob("rllib_sparse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"rllib_sparse/tune_configs/{p.name}" for p in SHIPPED} <= names
    assert "rllib_sparse/py.typed" in names and "rllib_sparse/cli/main.py" in names
    assert not [n for n in names if n.startswith("tune_configs/")]  # no top-level folder in site-packages
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert f"{dist_info}/licenses/LICENSE" in names
    meta = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in meta and "Provides-Extra: dmc" in meta
    # Installed from the wheel (ahead of the editable checkout on the path), a study is found by name.
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target",
                          str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run([sys.executable, "-m", "rllib_sparse", "validate", "quickstart"], capture_output=True,
                         text=True, timeout=300, cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(site)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith(f"{site / 'rllib_sparse' / 'tune_configs' / 'quickstart.yaml'}: study 'quickstart'")


# ------------------------------------------------------------------------------------------- exports


def test_lazy_exports_are_listed_typed_and_resolve():
    import rllib_sparse

    assert set(rllib_sparse.__all__) == set(rllib_sparse._PUBLIC) | {"__version__"}
    tree = ast.parse((REPO / "rllib_sparse" / "__init__.py").read_text())
    typed = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.If)
             and ast.unparse(node.test) == "TYPE_CHECKING" for stmt in node.body
             if isinstance(stmt, ast.ImportFrom) for alias in stmt.names}
    assert typed == set(rllib_sparse._PUBLIC)  # what type checkers see is what __getattr__ gives
    code = """
import sys
import rllib_sparse
assert "rllib_sparse.sparsity" not in sys.modules and "ray" not in sys.modules  # nothing loaded yet
listed = dir(rllib_sparse)
missing = [name for name in rllib_sparse.__all__ if name not in listed]
assert not missing, missing
from rllib_sparse import StreamAC, StreamTrainer, sparsify, with_sparse_model
for name in rllib_sparse.__all__:
    value = getattr(rllib_sparse, name)
    assert value is not None, name
    module = rllib_sparse._PUBLIC.get(name)
    if module is not None:
        assert value is getattr(sys.modules[module], name), name
print("ok", len(listed))
"""
    run = run_python(code)
    assert run.returncode == 0 and run.stdout.startswith("ok"), run.stderr[-3000:]


def test_every_name_the_readme_imports_is_exported():
    import rllib_sparse

    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    imported = {alias.name for block in blocks for node in ast.walk(ast.parse(block))
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rllib_sparse")
                for alias in node.names}
    assert {"with_sparse_model", "StreamAC", "StreamTrainer"} <= imported
    assert imported - set(rllib_sparse.__all__) == set()


# -------------------------------------------------------------------------------------------- schema


def _schema() -> dict:
    run = run_cli("schema")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_schema_command_prints_a_json_schema_that_every_shipped_study_follows(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from rllib_sparse.sweep.spec import load_sweep

    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "rllib-sparse sweep file" and "$id" not in json.dumps(schema)
    assert {"name", "algorithm", "env", "stop"} <= set(schema["required"])
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert len(SHIPPED) >= 8
    for path in SHIPPED:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(
            yaml.safe_load(path.read_text()))]
        assert not errors, (path.name, errors)
    quickstart = yaml.safe_load((REPO / "tune_configs" / "quickstart.yaml").read_text())
    # The shorthands its validators take: `learner.compile: off` (YAML's false) and `model.model`.
    shorthand = {**quickstart, "learner": {"compile": False}, "model": {**quickstart["model"], "model": "mlp"}}
    shorthand["model"].pop("name", None)
    assert not list(validator.iter_errors(shorthand))
    (tmp_path / "shorthand.yaml").write_text(yaml.safe_dump(shorthand).replace("compile: false", "compile: off"))
    assert load_sweep(tmp_path / "shorthand.yaml").learner.compile == "off"
    # ... and it does refuse what the format refuses.
    for bad in ({**quickstart, "stopp": {"iterations": 1}}, {**quickstart, "stop": {"iterations": "many"}},
                {k: v for k, v in quickstart.items() if k != "env"}, {**quickstart, "learner": {"compile": "fast"}}):
        assert list(validator.iter_errors(bad)), bad


# ------------------------------------------------------------------------------------ shipped studies


def test_validate_finds_a_shipped_study_by_name_from_any_folder(tmp_path):
    run = run_cli("validate", "quickstart", cwd=tmp_path)  # outside the repository: the shipped copy
    assert run.returncode == 0, run.stderr[-3000:]
    shipped = REPO / "tune_configs" / "quickstart.yaml"
    assert run.stdout.startswith(f"{shipped}: study 'quickstart', PPO on CartPole-v1"), run.stdout
    assert "9 trial(s)" in run.stdout


def test_an_unknown_study_name_is_one_line_listing_the_shipped_ones(tmp_path):
    run = run_cli("validate", "no-such-study", cwd=tmp_path)
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = _error_lines(run)
    assert len(lines) == 1 and run.stderr.strip() == lines[0], run.stderr
    assert "'no-such-study' is no sweep file and no shipped study" in lines[0]
    assert all(path.stem in lines[0] for path in SHIPPED), lines[0]
    missing_path = run_cli("validate", "nowhere/study.yaml", cwd=tmp_path)  # a path stays a path
    assert missing_path.returncode == 2 and "cannot read the sweep file" in _error_lines(missing_path)[0]


def test_sweep_commands_share_the_sweep_arguments():
    from rllib_sparse.cli.main import _sweep_file, build_parser

    parser = build_parser()
    for command in ("validate", "train", "sweep", "submit"):
        extra = ["--address", "http://head:8265"] if command == "submit" else []
        args = parser.parse_args([command, "quickstart", "--set", "stop.iterations=1", "--smoke", *extra])
        assert (args.file, args.set, args.smoke) == ("quickstart", ["stop.iterations=1"], True), command
    shipped = REPO / "tune_configs" / "quickstart.yaml"
    assert _sweep_file(str(shipped)) == str(shipped)  # an existing path as it is
    assert Path(_sweep_file("quickstart")).resolve() == shipped  # a name: the shipped study
    assert Path(_sweep_file("quickstart.yaml")).resolve() == shipped or Path("quickstart.yaml").exists()


# ----------------------------------------------------------------------------------- missing extras

_BLOCKER = '''
import sys

BLOCKED = {"ale_py", "cv2", "dm_control", "mujoco", "shimmy"}


class _NotInstalled:
    """Every simulator module of the extras reads as not installed."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled)
'''


@pytest.fixture
def no_simulators(tmp_path) -> dict[str, str]:
    """An environment (for subprocesses) in which no simulator extra is importable."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_BLOCKER)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_the_engine_imports_without_any_simulator(no_simulators):
    code = ("import sys\nimport rllib_sparse, rllib_sparse.sparsity, rllib_sparse.networks, rllib_sparse.envs\n"
            "from rllib_sparse import sparsify, EnvFamily\n"
            "try:\n    import dm_control\nexcept ImportError:\n    print('blocked')\n"
            "assert not {'ale_py', 'dm_control', 'mujoco', 'shimmy', 'cv2'} & set(sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO,
                         env=no_simulators)
    assert run.returncode == 0 and run.stdout.strip() == "blocked", run.stderr[-3000:]
    envs = subprocess.run([str(Path(sys.executable).with_name("rllib-sparse")), "envs"], capture_output=True,
                          text=True, timeout=300, cwd=REPO, env=no_simulators)
    assert envs.returncode == 0, envs.stderr[-3000:]
    assert re.search(r"^dmc: .*; unavailable: .*pip install 'rllib-sparse\[dmc\]'$", envs.stdout, re.M), envs.stdout
    assert re.search(r"^atari: .*; unavailable: .*pip install 'rllib-sparse\[atari\]'$", envs.stdout, re.M)


@pytest.mark.parametrize("study,env,extra", [("dmc_small_scaling", "dmc/cheetah-run", "dmc"),
                                              ("atari100k_dqn", "ALE/Breakout-v5", "atari")])
def test_a_missing_extra_is_one_line_naming_it(no_simulators, study, env, extra):
    run = subprocess.run([str(Path(sys.executable).with_name("rllib-sparse")), "validate", study],
                         capture_output=True, text=True, timeout=300, cwd=REPO, env=no_simulators)
    assert run.returncode == 2, (run.stdout, run.stderr[-3000:])
    lines = _error_lines(run)
    assert len(lines) == 1, run.stderr
    assert f"tune_configs/{study}.yaml: env={env!r} needs" in lines[0], lines[0]
    assert lines[0].endswith(f"install it with: pip install 'rllib-sparse[{extra}]'"), lines[0]
    assert "Traceback" not in run.stderr
