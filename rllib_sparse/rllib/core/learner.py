"""What every sparse Learner shares: Adam/AdamW on torch's fused kernel, the paper's diagnostics, a
``forward_train`` that really compiles, in-place target updates, one optimizer per network.

Why: masked gradients leave Adam's second moment at exactly 0 for pruned weights, and on CPU the
per-tensor Adam that RLlib's Learners get by default calls ``exp_avg_sq.sqrt()``, which torch 2.13
computes ~7x slower on exact zeros (docs/design.md, docs/benchmarks.md). The fused kernel does the same
arithmetic without that slow path, for dense and sparse modules alike, so sparse-vs-dense comparisons
stay fair. They also keep the newest training rows for the diagnostics when asked to
(``rllib_sparse.rllib.core.diagnostics``). Everything else about the Learners is RLlib's.

Each algorithm's Learner is RLlib's with :class:`SparseLearnerMixin` in front (with a target network:
:class:`SparseTargetNetworkLearnerMixin`), so the stack is written once.
"""

from __future__ import annotations

import torch
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import LAST_TARGET_UPDATE_TS, NUM_ENV_STEPS_SAMPLED_LIFETIME, NUM_TARGET_UPDATES

from rllib_sparse.networks import polyak_update_
from rllib_sparse.rllib.core.diagnostics import DiagnosticsLearnerMixin

_FUSABLE = (torch.optim.Adam, torch.optim.AdamW)
#: ``compile`` of ``with_fast_learner`` -> RLlib's ``TorchCompileWhatToCompile`` value.
_COMPILE_WHAT = {"forward_train": "forward_train", "update": "complete_update"}


def with_fast_learner(config: AlgorithmConfig, compile: str = "forward_train", *, backend: str = "inductor",
                      mode: str | None = None) -> AlgorithmConfig:
    """Switch the Learner's fast path on (``compile="off"``: leave it eager); the sweep key ``learner:``.

    ``forward_train`` compiles the RL module's training forward, ``update`` RLlib's whole update step,
    both through RLlib's own ``torch_compile_learner`` settings, so every algorithm the project
    registers gets it. ``backend``/``mode`` are ``torch.compile``'s. What each costs and gains where is
    measured in docs/benchmarks.md ("Where an RLlib SAC step goes on CPU"); on CPU it does not pay
    (docs/design.md, "The Learner fast path").
    """
    if compile == "off":
        return config.framework(torch_compile_learner=False)
    if compile not in _COMPILE_WHAT:
        raise ValueError(f"compile={compile!r} is not supported; allowed: off, {', '.join(_COMPILE_WHAT)}")
    return config.framework(torch_compile_learner=True,
                            torch_compile_learner_what_to_compile=_COMPILE_WHAT[compile],
                            torch_compile_learner_dynamo_backend=backend,
                            torch_compile_learner_dynamo_mode=mode)


