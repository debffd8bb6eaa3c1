"""From a sweep file to its trials: every grid point checked and counted on the driver, before training.

Each trial is planned by its algorithm's trial runner (``rllib_sparse.sweep.trial``): RLlib's
algorithms build their RL module on the ``meta`` device (shapes and densities, no memory).
"""

from __future__ import annotations

import dataclasses
import logging

from rllib_sparse.sweep.spec import SweepSpec
from rllib_sparse.sweep.trial import BYTES_PER_PARAMETER, PlannedTrial, runner_class

#: No node has this much memory: a planned trial above it is a typo, refused even by ``validate``.
MEMORY_CEILING_BYTES = 4 << 40


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.3g} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.3g} PiB"


def too_big(trial: PlannedTrial, limit: str) -> str:
    """One line: what the trial needs, and ``limit`` (e.g. "the largest node has 16 GiB")."""
    return (f"trial {trial.point.name} needs at least {format_bytes(trial.memory_bytes)} of memory "
            f"({trial.dense_params:,} parameters x {BYTES_PER_PARAMETER} bytes: weights, gradients, Adam "
            f"moments), but {limit}; allowed: a smaller width or depth")


def quiet_rllib() -> None:
    """RLlib's driver-side notices ("running PPO on the new API stack", deprecations) drown the
    progress lines, and planning builds a throwaway config per trial. RLlib sets its logger's level
    when it is imported, hence import first, then lower it."""
    import ray.rllib  # noqa: F401

    for name in ("ray.rllib", "ray._common.deprecation"):
        logging.getLogger(name).setLevel(logging.ERROR)


def plan(spec: SweepSpec, source: str = "sweep file") -> list[PlannedTrial]:
    """Every trial of the grid, checked and counted by its runner (nothing trains, nothing is allocated)."""
    quiet_rllib()
    runner = runner_class(spec.algorithm)
    trials = []
    for point in spec.points():
        trial = dataclasses.replace(runner.plan(spec, point, source), point=point)
        if trial.memory_bytes > MEMORY_CEILING_BYTES:
            raise ValueError(f"{source}: {too_big(trial, f'no machine has over {format_bytes(MEMORY_CEILING_BYTES)}')}")
        trials.append(trial)
    return trials
