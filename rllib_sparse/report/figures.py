"""The report's figures (matplotlib, no display needed): scaling curves, heat maps, diagnostics."""

from __future__ import annotations

import math
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rllib_sparse import metrics  # noqa: E402
from rllib_sparse.report.stats import summarize  # noqa: E402
from rllib_sparse.report.study import Series, Study, Trial  # noqa: E402

#: Diagnostic curves drawn per network: (metric suffix after ``diag/<network>/``, axis label).
DIAGNOSTIC_CURVES = (("srank", "srank (δ = 0.01)"), ("dormant", "dormant ratio"),
                     ("grad_norm", "gradient norm"), ("param_norm", "parameter norm"))


def size_label(trial: Trial, depths_vary: bool) -> str:
    """``w<width>`` (``w<actor>/<critic>`` where the critic is set apart, as ``validate`` prints it)."""
    width = f"w{trial.width}" if trial.critic_width == trial.width else f"w{trial.width}/{trial.critic_width}"
    return f"{width}-d{trial.depth}" if depths_vary else width


def _depths_vary(trials: list[Trial]) -> bool:
    return len({t.depth for t in trials}) > 1


def _sizes(trials: list[Trial]) -> list[tuple[int, int]]:
    """(width, depth) configurations ordered by dense parameter count."""
    by_size = {(t.width, t.depth): t.dense_params for t in trials}
    return sorted(by_size, key=lambda size: (by_size[size], size))


def _series_style(series: Series, all_series: list[Series]) -> dict:
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(all_series), 2)))
    color = colors[sorted(all_series).index(series)]
    return {"color": color, "linestyle": "--" if series.dense else "-", "marker": "o", "label": series.label}


def _series_name(all_series: list[Series]) -> str:
    """What the series vary in: ``sparsity`` or e.g. ``sparsity, init``."""
    keys = [key for key, _ in all_series[0].variant] if all_series else []
    return ", ".join(["sparsity", *keys])


def _envs(study: Study) -> list[str]:
    return sorted({t.env for t in study.trials})


def scaling_figure(study: Study) -> Figure:
    """Final return vs total and vs non-zero parameters: a line per sparsity (and varying training
    setting: ``Series``), mean/IQM ± 95% CI."""
    envs = _envs(study)
    fig, axes = plt.subplots(len(envs), 2, figsize=(12, 4.2 * len(envs)), squeeze=False)
    for row, env in enumerate(envs):
        finished = [t for t in study.finished if t.env == env]
        all_series = sorted({t.series for t in finished})
        for col, (x_of, x_label) in enumerate(((lambda t: t.dense_params, "total parameters"),
                                               (lambda t: t.nonzero_params, "non-zero parameters"))):
            ax = axes[row][col]
            for series in all_series:
                groups: dict[tuple, list[Trial]] = defaultdict(list)
                for t in finished:
                    if t.series == series:
                        groups[(t.width, t.depth)].append(t)
                points = sorted((x_of(ts[0]), summarize([t.final_return for t in ts])) for ts in groups.values())
                points = [(x, s) for x, s in points if s.n]
                if not points:
                    continue
                xs = np.array([x for x, _ in points], dtype=float)
                style = _series_style(series, all_series)
                ax.plot(xs, [s.center for _, s in points], **style)
                ax.fill_between(xs, [s.low for _, s in points], [s.high for _, s in points],
                                color=style["color"], alpha=0.15, linewidth=0)
            ax.set_xscale("log")
            ax.set_xlabel(x_label)
            ax.set_ylabel("final return")
            ax.set_title(f"{env}: return vs {x_label}")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def heatmap_figure(study: Study) -> Figure:
    """Width × sparsity heat map of the final return (mean/IQM over finished seeds) per env."""
    envs = _envs(study)
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4.5), squeeze=False)
    for col, env in enumerate(envs):
        ax = axes[0][col]
        trials = [t for t in study.trials if t.env == env]
        sizes, all_series = _sizes(trials), sorted({t.series for t in trials})
        vary = _depths_vary(trials)
        grid = np.full((len(sizes), len(all_series)), np.nan)
        texts = {}
        for i, (width, depth) in enumerate(sizes):
            for j, series in enumerate(all_series):
                cell = [t for t in trials if (t.width, t.depth, t.series) == (width, depth, series)]
                summary = summarize([t.final_return for t in cell if t.finished])
                grid[i, j] = summary.center
                unfinished = sum(not t.finished for t in cell)
                text = f"{summary.center:.1f}\nn={summary.n}" if summary.n else ""
                texts[(i, j)] = text + (f"\n+{unfinished} running" if unfinished else "")
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto", origin="lower")
        for (i, j), text in texts.items():
            value = grid[i, j]
            dark = np.isfinite(value) and image.norm(value) < 0.5  # viridis is dark at its low end
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black" if np.isfinite(value) else "gray")
        fig.colorbar(image, ax=ax, label="final return")
        ax.set_xticks(range(len(all_series)), [s.short for s in all_series])
        labels = [size_label(next(t for t in trials if (t.width, t.depth) == size), vary) for size in sizes]
        ax.set_yticks(range(len(sizes)), labels)
        ax.set_xlabel(_series_name(all_series))
        ax.set_ylabel("width")
        ax.set_title(f"{env}: final return")
    fig.tight_layout()
    return fig


