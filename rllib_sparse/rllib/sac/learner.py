"""SAC's Learner: RLlib's, with the paper's AdamW and target entropy when the config asks for them."""

from __future__ import annotations

import math

import torch
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.utils.annotations import override

from rllib_sparse.rllib.core.learner import SparseTargetNetworkLearnerMixin, register_layout_optimizers


class SparseSACTorchLearner(SparseTargetNetworkLearnerMixin, SACTorchLearner):
    """RLlib's SAC learner; ``SparseSACConfig.weight_decay`` > 0 puts each network of the module's
    layout on AdamW (the temperature on Adam), ``target_entropy_scale`` sets the target entropy."""

    @override(SACTorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        weight_decay = float(getattr(config, "weight_decay", 0.0) or 0.0)
        if not weight_decay:
            return super().configure_optimizers_for_module(module_id, config)
        register_layout_optimizers(self, module_id, config, weight_decay)
        temperature = self.curr_log_alpha[module_id]  # no weight decay on the temperature
        self.register_optimizer(module_id=module_id, optimizer_name="alpha",
                                optimizer=torch.optim.Adam([temperature], eps=1e-8), params=[temperature],
                                lr_or_lr_schedule=config.alpha_lr)

    @override(SACTorchLearner)
    def _get_target_entropy(self, module_id):
        scale = getattr(self.config.get_config_for_module(module_id), "target_entropy_scale", None)
        if scale is None:
            return super()._get_target_entropy(module_id)
        action_space = self._module_spec.module_specs[module_id].action_space
        return float(scale) * float(math.prod(action_space.shape))
