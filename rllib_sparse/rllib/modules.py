"""Sparse RL modules for RLlib's new API stack.

Each module is RLlib's default module for its algorithm with two changes: its Catalog builds our
networks, and right after ``setup()`` every network is pruned once (:func:`sparsify`) with its own
width/depth/sparsity. Target networks are deep copies made later by the Learner, so they inherit the
masks; env runners build the same module (masks are seeded by layer name) and also receive the masks
with every weight sync.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from ray.rllib.algorithms.appo.torch.default_appo_torch_rl_module import DefaultAPPOTorchRLModule
from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_sparse.diagnostics import Heads
from rllib_sparse.networks import SparseModelConfig
from rllib_sparse.networks.registry import check_obs_shape
from rllib_sparse.rllib.catalogs import (
    SparseDQNCatalog,
    SparsePPOCatalog,
    SparseSACCatalog,
    parse_model_config,
)
from rllib_sparse.rllib.encoders import BatchEncoder
from rllib_sparse.sparsity import SparsityReport, sparsify, sparsity_report
from rllib_sparse.sparsity.prune import kept_count

#: A network to prune: (role whose width/depth/sparsity it uses, sub-module prefixes in order).
#: The first prefix is the network's encoder; a network whose encoder is absent (e.g. the critic on an
#: inference-only env-runner copy) is skipped, and absent heads (DQN without dueling) are left out.
NetworkLayout = dict[str, tuple[str, tuple[str, ...]]]


class SparseModuleMixin:
    """Validates the sparse config, builds the module via RLlib's ``setup()``, then prunes it."""

    default_catalog_class: type

    def __init__(self, *args, **kwargs):
        if kwargs.get("catalog_class") is None:
            kwargs["catalog_class"] = self.default_catalog_class
        super().__init__(*args, **kwargs)

    def network_layout(self) -> NetworkLayout:
        raise NotImplementedError

    def present_networks(self) -> dict[str, tuple[str, list[str]]]:
        """The networks of ``network_layout`` this copy holds, with the sub-modules it has."""
        present = {}
        for network, (role, prefixes) in self.network_layout().items():
            if _has_submodule(self, prefixes[0]):
                present[network] = (role, [p for p in prefixes if _has_submodule(self, p)])
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
        return {network: sparsity_report(self, include=prefixes)
                for network, (_, prefixes) in self.present_networks().items()}

    def networks_to_diagnose(self) -> dict[str, tuple[nn.Module, nn.Module, bool]]:
        """Per network: (its pure-torch encoder, its output head(s), whether it takes the actions).

        A network without an encoder of its own (PPO's value head on a shared trunk) is diagnosed on
        the actor's trunk. SAC's twin critic is left out: it mirrors the critic and would double the
        cost (the paper's SAC has a single critic).
        """
        present = self.present_networks()
        out = {}
        for network, (_, prefixes) in present.items():
            if network == "critic_twin":
                continue
            first = self.get_submodule(prefixes[0])
            if isinstance(first, BatchEncoder):
                encoder, head_names = first, prefixes[1:]
            else:
                encoder, head_names = self.get_submodule(present["actor"][1][0]), prefixes
            heads = [self.get_submodule(name) for name in head_names]
            out[network] = (encoder.net, heads[0] if len(heads) == 1 else Heads(heads), encoder.use_actions)
        return out

    @override(RLModule)
    def setup(self) -> None:
        config = parse_model_config(self.model_config)
        check_observation_space(config, self.observation_space)
        super().setup()
        self.sparse_densities: dict[str, dict[str, float]] = {}
        for network, (role, present) in self.present_networks().items():
            spec = config.network(role)
            if spec.sparsity == 0.0:
                continue
            self.sparse_densities[network] = sparsify(
                self, spec.sparsity, allocation=spec.allocation, seed=config.seed, include=present,
                keep_first_dense=config.keep_first_dense, keep_last_dense=config.keep_last_dense,
                rescale=config.rescale,
            )


class SparsePPOTorchRLModule(SparseModuleMixin, DefaultPPOTorchRLModule):
    """PPO (and IMPALA, which uses PPO's module)."""

    default_catalog_class = SparsePPOCatalog

    def network_layout(self) -> NetworkLayout:
        if self.catalog.vf_share_layers:
            return {"actor": ("actor", ("encoder.actor_encoder", "pi")), "critic": ("critic", ("vf",))}
        return {"actor": ("actor", ("encoder.actor_encoder", "pi")),
                "critic": ("critic", ("encoder.critic_encoder", "vf"))}


class SparseAPPOTorchRLModule(SparseModuleMixin, DefaultAPPOTorchRLModule):
    default_catalog_class = SparsePPOCatalog
    network_layout = SparsePPOTorchRLModule.network_layout


class SparseSACTorchRLModule(SparseModuleMixin, DefaultSACTorchRLModule):
    default_catalog_class = SparseSACCatalog

    @override(DefaultSACTorchRLModule)
    def _forward_exploration(self, batch: dict, t: int | None = None, **kwargs) -> dict:
        """Uniform random actions for the first ``random_warmup_steps`` global env steps (the paper's
        5,000), then the policy. ``t`` is RLlib's global env-step count, restored with a checkpoint."""
        out = super()._forward_exploration(batch, t=t, **kwargs)
        random = random_warmup_actions(self, batch, t)
        if random is None:
            return out
        # The same columns as a policy step (where RLlib's connector adds the log-probability of the
        # sampled action), so that an episode straddling the end of the warm-up concatenates in the
        # replay buffer: the log-density of the uniform action in the normalised box [-1, 1]^|A|.
        actions = random[Columns.ACTIONS]
        dims = actions[0].numel()
        out[Columns.ACTIONS] = actions
        out[Columns.ACTION_LOGP] = torch.full(actions.shape[:1], -dims * math.log(2.0), device=actions.device)
        return out

    def network_layout(self) -> NetworkLayout:
        return {"actor": ("actor", ("pi_encoder", "pi")),
                "critic": ("critic", ("qf_encoder", "qf")),
                "critic_twin": ("critic", ("qf_twin_encoder", "qf_twin"))}


class SparseDQNTorchRLModule(SparseModuleMixin, DefaultDQNTorchRLModule):
    default_catalog_class = SparseDQNCatalog

    def network_layout(self) -> NetworkLayout:
        return {"critic": ("critic", ("encoder", "af", "vf"))}


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
