"""Adapters between RLlib's batch dicts and the pure-torch networks."""

from __future__ import annotations

from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ACTOR, CRITIC, ENCODER_OUT
from torch import nn


class BatchEncoder(nn.Module):
    """``{obs[, actions]} -> {ENCODER_OUT: features}``, the encoder contract of RLlib's default modules.

    With ``use_actions`` the batch's actions are fed as the network's ``extra`` input (SAC's Q(s, a)).
    """

    def __init__(self, net: nn.Module, use_actions: bool = False):
        super().__init__()
        self.net = net
        self.use_actions = use_actions
        self.output_dim = net.output_dim

    def forward(self, batch: dict) -> dict:
        extra = batch[Columns.ACTIONS] if self.use_actions else None
        return {ENCODER_OUT: self.net(batch[Columns.OBS], extra)}


class ActorCriticEncoder(nn.Module):
    """PPO-family encoder: separate actor and critic networks, or one shared trunk.

    The attribute names ``actor_encoder``/``critic_encoder`` are the ones RLlib's PPO module uses to
    drop the critic from inference-only (env runner) copies.
    """

    def __init__(self, actor: nn.Module, critic: nn.Module | None, shared: bool):
        super().__init__()
        self.shared = shared
        self.actor_encoder = BatchEncoder(actor)
        if critic is not None:
            self.critic_encoder = BatchEncoder(critic)

    def forward(self, batch: dict) -> dict:
        actor_out = self.actor_encoder(batch)[ENCODER_OUT]
        out = {ACTOR: actor_out}
        if hasattr(self, "critic_encoder"):
            out[CRITIC] = self.critic_encoder(batch)[ENCODER_OUT]
        elif self.shared:
            out[CRITIC] = actor_out
        return {ENCODER_OUT: out}
