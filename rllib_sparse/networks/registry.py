"""Named network builders, so configs can say ``model: simba`` and third parties can add their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from rllib_sparse.networks.cnn import ImpalaCNN, NatureCNN
from rllib_sparse.networks.mlp import MLP, LayerNormMLP, SimBa

#: ``builder(obs_shape, width, depth, extra_dim) -> nn.Module`` whose ``forward(obs, extra=None)``
#: returns features and whose ``output_dim`` attribute gives their size.
NetworkBuilder = Callable[[tuple[int, ...], int, int, int], nn.Module]

INPUT_KINDS = {"vector": 1, "image": 3}  # observation rank each kind accepts


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: NetworkBuilder
    input_kind: str  # "vector" (1-D Box observations) or "image" (3-D Box, channels last)
    default_width: int
    default_depth: int
    summary: str
    width_means: str
    depth_means: str
    output_dim: Callable[[int], int]  # feature size for a given width (heads are sized from it)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    builder: NetworkBuilder,
    *,
    input_kind: str,
    default_width: int,
    default_depth: int,
    summary: str = "",
    width_means: str = "hidden units",
    depth_means: str = "hidden layers",
    output_dim: Callable[[int], int] = lambda width: width,
    replace: bool = False,
) -> ModelEntry:
    """Make ``builder`` available under ``name`` in every sparse model config."""
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind={input_kind!r} is not known; allowed: {', '.join(INPUT_KINDS)}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"model name={name!r} is already registered; pass replace=True to override it")
    entry = ModelEntry(name, builder, input_kind, default_width, default_depth, summary, width_means, depth_means,
                       output_dim)
    _REGISTRY[name] = entry
    return entry


def registered_models() -> dict[str, ModelEntry]:
    return dict(_REGISTRY)


def get_model(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"model={name!r} is not registered; allowed: {', '.join(sorted(_REGISTRY))}") from None


def check_obs_shape(name: str, obs_shape: tuple[int, ...] | None) -> None:
    """Raise a one-line ValueError if model ``name`` cannot take observations of ``obs_shape``."""
    entry = get_model(name)
    rank = INPUT_KINDS[entry.input_kind]
    if obs_shape is not None and len(obs_shape) == rank:
        return
    fitting = [n for n, e in sorted(_REGISTRY.items())
               if obs_shape is not None and INPUT_KINDS[e.input_kind] == len(obs_shape)]
    raise ValueError(
        f"model={name!r} needs {entry.input_kind} observations (a rank-{rank} Box); got observation "
        f"shape {None if obs_shape is None else tuple(obs_shape)}; "
        f"allowed models for it: {', '.join(fitting) or 'none'}"
    )


def build_network(name: str, obs_shape: tuple[int, ...], width: int, depth: int, extra_dim: int = 0) -> nn.Module:
    """Build a registered network after checking that it fits the observation shape."""
    check_obs_shape(name, obs_shape)
    return get_model(name).builder(tuple(obs_shape), width, depth, extra_dim)


register_model(
    "simba", lambda shape, w, d, e: SimBa(shape[0], w, d, e), input_kind="vector",
    default_width=256, default_depth=2,
    summary="SimBa residual MLP: running obs norm, projection, pre-LN 4x inverted-bottleneck blocks, post-LN",
    width_means="hidden dim", depth_means="residual blocks",
)
register_model(
    "mlp", lambda shape, w, d, e: MLP(shape[0], w, d, e), input_kind="vector",
    default_width=256, default_depth=2, summary="plain ReLU MLP",
)
register_model(
    "layernorm_mlp", lambda shape, w, d, e: LayerNormMLP(shape[0], w, d, e), input_kind="vector",
    default_width=128, default_depth=2,
    summary="MLP with a parameter-free LayerNorm and LeakyReLU after each layer (streaming RL's networks)",
)
register_model(
    "nature_cnn", lambda shape, w, d, e: NatureCNN(shape, w, d, e), input_kind="image",
    default_width=1, default_depth=1, summary="Nature-DQN CNN (3 convs) + dense layers",
    width_means="multiplier of channels (32/64/64) and dense units (512)", depth_means="dense layers after the convs",
    output_dim=lambda width: 512 * width,
)
register_model(
    "impala_cnn", lambda shape, w, d, e: ImpalaCNN(shape, w, d, e), input_kind="image",
    default_width=1, default_depth=2, summary="Impala ResNet (3 stacks) + one dense layer",
    width_means="multiplier of channels (16/32/32) and dense units (256)", depth_means="residual blocks per stack",
    output_dim=lambda width: 256 * width,
)
