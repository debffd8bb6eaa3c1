"""DDPG (deterministic policy gradient) for sparse SimBa networks, on RLlib's off-policy machinery.

``losses`` holds the whole algorithm's math; ``config`` the ``DDPGConfig``/``DDPG`` classes; ``module``
and ``learner`` plug that math into RLlib's RL module and Learner APIs.
"""

from rllib_sparse.rllib.ddpg.config import DDPG, DDPGConfig

__all__ = ["DDPG", "DDPGConfig"]
