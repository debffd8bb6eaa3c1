"""Linear and convolution layers with a fixed binary weight mask.

How the mask is kept (the design in one paragraph):

* The pruned weights are set to exactly 0.0 once, when the mask is drawn.
* While autograd records (the learner's update), the weight passes through :class:`_MaskGradient`:
  an identity in the forward pass whose backward multiplies the gradient by the mask. Pruned weights
  therefore get a gradient of exactly 0, so Adam/AdamW moments stay 0, decoupled weight decay acts on
  0, gradient clipping and gradient-norm metrics see only unmasked entries, and Polyak target updates
  average zeros. It lives in ``forward`` (not in a tensor hook), so it survives ``deepcopy`` (target
  networks), pickling and checkpoint restore, and needs no cooperation from the optimizer or Learner.
* Without autograd (env runners, target networks, evaluation) the forward is the plain dense
  ``F.linear``/``conv`` on weights that are already zero: no per-forward masking cost for inference.
* Loading a state dict re-applies the mask, so a checkpoint or a Polyak update can never bring a
  pruned weight back.

The mask is a ``bool`` buffer: it travels in ``state_dict``, RLlib weight sync and checkpoints, and a
Polyak average of it (``tau*m + (1-tau)*m``, computed in float by RLlib) casts back to the same bits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch._functorch.utils import unwrap_dead_wrappers


class _MaskGradient(torch.autograd.Function):
    """Identity on the weight; multiplies the incoming gradient by the mask.

    Written in the ``setup_context`` form with a generated vmap rule, so that ``torch.func``
    transforms (per-sample gradients in the diagnostics) see masked gradients too.
    """

    generate_vmap_rule = True

    @classmethod
    def apply(cls, weight: torch.Tensor, grad_mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """torch's ``Function.apply`` without its per-call ``inspect.signature`` binding of default
        arguments (this forward has none): in a profile that binding cost ~80 µs per masked layer call, a
        eighth of a streaming update step at width 128 (docs/benchmarks.md). Under ``torch.func``
        transforms, torch's own path, unchanged."""
        if torch._C._are_functorch_transforms_active():
            return super().apply(weight, grad_mask)
        args = unwrap_dead_wrappers((weight, grad_mask))
        return super(torch.autograd.Function, cls).apply(*args)

    @staticmethod
    def forward(weight: torch.Tensor, grad_mask: torch.Tensor) -> torch.Tensor:
        return weight.view_as(weight)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (grad_mask,) = ctx.saved_tensors
        # In place: ``grad`` is the fresh weight gradient of the single op that consumed this view
        # (each forward makes a new view). An out-of-place product allocates a weight-sized tensor per
        # layer per step, which measured ~9% of a CPU update step at width 1024 (page faults).
        return grad.mul_(grad_mask), None


class SparseWeightMixin:
    """Adds a ``mask`` buffer and the masking rules above to an ``nn.Linear``/``nn.ConvNd``."""

    weight: nn.Parameter
    mask: torch.Tensor

    def init_mask(self, mask: torch.Tensor) -> None:
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match weight {tuple(self.weight.shape)}")
        mask = mask.to(device=self.weight.device, dtype=torch.bool)
        self.register_buffer("mask", mask)
        # The mask in the weight's dtype, for the gradient product: a float*float product is several
        # times faster than any float/bool mix. Derived state, so not saved (``persistent=False``);
        # ``module.to(...)`` moves and casts it with the weight. It exists from construction, never
        # made lazily in a forward: a module that changes under torch.compile is compiled again.
        self.register_buffer("grad_mask", mask.to(self.weight.dtype), persistent=False)
        self.apply_mask_()

    @torch.no_grad()
    def apply_mask_(self) -> None:
        """Zero the pruned weights in place (and keep the gradient mask equal to the mask)."""
        self.weight.mul_(self.mask)
        self.grad_mask.copy_(self.mask)

    def masked_weight(self) -> torch.Tensor:
        """The weight to compute with: gradient-masked under autograd, untouched otherwise."""
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return _MaskGradient.apply(self.weight, self.grad_mask)
        return self.weight

    @property
    def density(self) -> float:
        return float(self.mask.sum()) / self.mask.numel()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.apply_mask_()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, density={self.density:.4f}"


class SparseLinear(SparseWeightMixin, nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight(), self.bias)


class _SparseConv(SparseWeightMixin):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.masked_weight(), self.bias)


class SparseConv1d(_SparseConv, nn.Conv1d):
    pass


class SparseConv2d(_SparseConv, nn.Conv2d):
    pass


class SparseConv3d(_SparseConv, nn.Conv3d):
    pass


#: Which dense layer type becomes which sparse one. Only these are prunable.
SPARSE_COUNTERPART: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: SparseLinear,
    nn.Conv1d: SparseConv1d,
    nn.Conv2d: SparseConv2d,
    nn.Conv3d: SparseConv3d,
}


def to_sparse_layer(layer: nn.Module, mask: torch.Tensor) -> SparseWeightMixin:
    """A sparse twin of ``layer`` that shares its parameter tensors (no copy) and carries ``mask``."""
    cls = SPARSE_COUNTERPART[type(layer)]
    sparse = cls.__new__(cls)
    sparse.__dict__.update(layer.__dict__)
    sparse._parameters = dict(layer._parameters)
    sparse._buffers = dict(layer._buffers)
    sparse._modules = dict(layer._modules)
    sparse.init_mask(mask)
    return sparse


def is_prunable(module: nn.Module) -> bool:
    return type(module) in SPARSE_COUNTERPART or isinstance(module, SparseWeightMixin)
