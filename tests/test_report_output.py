"""``report --out`` never removes what it did not write: a real MLflow store, real files, the real CLI."""

import hashlib

import pytest

from conftest import run_cli


@pytest.fixture
def study_folder(tmp_path, monkeypatch):
    """A folder as a user has it after a sweep: ./mlruns (a real MLflow SQLite store) and the sweep file."""
    from rllib_sparse.sweep.tracking import SweepTracker, default_tracking_uri

    monkeypatch.chdir(tmp_path)
    tracker = SweepTracker(default_tracking_uri(tmp_path), "mini")
    tracker.start_parent("mini-1")
    for width, sparsity in [(16, 0.0), (16, 0.9), (32, 0.0), (32, 0.9)]:
        name = f"simba-w{width}-d1-s{sparsity:g}-seed0"
        tracker.child_run(name, "t", {"env": "CartPole-v1", "width": width, "depth": 1, "sparsity": sparsity,
                                      "seed": 0, "dense_params": width * 100,
                                      "nonzero_params": int(width * 100 * (1 - sparsity))}, {})
        tracker.log_metrics(name, {"episode_return_mean": 10.0 + width * (1 - sparsity), "env_steps": 100}, step=100)
        tracker.end_trial(name, "FINISHED")
    tracker.end_parent("FINISHED")
    (tmp_path / "mini.yaml").write_text("name: mini\n")
    return tmp_path


def snapshot(folder):
    """Every file under ``folder`` with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def report(folder, out):
    return run_cli("report", "mini", "--out", str(out), cwd=folder)


def one_error(run) -> str:
    assert run.returncode == 2, run.stdout[-1500:] + run.stderr[-1500:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("rllib-sparse: error:")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_report_into_the_folder_holding_the_store_is_refused_and_touches_nothing(study_folder):
    before = snapshot(study_folder)
    line = one_error(report(study_folder, "."))
    assert f"--out='{study_folder}' is a folder with other content" in line
    assert snapshot(study_folder) == before  # the MLflow database and the sweep file are intact


def test_report_refuses_an_existing_file_and_a_folder_of_other_files(study_folder):
    assert "is an existing file" in one_error(report(study_folder, "mini.yaml"))
    (study_folder / "mine").mkdir()
    (study_folder / "mine" / "notes.txt").write_text("keep me")
    assert "is a folder with other content" in one_error(report(study_folder, "mine"))
    assert (study_folder / "mine" / "notes.txt").read_text() == "keep me"
    assert "mini.yaml is a file; allowed: a folder path" in one_error(report(study_folder, "mini.yaml/sub"))


def test_report_rewrites_its_own_folder_but_not_files_added_to_it(study_folder):
    first = report(study_folder, "out")
    assert first.returncode == 0, first.stderr[-2000:]
    out = study_folder / "out"
    written = {p.name for p in out.iterdir()}
    assert {"report.html", "scaling.png", "heatmap.png", ".rllib-sparse-report.json"} <= written
    again = report(study_folder, "out")  # an earlier report of ours: replaced
    assert again.returncode == 0 and {p.name for p in out.iterdir()} == written
    assert not [p for p in study_folder.iterdir() if p.name.startswith(".out-")]  # no staging left over
    (out / "mine.txt").write_text("keep me")
    line = one_error(report(study_folder, "out"))
    assert "holds files an earlier report did not write (mine.txt)" in line
    assert (out / "mine.txt").read_text() == "keep me" and (out / "report.html").exists()


def test_report_fills_an_empty_folder_and_keeps_it(study_folder):
    empty = study_folder / "empty"
    empty.mkdir()
    inode = empty.stat().st_ino
    run = report(study_folder, "empty")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (empty / "report.html").exists() and empty.stat().st_ino == inode


def test_size_labels_name_the_critic_width_where_it_is_set_apart():
    """The paper's studies scale the actor with the critic (128/512, 256/1024, ...): a label with the
    actor's width alone would call a 512-wide critic "w128"."""
    from rllib_sparse.report.figures import size_label
    from rllib_sparse.report.study import Trial

    def trial(**params):
        return Trial("r", "t", "FINISHED", {k: str(v) for k, v in params.items()}, {}, 0)

    assert size_label(trial(width=64, depth=1, critic_width=256), depths_vary=False) == "w64/256"
    assert size_label(trial(width=64, depth=1, critic_width=256), depths_vary=True) == "w64/256-d1"
    assert size_label(trial(width=32, depth=2, critic_width=32), depths_vary=False) == "w32"
    assert size_label(trial(width=32, depth=2), depths_vary=True) == "w32-d2"  # runs logged before critic_width


def test_trials_that_differ_in_a_training_axis_are_separate_series_never_averaged():
    """A ``training.<name>`` grid axis (streaming RL's ``init``, a learning-rate sweep) is a curve and a
    heat-map column of its own; settings the whole study shares add nothing to the labels."""
    from rllib_sparse.report.figures import heatmap_figure
    from rllib_sparse.report.study import Study, Trial, mark_variants

    def trial(name, sparsity, init, ret):
        params = {"env": "Walker2d-v5", "width": "128", "depth": "2", "sparsity": str(sparsity), "seed": "0",
                  "dense_params": "1000", "training.init": init, "training.gamma": "0.99"}
        return Trial(name, name, "FINISHED", params, {"episode_return_mean": ret}, 0)

    trials = [trial("a", 0.0, "dense", 1.0), trial("b", 0.9, "sparse_init", 2.0), trial("c", 0.9, "static_mask", 5.0)]
    mark_variants(trials)
    assert [t.series.label for t in trials] == ["dense, init=dense", "sparsity 0.9, init=sparse_init",
                                                "sparsity 0.9, init=static_mask"]
    assert len({t.series for t in trials}) == 3
    figure = heatmap_figure(Study("uri", "x", "1", None, trials, client=None))
    ax = figure.axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["0 dense", "0.9 sparse_init", "0.9 static_mask"]
    assert ax.get_xlabel() == "sparsity, init"
    assert sorted(float(text.get_text().split("\n")[0]) for text in ax.texts) == [1.0, 2.0, 5.0]
