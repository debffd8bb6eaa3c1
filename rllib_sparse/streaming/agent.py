"""Stream AC(λ) for continuous actions (Elsayed et al. 2024), on this project's networks, in one place.

Per env step, one forward and one backward per network, no replay, no batch, no target network:

    δ = r̃ + γ·(1 − terminated)·v(s') − v(s)                 r̃: the scaled reward; s, s': normalised
    critic:  f = v(s)                                 → ObGD(κ_value).update(δ)
    actor:   f = log π(a|s) + c·sign(δ)·H(π(·|s))      → ObGD(κ_policy).update(δ)
    at an episode's end (terminated or truncated) both traces are reset after the update.

With ObGD adding δ·z, the actor's entropy term moves by c·|δ|·∇H: it always raises the entropy, scaled by
the size of the error. The policy is a diagonal Gaussian (mean and softplus std heads); the sampled
action is sent to the env clipped to its bounds, and its log-probability is that of the unclipped
sample. Truncation (a time limit) bootstraps from v(s') and still resets the traces.

Initialisations (``init``): ``dense``, ``sparse_init`` (stream-x's, trainable zeros) or ``static_mask``
(this project's masks, ``allocation`` Erdős–Rényi or uniform): ``rllib_sparse.streaming.init``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rllib_sparse.networks import SparseModelConfig, build_network
from rllib_sparse.sparsity import sparsify
from rllib_sparse.sparsity.prune import kept_count
from rllib_sparse.streaming.init import INITS, sparse_init_, uniform_fan_in_
from rllib_sparse.streaming.normalize import ObservationNormalizer, RewardScaler
from rllib_sparse.streaming.obgd import ObGD


@dataclass(frozen=True)
class StreamACSettings:
    """Stream AC(λ)'s settings; the defaults are stream-x's."""

    lr: float = 1.0
    gamma: float = 0.99
    lamda: float = 0.8
    kappa_policy: float = 3.0
    kappa_value: float = 2.0
    entropy_coeff: float = 0.01


class Actor(nn.Module):
    """A diagonal Gaussian policy: a body, then mean and softplus(std) heads."""

    def __init__(self, body: nn.Module, act_dim: int):
        super().__init__()
        self.body = body
        self.mean = nn.Linear(body.output_dim, act_dim)
        self.std = nn.Linear(body.output_dim, act_dim)

    def forward(self, obs: torch.Tensor) -> torch.distributions.Normal:
        features = self.body(obs)
        return torch.distributions.Normal(self.mean(features), F.softplus(self.std(features)) + 1e-6)


class Critic(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body
        self.value = nn.Linear(body.output_dim, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(self.body(obs)).squeeze(-1)


def _clear_grads(params: list[nn.Parameter]) -> None:
    """``zero_grad(set_to_none=True)`` without its per-call dynamo guard (~90 µs in a profile): each update
    must see only its own gradient."""
    for p in params:
        p.grad = None


def default_model() -> SparseModelConfig:
    """stream-x's networks: 2 hidden layers of 128 (LayerNorm, LeakyReLU), 90% sparse."""
    return SparseModelConfig.parse({"model": "layernorm_mlp", "width": 128, "depth": 2, "sparsity": 0.9})


def build_networks(obs_dim: int, act_dim: int, model: SparseModelConfig, init: str,
                   generator: torch.Generator | None = None) -> tuple[Actor, Critic, dict[str, dict[str, float]]]:
    """The actor and critic of ``model`` under ``init``, and each network's static-mask densities.

    With a ``generator`` the weights get their initialisation (``rllib_sparse.streaming.init``) before
    any mask is drawn; without one (planning on the ``meta`` device) they keep PyTorch's default.
    """
    if init not in INITS:
        raise ValueError(f"init={init!r} is not known; allowed: {', '.join(INITS)}")
    networks, densities = [], {}
    for offset, role in enumerate(("actor", "critic")):
        shape = model.network(role)
        body = build_network(shape.model, (obs_dim,), shape.width, shape.depth)
        net = Actor(body, act_dim) if role == "actor" else Critic(body)
        if generator is not None:
            if init == "sparse_init":
                sparse_init_(net, shape.sparsity, generator)
            else:
                uniform_fan_in_(net, generator)
        densities[role] = {}
        if init == "static_mask" and shape.sparsity > 0:
            densities[role] = sparsify(net, shape.sparsity, allocation=shape.allocation, seed=model.seed + offset,
                                       keep_first_dense=model.keep_first_dense,
                                       keep_last_dense=model.keep_last_dense, rescale=model.rescale)
        networks.append(net)
    actor, critic = networks
    return actor, critic, densities


