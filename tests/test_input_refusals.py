"""Bad input as a new user types it: one line naming the field, the value and what is allowed; exit 2;
nothing written, nothing started. The sweep file checks run in-process; the flags through the CLI."""

import http.server
import threading

import pytest
import yaml

from conftest import run_cli
from rllib_sparse.sweep.plan import plan
from rllib_sparse.sweep.spec import load_sweep
from test_sweep_run import SWEEP

BASE = SWEEP  # the small PPO study of the sweep tests


def write(folder, data=None, text=None, name="tiny.yaml"):
    path = folder / name
    path.write_text(text if text is not None else yaml.safe_dump(data or BASE))
    return path


def refused(path, overrides=(), planned=True) -> str:
    with pytest.raises(ValueError) as caught:
        spec = load_sweep(path, list(overrides))
        if planned:
            plan(spec, source=str(path))
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("overrides,expected", [
    (["grid.seed=[0, 0]"], "grid.seed=[0, 0] repeats 0; allowed: each value once"),
    (["grid.width=[32, 32]"], "grid.width=[32, 32] repeats 32"),
    (["grid.width=[true]"], "width=True is invalid: Input should be a valid integer"),
    (["model.width=true"], "model.width=True is invalid: Input should be a valid integer"),
    (["model.sparsity='0.5'"], "model.sparsity='0.5' is invalid: Input should be a valid number"),
    (["training.lr=fast"], "training.lr='fast' is invalid: PPO's lr is a number"),
    (["training.num_epochs=2.5"], "training.num_epochs=2.5 is invalid: PPO's num_epochs is an integer"),
    (["training.lr=.nan"], "training.lr=nan is invalid; allowed: finite numbers"),
    (["stop.time_s=.inf"], "stop.time_s=inf is invalid: Input should be a finite number"),
    (["grid.width=[1000000000000]"], "width=1000000000000 is invalid: Input should be less than or equal to 1048576"),
    (["grid.width=[1000000]"], "needs at least 233 TiB of memory (16,000,031,000,003 parameters x 16 bytes"),
    (["name.x=1"], "--set 'name.x=1': name='tiny' is a value, not a section, so name.x cannot be set"),
    (["stop.iterations.x=1"], "--set 'stop.iterations.x=1': stop.iterations=3 is a value, not a section"),
    (["grid.training.lr=[0.0001, 0.00010000001]"], "are the same trial 'simba-w16-d1-s0-lr0.0001-seed0'"),
    (["algorithm=DQN", "grid.actor.width=[8]"], "grid.actor.width is set, but DQN has no actor network; allowed: critic"),
    (["failure.on_nonfinite=ignore"], "failure.on_nonfinite='ignore' is invalid: Input should be 'fail' or 'warn'"),
])
def test_sweep_file_values_are_refused_in_one_line(tmp_path, overrides, expected):
    message = refused(write(tmp_path), overrides)
    assert expected in message, message


def test_a_key_given_twice_is_refused_not_overwritten(tmp_path):
    text = "name: first\nalgorithm: PPO\nenv: CartPole-v1\nstop: {iterations: 1}\nname: second\n"
    message = refused(write(tmp_path, text=text), planned=False)
    assert message.endswith("duplicate key 'name' at line 5 (first at line 1); allowed: each key once per mapping")
    nested = "name: a\nalgorithm: PPO\nenv: CartPole-v1\nstop: {iterations: 1, iterations: 2}\n"
    assert "duplicate key 'iterations'" in refused(write(tmp_path, text=nested), planned=False)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    assert refused(path, planned=False) == (f"{path}: not UTF-8 text (byte 0xe9 at offset 9); allowed: a UTF-8 "
                                            "YAML file")


def test_good_values_still_pass(tmp_path):
    spec = load_sweep(write(tmp_path), ["training.lr=[[0, 0.001], [1000, 0.0001]]", "training.grad_clip=40",
                                        "stop.time_s=60"])
    assert len(plan(spec)) == 2 and spec.stop.time_s == 60.0


