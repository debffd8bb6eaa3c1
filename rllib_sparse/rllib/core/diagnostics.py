"""The paper's diagnostics on RLlib's Learners: which batch, which networks, and the driver-side call.

The Learner is where the trained weights, the gradients of the last update and the training data
all are, so the diagnostics run there (also on a remote or GPU learner) and only numbers travel back.
While enabled, our Learners keep references to the newest training rows (observations, and actions
for critics that take them) as they pass through the loss: no copy, no extra sampling. A diagnostic
call evaluates the networks on those rows without training on them again. The gradient norm is the
mean, over every update since the previous call, of each update's gradient norm per network, as the
paper's code logs it: one fused norm per network per update, summed on the device (no sync).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import Learner
from ray.rllib.utils.annotations import override

from rllib_sparse import metrics as names
from rllib_sparse.diagnostics import GradientNormWindow, gradient_norm, network_diagnostics
from rllib_sparse.rllib.core.inspection import on_learners
from rllib_sparse.sparsity import max_masked_magnitude

#: ``learner_config_dict`` key: how many of the newest training rows the Learner keeps (0: off).
ROWS_KEY = "rllib_sparse.diagnostic_rows"


class RecentRows:
    """The newest ``capacity`` training rows, as references to the minibatches that held them."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._chunks: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self._rows = 0

    def __len__(self) -> int:
        return min(self._rows, self.capacity)

    def add(self, obs: torch.Tensor, actions: torch.Tensor | None) -> None:
        self._chunks.append((obs.detach(), None if actions is None else actions.detach()))
        self._rows += obs.shape[0]
        while self._chunks and self._rows - self._chunks[0][0].shape[0] >= self.capacity:
            self._rows -= self._chunks.pop(0)[0].shape[0]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        obs = torch.cat([o for o, _ in self._chunks])[-self.capacity:]
        if any(a is None for _, a in self._chunks):
            return obs, None
        return obs, torch.cat([a for _, a in self._chunks])[-self.capacity:]


class DiagnosticsLearnerMixin:
    """Keeps the newest training rows per module while ``ROWS_KEY`` is set; computes diagnostics."""

    @override(Learner)
    def compute_losses(self, *, fwd_out, batch):
        # Here, not in ``compute_loss_for_module``, which an algorithm's own learner (DDPG) overrides.
        rows = int(self.config.learner_config_dict.get(ROWS_KEY, 0) or 0)
        if rows:
            recent = self.__dict__.setdefault("_recent_rows", {})
            for module_id, module_batch in batch.items():
                if module_id not in recent or recent[module_id].capacity != rows:
                    recent[module_id] = RecentRows(rows)
                recent[module_id].add(module_batch[Columns.OBS], module_batch.get(Columns.ACTIONS))
        return super().compute_losses(fwd_out=fwd_out, batch=batch)

    @override(Learner)
    def compute_gradients(self, loss_per_module, **kwargs):
        gradients = super().compute_gradients(loss_per_module, **kwargs)
        if self.config.learner_config_dict.get(ROWS_KEY, 0):
            for module_id in loss_per_module:
                self._grad_norms(module_id).add_update()
        return gradients

    def _grad_norms(self, module_id: str) -> GradientNormWindow:
        windows = self.__dict__.setdefault("_grad_norm_windows", {})
        if module_id not in windows:
            networks = self._diagnosed_module(module_id).networks_to_diagnose()
            windows[module_id] = GradientNormWindow(
                {name: [encoder, head] for name, (encoder, head, _) in networks.items()})
        return windows[module_id]

    def _diagnosed_module(self, module_id: str):
        module = self.module[module_id]
        return module.unwrapped() if hasattr(module, "unwrapped") else module

    def network_diagnostics(self, module_id: str = DEFAULT_MODULE_ID, *, delta: float = 0.01,
                            dormant: str = "pre_activation", taus: tuple[float, ...] | None = None,
                            interference_samples: int = 32, chunk_size: int = 8) -> dict[str, Any]:
        """``{"metrics": {diag/<network>/<name>: value}, "cosines": {network: matrix}}`` (plain values).

        Both are empty before the first update (an off-policy warm-up): there is nothing to diagnose yet.
        """
        module = self._diagnosed_module(module_id)
        recent = getattr(self, "_recent_rows", {}).get(module_id)
        if (recent is None or not len(recent)) and self.config.learner_config_dict.get(ROWS_KEY, 0):
            return {"metrics": {}, "cosines": {}}
        if recent is None or not len(recent):
            raise RuntimeError(f"no training rows kept for module {module_id!r}: enable diagnostics in the "
                               f"config (learner_config_dict[{ROWS_KEY!r}] > 0) and train an iteration first")
        obs, actions = recent.tensors()
        metrics: dict[str, float] = {names.MAX_MASKED_WEIGHT: max_masked_magnitude(module)}
        cosines = {}
        grad_norms, updates = self._grad_norms(module_id).mean_and_reset()
        for network, (encoder, head, uses_actions) in module.networks_to_diagnose().items():
            values, matrix = network_diagnostics(
                encoder, head, obs, actions if uses_actions else None, delta=delta, dormant=dormant, taus=taus,
                interference_samples=interference_samples, chunk_size=chunk_size)
            values["grad_norm"] = grad_norms.get(network, gradient_norm([encoder, head]))
            values["grad_norm_updates"] = float(updates)
            values["rows"] = float(obs.shape[0])
            metrics.update({names.diagnostic(network, key): value for key, value in values.items()})
            if matrix.numel():
                cosines[network] = matrix.cpu().numpy()
        return {"metrics": metrics, "cosines": cosines}


def with_diagnostics(config: AlgorithmConfig, rows: int = 1024) -> AlgorithmConfig:
    """Let the config's Learners keep their newest ``rows`` training rows for diagnostics.

    Use a batch at least as large as the widest feature layer: srank cannot exceed the batch size.
    """
    if rows < 1:
        raise ValueError(f"diagnostics rows={rows!r} is invalid; allowed: an integer >= 1")
    return config.learners(learner_config_dict={ROWS_KEY: int(rows)})


def learner_diagnostics(algo, module_id: str = DEFAULT_MODULE_ID, **settings: Any) -> dict[str, Any]:
    """Diagnostics of ``algo``'s module, computed on its (first) Learner; see ``network_diagnostics``."""
    def compute(learner):
        if not hasattr(learner, "network_diagnostics"):
            raise TypeError(f"{type(learner).__name__} cannot compute diagnostics; allowed: the Learners "
                            "with_sparse_model sets (rllib_sparse.rllib.core.learner.SparseLearnerMixin)")
        return learner.network_diagnostics(module_id, **settings)

    return on_learners(algo, compute)[0]
