"""Plasticity diagnostics of the paper (srank, dormant neurons, norms, gradient interference); pure torch."""

from rllib_sparse.diagnostics.metrics import (
    DORMANT_CONVENTIONS,
    dormant_ratios,
    gradient_cosines,
    interference_summary,
    parameter_norm,
    recorded_activations,
    recorded_outputs,
    srank,
)
from rllib_sparse.diagnostics.network import GradientNormWindow, Heads, gradient_norm, network_diagnostics

__all__ = ["DORMANT_CONVENTIONS", "GradientNormWindow", "Heads", "dormant_ratios", "gradient_cosines",
           "gradient_norm", "interference_summary", "network_diagnostics", "parameter_norm",
           "recorded_activations", "recorded_outputs", "srank"]
