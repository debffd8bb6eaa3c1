"""Why torch's default CPU Adam is slower on sparse networks: ``sqrt`` on exact zeros.

Masked gradients keep Adam's ``exp_avg_sq`` at exactly 0 for pruned weights, and the per-tensor Adam
calls ``exp_avg_sq.sqrt()`` every step. This times ``torch.sqrt(x, out=y)`` on 4M floats with 90% of
the entries set to a given value, side by side in one run.

    .venv/bin/python benchmarks/sqrt_zeros.py
"""

import statistics
import time

import torch


def median_ms(x: torch.Tensor, repeats: int = 50) -> float:
    out = torch.empty_like(x)
    for _ in range(3):
        torch.sqrt(x, out=out)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.sqrt(x, out=out)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def main() -> None:
    torch.manual_seed(0)
    n = 4 * 1024 * 1024
    base = torch.rand(n) + 0.1
    picked = torch.rand(n) < 0.9
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}")
    print("| 90% of entries | sqrt ms | vs no special value |")
    print("|---|---|---|")
    reference = median_ms(base)
    print(f"| (random, none set) | {reference:.2f} | 1.00 |")
    for value in (0.0, 1.0, 1e-3):
        x = base.clone()
        x[picked] = value
        ms = median_ms(x)
        print(f"| {value:g} | {ms:.2f} | {ms / reference:.2f} |")


if __name__ == "__main__":
    main()
