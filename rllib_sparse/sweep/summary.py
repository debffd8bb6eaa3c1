"""The summary a sweep prints at its end: the final return per width x sparsity, failures, and where
to look (Tune folder, MLflow)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from rllib_sparse import metrics as m
from rllib_sparse.sweep.tracking import runs_view, ui_command
from rllib_sparse.sweep.trial import PlannedTrial, runner_class


def trial_index(result, trials: list[PlannedTrial]) -> tuple[int | None, str]:
    """(grid index, name) of a Tune result. A trial whose actor never ran has no config in its result
    (``config`` None): it is found by its folder, which is named after its grid point."""
    config = result.config or {}
    if "index" in config:
        return config["index"], trials[config["index"]].point.name
    name = Path(str(result.path or "")).name
    index = next((i for i, t in enumerate(trials) if t.point.name == name), None)
    return index, name or "(a trial that never started)"


def summary(spec, trials, grid, failed, uri, experiment_dir, out, experiment_id: str | None = None,
            unfinished: list[str] = ()) -> None:
    """Final return per width x sparsity (and any training axis: a column each; mean over seeds), the
    failures, and where to look. A cell with a trial that did not reach its stop (an interrupted sweep)
    shows the return it had got to, marked ``*``."""
    final = {trial_index(r, trials)[0]: m.study_return(r.metrics or {}) for r in grid} if grid else {}
    evaluated = any(m.EVALUATION_RETURN in (r.metrics or {}) for r in grid or [])
    runner = runner_class(spec.algorithm)
    training_axes = [axis for axis in spec.grid if axis.startswith("training.")]
    cells: dict[tuple, list[float]] = {}
    partial: set[tuple] = set()
    for index, t in enumerate(trials):
        # The shared width when the grid scales it (actor and critic together), else the actor's.
        shape = t.point.model.network("actor")
        width = t.point.model.width or shape.width
        sparsity = runner.params(spec, t.point).get("sparsity", shape.sparsity)
        column = (sparsity, *(t.point.axes[axis] for axis in training_axes))
        ret = final.get(index)
        cells.setdefault((width, column), [])
        if ret is not None:
            cells[(width, column)].append(ret)
            if t.point.name in unfinished:
                partial.add((width, column))
    widths = sorted({w for w, _ in cells})
    columns = sorted({c for _, c in cells}, key=lambda c: tuple(str(v) if i else v for i, v in enumerate(c)))
    labels = [" ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in c) for c in columns]
    size = max([10, *(len(label) + 2 for label in labels)])
    out("")
    kind = "evaluation" if evaluated else "episode"
    out(f"final {kind} return (mean over seeds) of {spec.name!r}:")
    head = " ".join(["sparsity", *(axis[len("training."):] for axis in training_axes)])
    out(f"width \\ {head} ".rjust(17) + "".join(f"{label:>{size}}" for label in labels))
    for w in widths:
        row = [(cells.get((w, c)), (w, c) in partial) for c in columns]
        out(f"{w:>16} " + "".join((f"{statistics.fmean(v):.1f}" + ("*" if mark else "")).rjust(size) if v
                                  else f"{'-':>{size}}" for v, mark in row))
    if partial:
        out("* not finished: the return when the sweep was interrupted (--resume continues it)")
    if failed:
        out(f"FAILED trials ({len(failed)}): {', '.join(failed)}")
    out(f"Tune folder: {experiment_dir}")
    if uri:
        out(f"MLflow: {ui_command(uri)}   (experiment {spec.experiment_name!r})")
        if experiment_id is not None:
            # MLflow 3.17's UI opens in its GenAI mode (a traces overview); this opens the run table.
            out(f"        runs: {runs_view(uri, experiment_id)}")
    sys.stdout.flush()
