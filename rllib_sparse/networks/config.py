"""The sparse model config: which network, how wide, how deep, how sparse, for actor and critic.

It is plain data (a pydantic model) so that it can sit in an RLlib ``model_config`` dict, in a Tune
grid and in a YAML sweep file, and is validated the same way everywhere before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from rllib_sparse.errors import validate
from rllib_sparse.networks.registry import get_model, registered_models
from rllib_sparse.sparsity.allocation import ALLOCATIONS

#: Upper bounds that keep a typo (``width: 1e12``) from reaching an allocator; a SimBa network at
#: the largest width already needs terabytes. What fits a machine is checked later, per node.
MAX_WIDTH = 1 << 20
MAX_DEPTH = 1024
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
Depth = Annotated[int, Field(ge=1, le=MAX_DEPTH)]
Sparsity = Annotated[float, Field(ge=0.0, lt=1.0)]
# Strict: ``width: true`` is not 1, ``sparsity: "0.5"`` is not a number; NaN and infinities refused.
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
Role = Literal["actor", "critic"]


def _check_allocation(name: str) -> str:
    if name not in ALLOCATIONS:
        raise ValueError(f"not a known allocation; allowed: {', '.join(ALLOCATIONS)}")
    return name


class NetworkOverrides(BaseModel):
    """Per-network values that replace the shared ``width``/``depth``/``sparsity``/``allocation``."""

    model_config = _STRICT
    width: Width | None = Field(None, description="This network's width (units per hidden layer; channel "
                                "multiplier for CNNs); null: the shared width.")
    width_scale: Annotated[float, Field(gt=0.0, le=64.0)] | None = Field(
        None, description="This network's width as a multiple of the shared width (rounded, at least 1), so one "
        "grid axis scales actor and critic together as SimBa does (actor 128 at critic 512: 0.25); not with width.")
    depth: Depth | None = Field(
        None, description="This network's depth (blocks or hidden layers); null: the shared depth.")
    sparsity: Sparsity | None = Field(
        None, description="This network's fraction of prunable weights removed, in [0, 1); null: the shared sparsity.")
    allocation: str | None = Field(
        None, description="This network's layer-wise densities (erdos_renyi or uniform); null: the shared allocation.")

    @model_validator(mode="after")
    def _one_width(self) -> NetworkOverrides:
        if self.width is not None and self.width_scale is not None:
            raise ValueError(f"width={self.width} and width_scale={self.width_scale} are both set; "
                             "allowed: one of them")
        return self

    @field_validator("allocation")
    @classmethod
    def _known_allocation(cls, name: str | None) -> str | None:
        return None if name is None else _check_allocation(name)


@dataclass(frozen=True)
class NetworkShape:
    """The resolved shape and sparsity of one network (actor or critic): ``SparseModelConfig.network``."""

    model: str
    width: int
    depth: int
    sparsity: float
    allocation: str


class SparseModelConfig(BaseModel):
    """A sparse network choice. ``actor``/``critic`` override the shared values per network.

    Which RLlib networks are the "actor" and the "critic": PPO/APPO/IMPALA policy vs value network,
    SAC policy vs Q networks (twin included), DQN's Q network is the critic.
    """

    model_config = _STRICT

    name: str = Field("simba", validation_alias=AliasChoices("name", "model"),
                      description="The registered network (rllib-sparse models); the key model is read as an alias.")
    width: Width | None = Field(None, description="Width of actor and critic (units per hidden layer; channel "
                                "multiplier for CNNs); null: the model's default width.")
    depth: Depth | None = Field(None, description="Depth of actor and critic (blocks or hidden layers); null: the "
                                "model's default depth.")
    sparsity: Sparsity = Field(0.0, description="Fraction of prunable (Linear/Conv) weights removed once before "
                               "training, in [0, 1) (StreamAC's sparse_init: its per-row zero fraction); 0: dense.")
    actor: NetworkOverrides = Field(NetworkOverrides(), description="Per-network overrides for the actor (policy); "
                                    "empty: the shared values.")
    critic: NetworkOverrides = Field(NetworkOverrides(), description="Per-network overrides for the critic (value or "
                                     "Q networks); empty: the shared values.")
    allocation: str = Field("erdos_renyi", description="Layer-wise densities: erdos_renyi (the paper's, from each "
                            "layer's shape) or uniform (every layer the same).")
    seed: int = Field(0, description="Seed of the masks (each layer's mask also depends on its name); a sweep's "
                      "seed axis sets it.")
    keep_first_dense: bool = Field(False, description="Leave each network's first layer dense (paid from the "
                                   "sparsity budget); false: it is pruned like the others.")
    keep_last_dense: bool = Field(False, description="Leave each network's last layer dense (paid from the "
                                  "sparsity budget); false: it is pruned like the others.")
    rescale: bool = Field(False, description="Scale kept weights by 1/sqrt(density) at init (an ablation; the "
                          "paper does not); false: the dense init, then masked.")

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name not in registered_models():
            raise ValueError(f"not a registered model; allowed: {', '.join(sorted(registered_models()))}")
        return name

    @field_validator("allocation")
    @classmethod
    def _known_allocation(cls, name: str) -> str:
        return _check_allocation(name)

    def network(self, role: Role) -> NetworkShape:
        entry = get_model(self.name)
        override: NetworkOverrides = getattr(self, role)
        width = override.width or self.width or entry.default_width
        if override.width_scale is not None:
            width = min(MAX_WIDTH, max(1, round((self.width or entry.default_width) * override.width_scale)))
        return NetworkShape(
            model=self.name,
            width=width,
            depth=override.depth or self.depth or entry.default_depth,
            sparsity=self.sparsity if override.sparsity is None else override.sparsity,
            allocation=override.allocation or self.allocation,
        )

    @classmethod
    def parse(cls, data: object, source: str = "sparse model config") -> SparseModelConfig:
        """Validate ``data`` (a dict or an instance) with a one-line ``ValueError`` on failure."""
        if isinstance(data, cls):
            return data
        return validate(cls, data, source)