def fused_twin(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The same Adam/AdamW (same groups and hyper-parameters) on the fused kernel, when it applies.

    Left as is: other optimizers, ones that already chose ``fused``/``foreach``, ones with state, and
    parameters that the fused kernel does not take (mixed devices, non-float dtypes).
    """
    if type(optimizer) not in _FUSABLE or optimizer.state:
        return optimizer
    if optimizer.defaults.get("fused") or optimizer.defaults.get("foreach") is not None:
        return optimizer
    params = [p for group in optimizer.param_groups for p in group["params"]]
    devices = {p.device.type for p in params}
    if not params or len(devices) != 1 or devices - {"cpu", "cuda"} or any(not p.is_floating_point() for p in params):
        return optimizer
    groups = [dict(group, fused=True, foreach=None) for group in optimizer.param_groups]
    return type(optimizer)(groups, fused=True)


def register_network_optimizers(learner: Learner, module_id, networks: dict, weight_decay: float) -> None:
    """One optimizer per network (``name -> ((sub-modules...), lr)``), as the paper's code has them:
    AdamW with decoupled decay on every parameter (biases and LayerNorm too) when ``weight_decay`` > 0,
    else Adam; optax's eps (1e-8) either way."""
    for name, (parts, lr) in networks.items():
        params = [p for part in parts for p in learner.get_parameters(part)]
        optimizer = (torch.optim.AdamW(params, weight_decay=weight_decay, eps=1e-8) if weight_decay
                     else torch.optim.Adam(params, eps=1e-8))
        learner.register_optimizer(module_id=module_id, optimizer_name=name, optimizer=optimizer, params=params,
                                   lr_or_lr_schedule=lr)


class FusedAdamLearnerMixin:
    @override(Learner)
    def register_optimizer(self, *, optimizer, **kwargs) -> None:
        super().register_optimizer(optimizer=fused_twin(optimizer), **kwargs)


class CompiledForwardLearnerMixin:
    """``compile: forward_train`` (``with_fast_learner``) that really compiles.

    RLlib 2.60's ``TorchLearner.build`` means to compile each module's ``forward_train`` when
    ``torch_compile_learner_what_to_compile="forward_train"``, but tests the container
    (``isinstance(self._module, TorchRLModule)``) instead of each module inside the MultiRLModule, so
    nothing is compiled and the run stays eager. This mixin compiles what RLlib meant to.
    """

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        if self._torch_compile_forward_train:
            for module in self._module._rl_modules.values():
                if isinstance(module, TorchRLModule) and not _is_compiled(module._forward_train):
                    module.compile(self._torch_compile_cfg)


def _is_compiled(function) -> bool:
    return hasattr(function, "_torchdynamo_orig_callable")


class InPlaceTargetUpdateMixin:
    """RLlib's DQN/SAC target-network schedule and metrics, with the Polyak step done in place.

    RLlib's ``DQNLearner.after_gradient_based_update`` averages the state dicts and reloads them;
    ``polyak_update_`` does the same average as one fused ``lerp`` (rllib_sparse.networks.target says
    why and what it saves). Everything else -- ``target_network_update_freq``, ``tau``, the
    ``num_target_updates``/``last_target_update_ts`` metrics -- is RLlib's, line for line.
    """

    @override(Learner)
    def after_gradient_based_update(self, *, timesteps) -> None:
        TorchLearner.after_gradient_based_update(self, timesteps=timesteps)  # not DQNLearner's copy
        timestep = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)
        for module_id, module in self.module._rl_modules.items():
            config = self.config.get_config_for_module(module_id)
            unwrapped = module.unwrapped()
            if (timestep - self.last_update_ts_by_mid[module_id] < config.target_network_update_freq
                    or not isinstance(unwrapped, TargetNetworkAPI)):
                continue
            for main_net, target_net in unwrapped.get_target_network_pairs():
                polyak_update_(main_net, target_net, config.tau)
            self.metrics.log_value((module_id, NUM_TARGET_UPDATES), 1, reduce="lifetime_sum")
            self.last_update_ts_by_mid[module_id] = timestep
            self.metrics.log_value((module_id, LAST_TARGET_UPDATE_TS), timestep, reduce="max")


def register_layout_optimizers(learner: Learner, module_id, config, weight_decay: float) -> None:
    """One optimizer per network of the module's layout that names one (``Network.optimizer``), at the
    learning rate its ``Network.lr`` names in ``config``; see ``register_network_optimizers``.

    Critics are registered before the actor, in RLlib's SAC order: its Learner takes each optimizer's
    gradients in registration order, and keeping the order keeps an update RLlib's.
    """
    module = learner._module[module_id]
    present = module.unwrapped().present_networks() if hasattr(module, "unwrapped") else module.present_networks()
    trained = sorted(((network, parts) for network, parts in present.values() if network.optimizer),
                     key=lambda pair: pair[0].role == "actor")
    networks = {network.optimizer: (tuple(module.get_submodule(part) for part in parts), getattr(config, network.lr))
                for network, parts in trained}
    register_network_optimizers(learner, module_id, networks, weight_decay)


class SparseLearnerMixin(FusedAdamLearnerMixin, CompiledForwardLearnerMixin, DiagnosticsLearnerMixin):
    """Fused Adam, a compiled ``forward_train`` and the diagnostics; put before RLlib's Learner."""


class SparseTargetNetworkLearnerMixin(InPlaceTargetUpdateMixin, SparseLearnerMixin):
    """:class:`SparseLearnerMixin` plus the in-place Polyak step, for RLlib's DQN and SAC Learners."""
