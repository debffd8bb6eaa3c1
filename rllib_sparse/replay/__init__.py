"""Columnar replay for off-policy learners (pure torch, no Ray): transitions written once as arrays,
observations stored once, minibatches sampled by index. See ``columnar.TransitionReplay``."""

from rllib_sparse.replay.columnar import TransitionReplay

__all__ = ["TransitionReplay"]
