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
    width: Width | None = None
    #: This network's width as a multiple of the shared ``width`` (rounded; at least 1), so one grid
    #: axis scales actor and critic together, as SimBa does (actor 128 at critic 512: 0.25). Not with
    #: ``width`` (one way to say a width).
    width_scale: Annotated[float, Field(gt=0.0, le=64.0)] | None = None
    depth: Depth | None = None
    sparsity: Sparsity | None = None
    allocation: str | None = None

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

    #: The registered network (``rllib-sparse models``). Sweep files and older configs may still call
    #: the key ``model`` (``model: {model: simba}``); both spellings are read.
    name: str = Field("simba", validation_alias=AliasChoices("name", "model"))
    width: Width | None = None
    depth: Depth | None = None
    sparsity: Sparsity = 0.0
    actor: NetworkOverrides = NetworkOverrides()
    critic: NetworkOverrides = NetworkOverrides()
    allocation: str = "erdos_renyi"
    seed: int = 0
    keep_first_dense: bool = False
    keep_last_dense: bool = False
    rescale: bool = False

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
