"""Sanity checks on models and inputs, each raising a typed error with a one-line reason.

In the spirit of AutoAttack's ``checks.py``: a model must return one finite scalar per input
(a binary decision sign f(x)); a zero gradient is reported (the attack then has no direction).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from randadv.protocol.piecewise import PiecewiseLinearStack

from randadv.errors import InvalidInputError, ModelOutputError
from randadv.validation import check_finite


def check_attack_input(x: torch.Tensor) -> torch.Tensor:
    """A batch (B, ...) of finite floating-point inputs, B >= 1."""
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InvalidInputError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise InvalidInputError(f"x must be a non-empty batch of shape (B, ...), got "
                                f"{tuple(x.shape)}")
    check_finite(x, "x")
    return x


def check_positive(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def scalar_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` as a (B,) tensor; raise :class:`ModelOutputError` unless it is one finite
    scalar per input (shape (B,) or (B, 1)), :class:`InvalidInputError` where the model raises
    a RuntimeError on x (a shape or dtype it does not take; out-of-memory errors pass)."""
    try:
        out = model(x)
    except RuntimeError as e:
        if isinstance(e, torch.cuda.OutOfMemoryError):   # torch.OutOfMemoryError in torch 2.5+
            raise
        # torch's own message ("mat1 and mat2 shapes cannot be multiplied") names no input
        raise InvalidInputError(
            f"the model raised on inputs of shape {tuple(x.shape)} and dtype {x.dtype} (does it "
            f"take this input shape and dtype?): {type(e).__name__}: {e}") from e
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(f"model must return a tensor, got {type(out).__name__}")
    if out.dim() == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (x.shape[0],):
        raise ModelOutputError(
            f"model must return one scalar per input, shape ({x.shape[0]},) or "
            f"({x.shape[0]}, 1); got {tuple(out.shape)} (wrap a two-logit model as the logit "
            "difference)")
    bad = ~torch.isfinite(out)
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten().tolist()[:10]
        raise ModelOutputError(f"model returned NaN or inf at inputs {rows}")
    return out


def value_and_grad(model: nn.Module, x: torch.Tensor,
                   stack: PiecewiseLinearStack | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(x), grad f(x))`` for a batch; explicit backpropagation for randadv's random MLPs and
    through ``stack`` (the model's :class:`PiecewiseLinearStack` with transposed maps) if given,
    autograd otherwise (the model must treat the rows of a batch independently).

    Paper:
        Bubeck et al. 2021, Lemma 1 (the step along grad f(x) needs f and grad f).

    Arguments:
        model: a scalar-output model; x: the batch (B, ...); stack: its piecewise-linear stack
        or None.

    Returns:
        ``(f, grad)`` of shapes (B,) and those of ``x``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.attacks import value_and_grad
        >>> lin = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))
        >>> f, g = value_and_grad(lin, torch.zeros(2, 3))
        >>> torch.equal(g, lin[0].weight.detach().expand(2, 3))   # grad of a linear map: w
        True
    """
    if stack is not None:
        return stack.value_and_grad(x)
    from randadv.nets.mlp import RandomMLP

    if isinstance(model, RandomMLP):
        with torch.no_grad():
            f, g = model.value_and_grad(x.reshape(x.shape[0], -1))
        return f.to(x.dtype), g.reshape(x.shape).to(x.dtype)
    with torch.enable_grad():
        xx = x.detach().requires_grad_(True)
        f = scalar_output(model, xx)
        if not f.requires_grad:
            raise ModelOutputError("model output does not depend on x through autograd (no "
                                   "gradient): detached output or non-differentiable model")
        (g,) = torch.autograd.grad(f.sum(), xx, allow_unused=True)
        if g is None:
            g = torch.zeros_like(xx)
    return f.detach().to(x.dtype), g.detach().to(x.dtype)
