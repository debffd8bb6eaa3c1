"""PPO, APPO and IMPALA with sparse networks: one module family (actor and critic, or one shared trunk).

``config`` holds the configs (each picks this folder's module, Catalog and Learner); ``module`` the RL
modules and their Catalog; ``learner`` RLlib's Learners with the shared sparse Learner stack in front.
"""

from rllib_sparse.rllib.ppo.config import SparseAPPOConfig, SparseIMPALAConfig, SparsePPOConfig

__all__ = ["SparseAPPOConfig", "SparseIMPALAConfig", "SparsePPOConfig"]
