"""Where the typed :class:`SparseModelConfig` meets RLlib's ``model_config`` dict: its key, and its parse."""

from __future__ import annotations

from rllib_sparse.networks import SparseModelConfig

#: The key under an RLlib ``model_config`` that holds the :class:`SparseModelConfig`.
MODEL_CONFIG_KEY = "sparse"


def parse_model_config(model_config: dict | None) -> SparseModelConfig:
    """The sparse model config inside an RLlib ``model_config`` dict (one-line ValueError if bad)."""
    return SparseModelConfig.parse((model_config or {}).get(MODEL_CONFIG_KEY) or {},
                                   source=f"model_config[{MODEL_CONFIG_KEY!r}]")
