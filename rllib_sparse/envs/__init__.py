"""Environments with the preprocessing the paper's settings use (gymnasium and ale-py; no Ray import)."""

from rllib_sparse.envs.atari import AtariOptions, atari_env_ids, atari_game, is_atari_id, make_atari, make_atari_vector

__all__ = ["AtariOptions", "atari_env_ids", "atari_game", "is_atari_id", "make_atari", "make_atari_vector"]
