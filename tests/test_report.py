"""The report from a real small sweep in a real MLflow store, opened in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.ray

SWEEP = {
    "name": "report-study",
    "algorithm": "PPO",
    "env": "CartPole-v1",
    "model": {"model": "simba", "depth": 1},
    "grid": {"width": [16, 32], "sparsity": [0.0, 0.8]},
    "training": {"lr": 0.001, "train_batch_size_per_learner": 256, "minibatch_size": 128, "num_epochs": 1},
    "stop": {"iterations": 3},
    "diagnostics": {"every": 1, "batch_size": 128, "interference_samples": 8, "save_matrix_at": [1]},
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _cli(*args, cwd, timeout=600):
    exe = Path(sys.executable).with_name("rllib-sparse")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not on PATH: run `bash scripts/setup.sh --test` as root "
                    "(or apt-get install chromium)")
    return found


def _browser(*args, cwd):
    """Headless Chromium as a sandboxed container allows it; its own profile in the test's folder."""
    return subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={cwd / 'chromium-profile'}", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished 2 x 2 sweep with diagnostics, plus one trial still running (a real child run)."""
    from rllib_sparse.sweep.tracking import SweepTracker

    folder = tmp_path_factory.mktemp("report")
    (folder / "study.yaml").write_text(yaml.safe_dump(SWEEP))
    run = _cli("sweep", "study.yaml", "--num-cpus", "2", cwd=folder)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    uri = f"sqlite:///{folder}/mlruns/mlflow.db"
    tracker = SweepTracker(uri, SWEEP["name"])
    parent = tracker.client.search_runs([tracker.experiment_id], "tags.`rllib_sparse.sweep` != ''")[0]
    tracker.parent_run_id = parent.info.run_id
    tracker.load_children()
    tracker.child_run("simba-w64-d1-s0.8-seed0", "t-running",
                      {"env": "CartPole-v1", "width": 64, "depth": 1, "sparsity": 0.8, "seed": 0,
                       "dense_params": 60000, "nonzero_params": 12000}, {})
    tracker.log_metrics("simba-w64-d1-s0.8-seed0", {"episode_return_mean": 12.5, "env_steps": 256}, step=256)
    return folder, uri, parent.info.run_id


def test_report_of_a_real_sweep_opens_in_chromium_with_every_plot(study):
    folder, uri, parent_run_id = study
    run = _cli("report", SWEEP["name"], "--out", "out", cwd=folder)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "5 trials (4 finished, 1 running)" in run.stdout
    out = folder / "out"
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["diagnostics-cartpole-v1-actor.png", "diagnostics-cartpole-v1-critic.png", "heatmap.png",
                    "interference-cartpole-v1.png", "scaling.png"]
    import matplotlib.image

    for name in pngs:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and min(image.shape[:2]) > 200 and image.std() > 0.05, name  # a real picture

    page = (out / "report.html").read_text()
    assert "http://" not in page and "https://" not in page  # self-contained: opens with no network
    assert page.count("data:image/png;base64,") == len(pngs)
    running_row = re.search(r'<tr class="RUNNING">(.*?)</tr>', page).group(1)
    assert "simba-w64-d1-s0.8-seed0" in running_row and "12.50" in running_row
    assert page.count('<tr class="FINISHED">') == 4

    dom = _browser("--virtual-time-budget=10000", "--dump-dom", (out / "report.html").as_uri(), cwd=folder)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'data-images="{len(pngs)}/{len(pngs)}"' in dom.stdout  # every plot decoded in the browser
    shot = folder / "screenshot.png"
    taken = _browser("--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={shot}",
                     (out / "report.html").as_uri(), cwd=folder)
    assert taken.returncode == 0 and shot.read_bytes().startswith(PNG_MAGIC), taken.stderr[-2000:]
    assert matplotlib.image.imread(shot).std() > 0.05  # the page shows content, not a blank window

    logged = {a.path for a in MlflowClient(uri).list_artifacts(parent_run_id, "report")}
    assert {f"report/{name}" for name in pngs} | {"report/report.html"} <= logged


def test_report_says_when_the_experiment_is_missing_or_unfinished(study, tmp_path):
    folder, uri, _ = study
    run = _cli("report", "no-such-study", "--out", str(tmp_path / "a"), cwd=folder)
    assert run.returncode == 2 and not (tmp_path / "a").exists()
    assert run.stderr.strip().splitlines() == [
        f"rllib-sparse: error: experiment 'no-such-study' does not exist in {uri}; allowed: {SWEEP['name']}"]

    from rllib_sparse.sweep.tracking import SweepTracker

    tracker = SweepTracker(uri, "started-only")
    tracker.start_parent("started-only-1")
    tracker.child_run("simba-w16-d1-s0-seed0", "t0", {"width": 16}, {})
    run = _cli("report", "started-only", "--out", str(tmp_path / "b"), cwd=folder)
    assert run.returncode == 2 and not (tmp_path / "b").exists()
    assert "experiment 'started-only' has no finished runs yet (1 running)" in run.stderr

    run = _cli("report", "x", "--tracking-uri", f"sqlite:///{tmp_path}/none.db", cwd=folder)
    assert run.returncode == 2 and "no MLflow store there" in run.stderr and not (tmp_path / "none.db").exists()


def _page_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_the_printed_runs_address_opens_mlflows_run_table_in_chromium(study):
    """What ``sweep`` prints as ``runs:`` opens the parent run's table in MLflow's own UI (a real
    server on the study's store), not MLflow 3's GenAI traces overview ("No data available")."""
    from rllib_sparse.sweep.mlflow_server import local_mlflow_server
    from rllib_sparse.sweep.tracking import runs_view

    folder, uri, parent_run_id = study
    experiment = MlflowClient(uri).get_experiment_by_name(SWEEP["name"])
    parent_name = MlflowClient(uri).get_run(parent_run_id).info.run_name
    with local_mlflow_server(folder / "mlruns", 5071) as server:
        address = runs_view(server, experiment.experiment_id)
        page = _browser("--virtual-time-budget=20000", "--dump-dom", address, cwd=folder)
    assert page.returncode == 0, page.stderr[-2000:]
    text = _page_text(page.stdout)
    assert "Runs - Experiment" in text and parent_name in text, text[:1500]
    assert "No data available" not in text and "Token Usage" not in text
