"""DDPG's math in one place, as the paper's code does it: actions, target, losses (pure torch).

With a deterministic tanh actor μ(s), a critic Q(s, a) and a target critic Q' (Polyak-averaged):

- acting:          a = clip(μ(s) + ε, −1, 1),   ε ~ N(0, σ_explore²)
- critic target:   y = r + γⁿ·(1 − terminated)·Q'(s', clip(μ(s') + ε', −1, 1)),   ε' ~ N(0, σ_target²)
- critic loss:     mean of w·(Q(s, a) − y)²                (w: replay importance weights, 1 if uniform)
- actor loss:      −mean Q(s, clip(μ(s) + ε'', −1, 1)),    ε'' ~ N(0, σ_actor²), critic held fixed

The paper's settings: σ_explore = σ_target = σ_actor = 0.1 and the target noise is *not* clipped
(TD3 clips it to ±0.5); the next action comes from the online actor (there is no target actor in the
authors' DDPG). Actions live in RLlib's normalised space [−1, 1].
"""

from __future__ import annotations

import torch


def noisy_action(action: torch.Tensor, std: float) -> torch.Tensor:
    """``clip(action + N(0, std²), −1, 1)``; ``std`` 0 returns the action unchanged."""
    if std <= 0.0:
        return action
    return (action + std * torch.randn_like(action)).clamp(-1.0, 1.0)


def td_target(reward: torch.Tensor, terminated: torch.Tensor, discount: torch.Tensor | float,
              q_next: torch.Tensor) -> torch.Tensor:
    """``r + discount·(1 − terminated)·Q'(s', a')``, no gradient. ``discount`` is γ to the n-step count."""
    return (reward + discount * (1.0 - terminated.float()) * q_next).detach()


def critic_loss(q: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared TD error (importance-weighted when the replay buffer is prioritised)."""
    squared = (q - target).pow(2)
    return (squared if weights is None else weights * squared).mean()


def actor_loss(q_of_actor_action: torch.Tensor) -> torch.Tensor:
    """Deterministic policy gradient: maximise Q(s, μ(s)), i.e. minimise its negative mean."""
    return -q_of_actor_action.mean()
