"""ObGD: overshooting-bounded gradient descent with eligibility traces (Elsayed et al. 2024, Algorithm 3).

One update per transition, as TD(λ) does it:

    z ← γλ·z + ∇f(θ)                      (the trace of the gradients of f: v(s), or log π(a|s) + ...)
    M = α·κ·max(|δ|, 1)·‖z‖₁               (how far this step could move f, bounded by the TD error)
    θ ← θ + (α / max(M, 1))·δ·z
    z ← 0 at an episode's end (after its last update)

The step shrinks only when it would overshoot (M > 1), which is what lets streaming RL run with a
step size of 1.0 and no replay, batches or target networks. Here the caller backpropagates f itself
(not a loss) and ObGD *adds* δ·z: the semi-gradient TD form, readable against the paper's algorithm.

Sparsity: the traces are built from gradients, and a masked layer's pruned weights get a gradient of
exactly 0 (``rllib_sparse.sparsity.layers``), so their traces stay 0 and so do they, over any number
of steps. ``‖z‖₁`` then counts only kept weights. A trainable zero (SparseInit) gets gradients and moves.
"""

from __future__ import annotations

import torch


class ObGD(torch.optim.Optimizer):
    """``step(delta, reset)`` after ``f.backward()``: the trace update, the bounded step, the reset.

    Args:
        lr: α, the step size before bounding (stream-x: 1.0).
        gamma: γ, the discount of the TD error the caller computes.
        lamda: λ, the trace decay (stream-x: 0.8).
        kappa: κ, the overshooting bound (stream-x: 3 for the policy, 2 for the value).
    """

    def __init__(self, params, lr: float = 1.0, gamma: float = 0.99, lamda: float = 0.8, kappa: float = 2.0):
        for name, value, low in (("lr", lr, 0.0), ("gamma", gamma, 0.0), ("lamda", lamda, 0.0), ("kappa", kappa, 0.0)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= low:
                raise ValueError(f"{name}={value!r} is invalid; allowed: a number >= {low:g}")
        if gamma > 1 or lamda > 1:
            raise ValueError(f"gamma={gamma!r}, lamda={lamda!r}: allowed: numbers in [0, 1]")
        super().__init__(params, {"lr": lr, "gamma": gamma, "lamda": lamda, "kappa": kappa})
        for group in self.param_groups:
            for p in group["params"]:
                # The trace exists from construction (in the state dict, so a checkpoint resumes it).
                self.state[p]["trace"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    @torch.no_grad()
    def update(self, delta: float | torch.Tensor, reset: bool = False) -> float:
        """Update traces with the current ``.grad``s and move the parameters by the bounded δ·z.

        Returns the step size used (α, or α/M when bounded). A parameter without ``.grad`` contributes
        a gradient of 0: its trace only decays. ``step`` is the same update behind ``torch.optim``'s
        per-call wrapper (optimizer hooks, a profiler range: ~90 µs a call in a profile); a loop that
        updates once per env step calls ``update`` (docs/benchmarks.md, streaming RL).
        """
        delta = float(delta)
        used = 0.0
        for group in self.param_groups:
            params = group["params"]
            traces = [self.state[p]["trace"] for p in params]
            torch._foreach_mul_(traces, group["gamma"] * group["lamda"])
            with_grad = [(t, p.grad) for t, p in zip(traces, params) if p.grad is not None]
            if with_grad:
                torch._foreach_add_([t for t, _ in with_grad], [g for _, g in with_grad])
            # Not ``_foreach_norm(traces, 1)``: it was a fifth of a width-1024 CPU step in a profile; whether
            # abs().sum() is faster is not yet confirmed by benchmarks/obgd_update.py (docs/benchmarks.md).
            l1 = float(torch.stack([t.abs().sum() for t in traces]).sum()) if traces else 0.0
            bound = group["lr"] * group["kappa"] * max(abs(delta), 1.0) * l1
            used = group["lr"] / bound if bound > 1.0 else group["lr"]
            torch._foreach_add_(params, traces, alpha=used * delta)
            if reset:
                torch._foreach_zero_(traces)
        return used

    def step(self, delta: float | torch.Tensor, reset: bool = False) -> float:  # type: ignore[override]
        """``update`` as a ``torch.optim`` step (optimizer hooks and profiling apply)."""
        return self.update(delta, reset)
