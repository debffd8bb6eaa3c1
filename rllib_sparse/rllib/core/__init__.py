"""What every algorithm folder of ``rllib_sparse.rllib`` shares.

``model_config`` (where the typed sparse config meets RLlib's ``model_config``), ``module`` (the network
layout and pruning after ``setup()``), ``catalog`` (our networks in place of RLlib's encoders),
``encoders``, ``learner`` (the sparse Learner stack: fused Adam, compiled ``forward_train``,
diagnostics, in-place target updates, one optimizer per network), ``diagnostics``, ``sac_loop`` (RLlib's
SAC loop as SAC and DDPG use it), ``replay``, ``env_families``, ``inspection`` and ``sparse_model``
(``with_sparse_model``). Nothing here imports an algorithm folder.
"""
