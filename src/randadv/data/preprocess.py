"""Preprocessing: downsampling, flattening, normalisation to the unit sphere.

"Adversarial Robustness is at Odds with Lazy Training" (NeurIPS 2022), Section 5, trains on
MNIST 0 vs 1 downsampled to d = s^2 in {25, 49, 100, 196, 400, 625, 784}, i.e. s in
:data:`LAZY_TRAINING_SIZES`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from randadv.errors import InvalidInputError
from randadv.validation import check_finite

LAZY_TRAINING_SIZES = (5, 7, 10, 14, 20, 25, 28)


def downsample(images: torch.Tensor, s: int, mode: str = "area") -> torch.Tensor:
    """Resize images (N, H, W) or (N, C, H, W) to s x s.

    ``mode="area"`` averages pixels (adaptive average pooling: exact block means when s
    divides H and W); ``mode="bilinear"`` is antialiased bilinear. If the images are already
    s x s they are returned unchanged (the same tensor).
    """
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4):
        raise InvalidInputError("images must be a torch.Tensor of shape (N, H, W) or (N, C, H, W)")
    if not images.is_floating_point():
        raise InvalidInputError(f"images must be floating point, got {images.dtype}")
    h, w = images.shape[-2:]
    if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= min(h, w):
        raise InvalidInputError(f"size s must be an int in 1..{min(h, w)}, got {s!r}")
    if (h, w) == (s, s):
        return images
    x = images.unsqueeze(1) if images.dim() == 3 else images
    if mode == "area":
        out = F.adaptive_avg_pool2d(x, (s, s))
    elif mode == "bilinear":
        out = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
    else:
        raise InvalidInputError(f"mode must be 'area' or 'bilinear', got {mode!r}")
    return out.squeeze(1) if images.dim() == 3 else out


def flatten(images: torch.Tensor) -> torch.Tensor:
    """Reshape (N, ...) to (N, prod(...))."""
    if not isinstance(images, torch.Tensor) or images.dim() < 1:
        raise InvalidInputError("images must be a torch.Tensor with a batch dimension")
    return images.reshape(images.shape[0], -1)


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """Scale each row of ``x`` (N, d) to unit Euclidean norm; a zero row is an error."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise InvalidInputError("x must be a floating-point torch.Tensor of shape (N, d)")
    check_finite(x, "x")
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    zero = torch.nonzero(norms.squeeze(1) == 0).flatten().tolist()
    if zero:
        more = f" (and {len(zero) - 10} more)" if len(zero) > 10 else ""
        raise InvalidInputError(f"cannot normalize zero rows: index {zero[:10]}{more}")
    return x / norms