def cli_error(run) -> str:
    assert run.returncode == 2, run.stdout[-1500:] + run.stderr[-1500:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_unknown_env_and_wrong_action_space_are_one_complete_line():
    line = cli_error(run_cli("inspect", "--env", "CartPole-v9"))
    assert line.endswith("allowed: a gymnasium id (e.g. CartPole-v1), an Atari id (`rllib-sparse envs`), or a name "
                         "registered with ray.tune.register_env") and "did you mean 'CartPole-v1'?" in line
    line = cli_error(run_cli("inspect", "--algorithm", "DQN", "--env", "Pendulum-v1"))
    assert "DQN on env='Pendulum-v1': the action space Box(-2.0, 2.0, (1,), float32) is not supported; " \
           "DQN needs Discrete actions" in line


class _NotMlflow(http.server.BaseHTTPRequestHandler):
    """A web server that answers /health (as many do) but is not MLflow."""

    def do_GET(self):  # noqa: N802 - the stdlib's name
        body = b"OK" if self.path == "/health" else b"<html>not here</html>"
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def not_mlflow():
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotMlflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_sweep_refuses_bad_tracking_stores_addresses_and_folders_and_writes_nothing(tmp_path, not_mlflow):
    path = write(tmp_path)
    (tmp_path / "junk.db").write_text("this is not a database")
    cases = [
        (["--tracking-uri", "foo://bar"], "tracking URI 'foo://bar' has an unsupported scheme 'foo'; allowed:"),
        (["--tracking-uri", "postgresql://u:secret@127.0.0.1:1/db"],
         "tracking URI 'postgresql://u:***@127.0.0.1:1/db': its database driver is not installed"),
        (["--tracking-uri", not_mlflow], "answers, but not as an MLflow tracking server"),
        (["--tracking-uri", f"sqlite:///{tmp_path}/junk.db"], "junk.db is not an SQLite database"),
        (["--address", "127.0.0.1:99999"], "--address='127.0.0.1:99999' is invalid; allowed: HOST:PORT"),
        (["--num-cpus", "-1"], "argument --num-cpus: '-1' is invalid; allowed: an integer >= 1"),
        (["--num-cpus", "0"], "argument --num-cpus: '0' is invalid; allowed: an integer >= 1"),
    ]
    for args, expected in cases:
        run = run_cli("sweep", str(path), *args, cwd=tmp_path)
        assert run.returncode == 2, (args, run.stderr[-2000:])
        assert expected in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr and "secret" not in run.stderr
        assert not (tmp_path / "mlruns").exists() and not (tmp_path / "runs").exists(), args
    assert (tmp_path / "junk.db").read_text() == "this is not a database"


def test_sweep_refuses_a_runs_or_mlruns_file_in_the_way(tmp_path):
    path = write(tmp_path)
    (tmp_path / "runs").write_text("my notes")
    line = cli_error(run_cli("sweep", str(path), cwd=tmp_path))
    assert f"{tmp_path / 'runs'} is a file, but sweeps keep their Tune folders there" in line
    (tmp_path / "runs").unlink()
    (tmp_path / "mlruns").write_text("my other notes")
    line = cli_error(run_cli("sweep", str(path), cwd=tmp_path))
    assert f"{tmp_path / 'mlruns'} is a file, so the store cannot be created there" in line
    assert (tmp_path / "mlruns").read_text() == "my other notes" and not (tmp_path / "runs").exists()


def test_resume_refuses_a_corrupt_record(tmp_path):
    path = write(tmp_path)
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "20260101-000000.json").write_text("{not json")
    line = cli_error(run_cli("sweep", str(path), "--resume", cwd=tmp_path))
    assert "--resume: " in line and "20260101-000000.json is not a readable sweep record" in line
    assert not (tmp_path / "mlruns").exists()


def test_submit_to_a_dead_address_is_refused_fast_in_one_line(tmp_path):
    run = run_cli("submit", str(write(tmp_path)), "--address", "http://127.0.0.1:1", cwd=tmp_path, timeout=60)
    line = cli_error(run)
    assert line.startswith("rllib-sparse: error: --address='http://127.0.0.1:1' is unreachable") and not run.stdout


def test_submit_resume_without_the_job_folder_is_refused_in_one_line(tmp_path):
    run = run_cli("submit", str(write(tmp_path)), "--address", "http://127.0.0.1:1", "--resume", cwd=tmp_path,
                  timeout=60)
    assert cli_error(run).startswith("rllib-sparse: error: --resume needs --job-dir") and not run.stdout


def test_report_tracking_uri_relative_sqlite_path_is_read_like_sweep_writes_it(tmp_path, monkeypatch):
    from rllib_sparse.sweep.tracking import SweepTracker

    monkeypatch.chdir(tmp_path)
    SweepTracker("sqlite:///rel.db", "other")  # a real store at ./rel.db, through the relative URI
    assert (tmp_path / "rel.db").is_file()
    line = cli_error(run_cli("report", "missing", "--tracking-uri", "sqlite:///rel.db", cwd=tmp_path))
    assert "experiment 'missing' does not exist in sqlite:///rel.db; allowed: other" in line, line
