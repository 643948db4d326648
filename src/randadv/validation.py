"""Input checks shared by the networks and the attacks: one clear error per malformed input."""

from __future__ import annotations

import torch

from randadv.errors import InvalidInputError


def check_input_batch(x: torch.Tensor, d: int | None = None,
                      dtype: torch.dtype | None = None) -> tuple[torch.Tensor, bool]:
    """Return ``(x as (B, d), was_1d)``; raise :class:`InvalidInputError` on a bad input."""
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"input must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InvalidInputError(f"input must be a floating-point tensor, got dtype {x.dtype}")
    squeeze = x.dim() == 1
    if squeeze:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise InvalidInputError(f"input must have shape (B, d) or (d,), got {tuple(x.shape)}")
    if d is not None and x.shape[1] != d:
        raise InvalidInputError(f"input dimension {x.shape[1]} does not match the network's d={d}")
    if dtype is not None and x.dtype != dtype:
        x = x.to(dtype)
    return x, squeeze


def check_finite(x: torch.Tensor, name: str = "input") -> None:
    """Raise :class:`InvalidInputError` if ``x`` holds NaN or inf."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = torch.nonzero(bad.reshape(bad.shape[0], -1).any(dim=1)).flatten().tolist()
        raise InvalidInputError(f"{name} holds NaN or inf (rows {rows[:10]}"
                                f"{', ...' if len(rows) > 10 else ''})")
