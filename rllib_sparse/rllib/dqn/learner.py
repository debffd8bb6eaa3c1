"""DQN's Learner: RLlib's, with the sparse Learner stack and the in-place target update in front."""

from __future__ import annotations

from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner

from rllib_sparse.rllib.core.learner import SparseTargetNetworkLearnerMixin


class SparseDQNTorchLearner(SparseTargetNetworkLearnerMixin, DQNTorchLearner):
    pass