def planned_layers(obs_dim: int, act_dim: int, model: SparseModelConfig, init: str) -> dict[str, dict]:
    """Per network, its parameter count and each weight layer's shape, density and non-zero count,
    built on the ``meta`` device (no memory, no compute): what ``rllib-sparse validate`` counts.

    The density is the fraction of weights that can be non-zero while training: the masks' under
    ``static_mask``; 1.0 under ``dense`` and under ``sparse_init``, whose zeros are trainable.
    """
    with torch.device("meta"):
        actor, critic, densities = build_networks(obs_dim, act_dim, model, init)
    out = {}
    for role, net in (("actor", actor), ("critic", critic)):
        rows = []
        for name, layer in net.named_modules():
            if isinstance(layer, nn.Linear):
                density = densities[role].get(name, 1.0)
                total = layer.weight.numel()
                rows.append({"layer": name, "shape": list(layer.weight.shape), "density": density,
                             "nonzero": kept_count(total, density), "total": total})
        out[role] = {"parameters": sum(p.numel() for p in net.parameters()), "layers": rows}
    return out


class StreamAC:
    """Networks, ObGD optimizers, normalisers; ``act`` then ``learn`` once per env step.

    ``model`` gives each network's registered body, width, depth, sparsity and allocation (the sweep
    file's ``model`` section); ``init`` says what the sparsity means: none (``dense``), stream-x's
    per-row trainable zeros (``sparse_init``) or this project's fixed masks (``static_mask``).
    """

    def __init__(self, obs_dim: int, act_dim: int, model: SparseModelConfig | None = None, *,
                 init: str = "sparse_init", settings: StreamACSettings | None = None):
        model = model or default_model()
        self.settings = settings or StreamACSettings()
        self.actor, self.critic, _ = build_networks(obs_dim, act_dim, model, init,
                                                    torch.Generator().manual_seed(model.seed))
        s = self.settings
        self.policy_optimizer = ObGD(self.actor.parameters(), lr=s.lr, gamma=s.gamma, lamda=s.lamda,
                                     kappa=s.kappa_policy)
        self.value_optimizer = ObGD(self.critic.parameters(), lr=s.lr, gamma=s.gamma, lamda=s.lamda,
                                    kappa=s.kappa_value)
        self.actor_params, self.critic_params = list(self.actor.parameters()), list(self.critic.parameters())
        self.obs_norm = ObservationNormalizer((obs_dim,))
        self.reward_scale = RewardScaler(s.gamma)
        self.rng = torch.Generator().manual_seed(model.seed + 2)

    def networks(self) -> dict[str, tuple[nn.Module, nn.Module]]:
        """(body, head) of each network, for the paper's diagnostics: the actor's mean head, the value head."""
        return {"actor": (self.actor.body, self.actor.mean), "critic": (self.critic.body, self.critic.value)}

    def normalize(self, obs) -> torch.Tensor:
        """The observation as the networks see it (updating the running statistics)."""
        return torch.from_numpy(self.obs_norm(obs))

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> np.ndarray:
        dist = self.actor(obs)
        return (dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=self.rng)).numpy()

    def learn(self, obs: torch.Tensor, action: np.ndarray, reward: float, next_obs: torch.Tensor,
              terminated: bool, truncated: bool) -> float:
        """One Stream AC(λ) update from one transition (normalised observations); returns δ."""
        done = terminated or truncated
        reward = self.reward_scale(reward, done)
        value = self.critic(obs)
        with torch.no_grad():
            next_value = 0.0 if terminated else float(self.critic(next_obs))
        delta = reward + self.settings.gamma * next_value - float(value.detach())

        _clear_grads(self.critic_params)
        value.backward()
        self.value_optimizer.update(delta, reset=done)

        dist = self.actor(obs)
        log_prob = dist.log_prob(torch.as_tensor(action)).sum()
        objective = log_prob + self.settings.entropy_coeff * float(np.sign(delta)) * dist.entropy().sum()
        _clear_grads(self.actor_params)
        objective.backward()
        self.policy_optimizer.update(delta, reset=done)
        return delta

    # ---------------------------------------------------------------- checkpoints: exact resume

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "policy_optimizer": self.policy_optimizer.state_dict(),
                "value_optimizer": self.value_optimizer.state_dict(), "obs_norm": self.obs_norm.state_dict(),
                "reward_scale": self.reward_scale.state_dict(), "rng": self.rng.get_state(),
                "settings": asdict(self.settings)}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.policy_optimizer.load_state_dict(state["policy_optimizer"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.obs_norm.load_state_dict(state["obs_norm"])
        self.reward_scale.load_state_dict(state["reward_scale"])
        self.rng.set_state(state["rng"])
