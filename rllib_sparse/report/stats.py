"""Aggregates over seeds: the mean (IQM from 5 seeds on) with a 95% percentile-bootstrap interval.

The IQM (interquartile mean: the mean of the middle half) is what Agarwal et al. (2021) recommend
for few-run RL results; below 5 runs it would drop too much of the data, so the plain mean is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IQM_MIN_RUNS = 5


@dataclass(frozen=True)
class Summary:
    center: float
    low: float
    high: float
    n: int
    method: str  # "mean" or "IQM"


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean of the middle half: ``int(n/4)`` values cut from each end (as ``scipy.stats.trim_mean``)."""
    x = np.sort(np.asarray(values, dtype=float), axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    return np.take(x, range(cut, n - cut), axis=axis).mean(axis=axis)


def summarize(values, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Summary:
    """Center and bootstrap interval of ``values`` (NaNs dropped); NaN summary when none are left."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if x.size == 0:
        return Summary(np.nan, np.nan, np.nan, 0, "mean")
    method = "IQM" if x.size >= IQM_MIN_RUNS else "mean"
    statistic = iqm if method == "IQM" else np.mean
    center = float(statistic(x))
    if x.size == 1:
        return Summary(center, center, center, 1, method)
    rng = np.random.default_rng(seed)
    samples = x[rng.integers(0, x.size, size=(resamples, x.size))]
    boot = statistic(samples, axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Summary(center, float(low), float(high), int(x.size), method)
