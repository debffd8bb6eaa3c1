"""SAC with sparse networks and the paper's settings, on the SAC loop it shares with DDPG.

``config`` holds ``SparseSACConfig``/``SparseSAC``; ``module`` the RL module and Catalog; ``learner``
the Learner; ``distribution`` the authors' policy distribution.
"""

from rllib_sparse.rllib.sac.config import SparseSAC, SparseSACConfig
from rllib_sparse.rllib.sac.distribution import LOG_STD_MAX, LOG_STD_MIN, PaperSquashedGaussian, log_std_from_raw

__all__ = ["LOG_STD_MAX", "LOG_STD_MIN", "PaperSquashedGaussian", "SparseSAC", "SparseSACConfig", "log_std_from_raw"]
