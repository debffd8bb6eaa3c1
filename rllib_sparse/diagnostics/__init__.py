"""Plasticity diagnostics of the paper (srank, dormant neurons, norms, gradient interference); pure torch."""

from rllib_sparse.diagnostics.metrics import (
    dormant_ratios,
    gradient_cosines,
    interference_summary,
    parameter_norm,
    recorded_activations,
    srank,
)

__all__ = ["dormant_ratios", "gradient_cosines", "interference_summary", "parameter_norm",
           "recorded_activations", "srank"]
