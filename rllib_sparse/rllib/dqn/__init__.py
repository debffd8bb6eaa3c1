"""DQN with a sparse Q network (dueling and double-Q as RLlib has them).

``config`` holds ``SparseDQNConfig``; ``module`` the RL module and Catalog; ``learner`` the Learner.
"""

from rllib_sparse.rllib.dqn.config import SparseDQNConfig

__all__ = ["SparseDQNConfig"]
