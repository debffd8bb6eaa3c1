"""Wall-clock timing shared by the benchmark scripts (imported from the scripts' own folder)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def ms_per_call(fn: Callable[[], object], device: str, repeats: int) -> float:
    """Mean milliseconds of ``repeats`` calls, with the GPU's queue drained before and after on CUDA."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1000
