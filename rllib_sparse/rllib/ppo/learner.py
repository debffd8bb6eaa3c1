"""RLlib's PPO, APPO and IMPALA Learners with the sparse Learner stack (``core.learner``) in front."""

from __future__ import annotations

from ray.rllib.algorithms.appo.torch.appo_torch_learner import APPOTorchLearner
from ray.rllib.algorithms.impala.torch.impala_torch_learner import IMPALATorchLearner
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

from rllib_sparse.rllib.core.learner import SparseLearnerMixin


class SparsePPOTorchLearner(SparseLearnerMixin, PPOTorchLearner):
    pass


class SparseAPPOTorchLearner(SparseLearnerMixin, APPOTorchLearner):
    pass


class SparseIMPALATorchLearner(SparseLearnerMixin, IMPALATorchLearner):
    pass
