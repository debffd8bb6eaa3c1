"""DDPG's learner: RLlib's SAC learner machinery (one optimizer per network, Polyak target updates) with
DDPG's two losses (``losses``) and no temperature."""

from __future__ import annotations

from ray.rllib.algorithms.sac.sac_learner import QF_LOSS_KEY, QF_MEAN_KEY, QF_PREDS, TD_ERROR_MEAN_KEY
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import POLICY_LOSS_KEY
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import TD_ERROR_KEY

from rllib_sparse.rllib.core.learner import SparseTargetNetworkLearnerMixin, register_layout_optimizers
from rllib_sparse.rllib.ddpg import losses
from rllib_sparse.rllib.ddpg.module import Q_OF_ACTOR, Q_TARGET_NEXT


class SparseDDPGTorchLearner(SparseTargetNetworkLearnerMixin, SACTorchLearner):
    @override(SACTorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        # One Adam (AdamW with weight_decay) per network of the module's layout; no temperature.
        register_layout_optimizers(self, module_id, config, float(config.weight_decay or 0.0))

    @override(SACTorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        target = losses.td_target(batch[Columns.REWARDS], batch[Columns.TERMINATEDS],
                                  config.gamma ** batch["n_step"], fwd_out[Q_TARGET_NEXT])
        q = fwd_out[QF_PREDS]
        critic_loss = losses.critic_loss(q, target, batch["weights"])
        actor_loss = losses.actor_loss(fwd_out[Q_OF_ACTOR])
        td_error = (q - target).abs()
        # RLlib's SAC learner steps each optimizer on its own loss ("<optimizer>_loss").
        self._temp_losses[(module_id, QF_LOSS_KEY)] = critic_loss
        self._temp_losses[(module_id, POLICY_LOSS_KEY)] = actor_loss
        self.metrics.log_value(key=(module_id, TD_ERROR_KEY), value=td_error, reduce="item_series")
        self.metrics.log_dict({POLICY_LOSS_KEY: actor_loss, QF_LOSS_KEY: critic_loss,
                               QF_MEAN_KEY: fwd_out[Q_OF_ACTOR].mean(), TD_ERROR_MEAN_KEY: td_error.mean()},
                              key=module_id, window=1)
        return critic_loss + actor_loss