def _curve_key(study: Study, network: str, curve: str) -> str | None:
    keys = [k for k in study.diagnostic_keys() if k.startswith(metrics.diagnostic(network, ""))]
    if curve == "dormant":  # the paper's convention (percent) first, then the largest τ logged
        dormant = [k for k in keys
                   if k.count("/") == 2 and k.split("/")[2].startswith(("dormant_tau", "dormant_pct_tau"))]
        return max(dormant, key=lambda k: ("dormant_pct" in k, float(k.rsplit("tau", 1)[1])), default=None)
    key = metrics.diagnostic(network, curve)
    return key if key in keys else None


def _dormant_label(key: str) -> str:
    tau = key.rsplit("tau", 1)[1]
    if "dormant_pct" in key:
        return f"dormant % (pre-activation, τ {tau})"
    return f"dormant fraction (post-activation, τ {tau})"


def diagnosed_networks(study: Study) -> list[str]:
    return sorted({k.split("/")[1] for k in study.diagnostic_keys()})


def diagnostics_figure(study: Study, env: str, network: str) -> Figure | None:
    """Diagnostic curves over training, dense vs sparse, one column per width (mean over seeds)."""
    curves = [(curve, label, _curve_key(study, network, curve)) for curve, label in DIAGNOSTIC_CURVES]
    curves = [(curve, label, key) for curve, label, key in curves if key]
    trials = [t for t in study.trials if t.env == env]
    if not curves or not trials:
        return None
    sizes, all_series, vary = _sizes(trials), sorted({t.series for t in trials}), _depths_vary(trials)
    fig, axes = plt.subplots(len(curves), len(sizes), figsize=(4.2 * len(sizes), 3.0 * len(curves)),
                             squeeze=False)
    for j, (width, depth) in enumerate(sizes):
        for i, (_, label, key) in enumerate(curves):
            ax = axes[i][j]
            for series in all_series:
                runs = [t for t in trials if (t.width, t.depth, t.series) == (width, depth, series)]
                steps, values = _mean_curve([study.history(t, key) for t in runs])
                if len(steps):
                    ax.plot(steps, values, **{**_series_style(series, all_series), "markersize": 3})
            if i == 0:
                first = next(t for t in trials if (t.width, t.depth) == (width, depth))
                ax.set_title(f"{network}, {size_label(first, vary)}")
            if j == 0:
                ax.set_ylabel(label if "dormant" not in key else _dormant_label(key))
            if i == len(curves) - 1:
                ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for row in axes:
        for ax in row:
            if len(ax.get_legend_handles_labels()[1]) > len(labels):
                handles, labels = ax.get_legend_handles_labels()
    top = 1 - 0.45 / fig.get_figheight()  # room for the title and the legend, whatever the height
    if labels:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), fontsize=9)
    fig.suptitle(f"{env}: {network} diagnostics", y=1.0, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, top))
    return fig


def _mean_curve(histories: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Seeds averaged on the steps of the shortest history (others interpolated onto them)."""
    histories = [[(s, v) for s, v in h if math.isfinite(v)] for h in histories]
    histories = [h for h in histories if h]
    if not histories:
        return np.array([]), np.array([])
    base = np.array([s for s, _ in min(histories, key=lambda h: h[-1][0])], dtype=float)
    values = [np.interp(base, [s for s, _ in h], [v for _, v in h]) for h in histories]
    return base, np.mean(values, axis=0)


def interference_figure(study: Study, env: str) -> Figure | None:
    """Gradient-cosine matrices (the last saved, first seed) on a width × sparsity grid, per network."""
    trials = [t for t in study.trials if t.env == env]
    sizes, all_series, vary = _sizes(trials), sorted({t.series for t in trials}), _depths_vary(trials)
    cells: dict[tuple, tuple[int, dict]] = {}
    for width, depth in sizes:
        for series in all_series:
            runs = sorted((t for t in trials if (t.width, t.depth, t.series) == (width, depth, series)),
                          key=lambda t: (not t.finished, t.seed))
            for t in runs:
                found = study.latest_cosines(t)
                if found is not None:
                    cells[(width, depth, series)] = (t, *found)
                    break
    if not cells:
        return None
    networks = sorted({n for _, _, matrices in cells.values() for n in matrices})
    fig, axes = plt.subplots(len(sizes), len(all_series) * len(networks),
                             figsize=(2.8 * len(all_series) * len(networks), 2.8 * len(sizes)), squeeze=False)
    image = None
    for i, (width, depth) in enumerate(sizes):
        for k, network in enumerate(networks):
            for j, series in enumerate(all_series):
                ax = axes[i][k * len(all_series) + j]
                ax.set_xticks([])
                ax.set_yticks([])
                cell = cells.get((width, depth, series))
                if cell is None or network not in cell[2]:
                    ax.set_axis_off()
                    continue
                trial, iteration, matrices = cell
                matrix = np.asarray(matrices[network], dtype=float)
                image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
                off = matrix[~np.eye(len(matrix), dtype=bool)]
                ax.set_title(f"{network} {size_label(trial, vary)} s{series.short}\n"
                             f"mean cos {off.mean():.2f} (iter {iteration})", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="cosine of per-sample gradients")
    fig.suptitle(f"{env}: gradient interference", x=0.02, ha="left")
    return fig
