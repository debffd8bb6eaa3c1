"""Streaming deep RL (Elsayed et al. 2024, "Streaming deep reinforcement learning finally works") on this
project's pure-torch layers: one transition at a time, no replay buffer, eligibility traces and the ObGD
optimizer. Imports no Ray: the sweep layer plugs it into the trial loop through the trial-runner seam.
"""

from rllib_sparse.streaming.obgd import ObGD

__all__ = ["ObGD"]
