"""What every sparse RL module shares: its network layout, pruning right after ``setup()``, the sizes.

Each algorithm's module is RLlib's default module for that algorithm with two changes: its Catalog
builds our networks, and right after ``setup()`` every network is pruned once (:func:`sparsify`) with
its own width/depth/sparsity. Target networks are deep copies made later by the Learner, so they
inherit the masks; env runners build the same module (masks are seeded by layer name) and also receive
the masks with every weight sync.

Which sub-modules form which network is the module's :meth:`SparseModuleMixin.network_layout`: the one
place that says how each network is pruned (its role's width, depth and sparsity), whether it is
diagnosed, and which optimizer trains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_sparse.diagnostics import Heads
from rllib_sparse.networks import SparseModelConfig
from rllib_sparse.networks.registry import check_obs_shape
from rllib_sparse.rllib.core.encoders import BatchEncoder
from rllib_sparse.rllib.core.model_config import parse_model_config
from rllib_sparse.sparsity import SparsityReport, sparsify, sparsity_report
from rllib_sparse.sparsity.prune import kept_count


@dataclass(frozen=True)
class Network:
    """One network of a module, as its pruning, diagnostics and optimizer see it."""

    #: Whose width/depth/sparsity it takes from the sparse config: "actor" or "critic".
    role: str
    #: Its sub-modules in order, the encoder first. A network whose encoder is absent (the critic on an
    #: inference-only env-runner copy, SAC's twin with ``twin_q=False``) is skipped; absent heads (DQN
    #: without dueling) are left out.
    parts: tuple[str, ...]
    #: Whether the paper's diagnostics measure it. A twin critic mirrors the critic and would double
    #: the cost (the paper's SAC has a single critic), so it is not.
    diagnosed: bool = True
    #: The name of the Learner optimizer that trains it, where the Learner wires one optimizer per
    #: network (SAC and DDPG: "policy", "qf", "qf_twin"); None where RLlib's Learner wires its own.
    optimizer: str | None = None
    #: The config attribute holding that optimizer's learning rate ("actor_lr", "critic_lr").
    lr: str | None = None


#: ``network name -> Network``; the names are the ones reports, diagnostics and MLflow use.
NetworkLayout = dict[str, Network]

#: An actor ``pi_encoder``/``pi`` and Q networks ``qf_encoder``/``qf`` (plus ``qf_twin_*`` with
#: ``twin_q``) on RLlib's SAC module layout, one optimizer each: SAC's and DDPG's networks.
ACTOR_AND_Q_LAYOUT: NetworkLayout = {
    "actor": Network("actor", ("pi_encoder", "pi"), optimizer="policy", lr="actor_lr"),
    "critic": Network("critic", ("qf_encoder", "qf"), optimizer="qf", lr="critic_lr"),
    "critic_twin": Network("critic", ("qf_twin_encoder", "qf_twin"), diagnosed=False, optimizer="qf_twin",
                           lr="critic_lr"),
}


class SparseModuleMixin:
    """Validates the sparse config, builds the module via RLlib's ``setup()``, then prunes it."""

    default_catalog_class: type

    def __init__(self, *args, **kwargs):
        if kwargs.get("catalog_class") is None:
            kwargs["catalog_class"] = self.default_catalog_class
        super().__init__(*args, **kwargs)

    def network_layout(self) -> NetworkLayout:
        raise NotImplementedError

    def present_networks(self) -> dict[str, tuple[Network, list[str]]]:
        """The networks of ``network_layout`` this copy holds, with the sub-modules it has."""
        present = {}
        for name, network in self.network_layout().items():
            if _has_submodule(self, network.parts[0]):
                present[name] = (network, [p for p in network.parts if _has_submodule(self, p)])
        return present

    def parameter_counts(self) -> dict[str, int]:
        """Dense and non-zero trainable parameters over all networks, from the allocation alone.

        Works on a module built on the ``meta`` device (no memory, no masks drawn), so the size of
        every trial of a grid can be planned before anything trains.
        """
        dense = sum(p.numel() for p in self.parameters() if p.requires_grad)
        pruned = 0
        for densities in self.sparse_densities.values():
            for name, density in densities.items():
                numel = self.get_submodule(name).weight.numel()
                pruned += numel - kept_count(numel, density)
        return {"dense": dense, "nonzero": dense - pruned}

    def planned_layers(self) -> dict[str, list[dict]]:
        """Per network, each pruned layer's shape, density and exact non-zero count (no masks needed)."""
        out = {}
        for network, densities in self.sparse_densities.items():
            rows = []
            for name, density in densities.items():
                weight = self.get_submodule(name).weight
                rows.append({"layer": name, "shape": list(weight.shape), "density": density,
                             "nonzero": kept_count(weight.numel(), density), "total": weight.numel()})
            out[network] = rows
        return out

    def sparsity_reports(self) -> dict[str, SparsityReport]:
        """Per-network sparsity reports (layers, dense and non-zero parameter counts)."""
        return {name: sparsity_report(self, include=parts) for name, (_, parts) in self.present_networks().items()}

    def networks_to_diagnose(self) -> dict[str, tuple[nn.Module, nn.Module, bool]]:
        """Per diagnosed network: (its pure-torch encoder, its output head(s), whether it takes the actions).

        A network without an encoder of its own (PPO's value head on a shared trunk) is diagnosed on
        the actor's trunk.
        """
        present = self.present_networks()
        out = {}
        for name, (network, parts) in present.items():
            if not network.diagnosed:
                continue
            first = self.get_submodule(parts[0])
            if isinstance(first, BatchEncoder):
                encoder, head_names = first, parts[1:]
            else:
                encoder, head_names = self.get_submodule(present["actor"][1][0]), parts
            heads = [self.get_submodule(head) for head in head_names]
            out[name] = (encoder.net, heads[0] if len(heads) == 1 else Heads(heads), encoder.use_actions)
        return out

    @override(RLModule)
    def setup(self) -> None:
        # The Catalog (made just before ``setup``) parsed the sparse config already: read it once.
        catalog = getattr(self, "catalog", None)
        config = catalog.sparse_config if catalog is not None else parse_model_config(self.model_config)
        check_observation_space(config, self.observation_space)
        super().setup()
        self.sparse_densities: dict[str, dict[str, float]] = {}
        for name, (network, parts) in self.present_networks().items():
            spec = config.network(network.role)
            if spec.sparsity == 0.0:
                continue
            self.sparse_densities[name] = sparsify(
                self, spec.sparsity, allocation=spec.allocation, seed=config.seed, include=parts,
                keep_first_dense=config.keep_first_dense, keep_last_dense=config.keep_last_dense,
                rescale=config.rescale,
            )


def random_warmup_actions(module: RLModule, batch: dict, t: int | None) -> dict | None:
    """``{ACTIONS: U(-1, 1)}`` in RLlib's normalised action space while ``t`` < the warm-up, else None.

    Normalised: RLlib's module-to-env connector rescales [-1, 1] to the env's bounds
    (``normalize_actions``), so the actions are uniform over the env's own box.
    """
    warmup = int(module.model_config.get("random_warmup_steps") or 0)
    if not warmup or t is None or t >= warmup or not isinstance(module.action_space, gym.spaces.Box):
        return None
    obs = batch[Columns.OBS]
    shape = (obs.shape[0], *module.action_space.shape)
    return {Columns.ACTIONS: torch.rand(shape, device=obs.device) * 2.0 - 1.0}


def _has_submodule(root, name: str) -> bool:
    try:
        root.get_submodule(name)
    except AttributeError:
        return False
    return True


def check_observation_space(config: SparseModelConfig, observation_space) -> None:
    """Raise a one-line ValueError if the model cannot take this observation space."""
    check_obs_shape(config.name, getattr(observation_space, "shape", None))
