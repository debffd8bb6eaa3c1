"""Streaming deep RL (Elsayed et al. 2024, "Streaming deep reinforcement learning finally works") on this
project's pure-torch layers: one transition at a time, no replay buffer, eligibility traces and the ObGD
optimizer. Imports no Ray: the sweep layer plugs it into the trial loop through the trial-runner seam
(``rllib_sparse.sweep.stream_runner``; ``algorithm: StreamAC`` in sweep files).
"""

from rllib_sparse.streaming.agent import StreamAC, StreamACSettings
from rllib_sparse.streaming.init import INITS
from rllib_sparse.streaming.obgd import ObGD
from rllib_sparse.streaming.trainer import StreamTrainer

__all__ = ["INITS", "ObGD", "StreamAC", "StreamACSettings", "StreamTrainer"]
