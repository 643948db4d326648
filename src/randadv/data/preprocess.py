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
"""The image sides s (d = s^2 from 25 to 784) of the lazy-training experiments.

Paper:
    Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
    2022), Section 5 (MNIST downsampled, d in 25..784).

Example:
    >>> from randadv.data import LAZY_TRAINING_SIZES
    >>> [s * s for s in LAZY_TRAINING_SIZES][0], [s * s for s in LAZY_TRAINING_SIZES][-1]
    (25, 784)
"""


def downsample(images: torch.Tensor, s: int, mode: str = "area") -> torch.Tensor:
    """Resize images (N, H, W) or (N, C, H, W) to s x s.

    ``mode="area"`` averages pixels (adaptive average pooling: exact block means when s
    divides H and W); ``mode="bilinear"`` is antialiased bilinear. If the images are already
    s x s they are returned unchanged (the same tensor).

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 5 (MNIST downsampled to d = s^2).

    Arguments:
        images: (N, H, W) or (N, C, H, W); s: the new side; mode: ``"area"`` or
        ``"bilinear"``.

    Returns:
        The (N, s, s) or (N, C, s, s) images.

    Example:
        >>> import torch
        >>> from randadv.data import downsample
        >>> x = torch.arange(16.0).reshape(1, 4, 4)
        >>> downsample(x, 2).tolist()   # block means
        [[[2.5, 4.5], [10.5, 12.5]]]
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
    """Reshape (N, ...) to (N, prod(...)).

    Paper:
        none (utility: images as the vectors the networks take).

    Arguments:
        images: (N, ...).

    Returns:
        The (N, prod(...)) view.

    Example:
        >>> import torch
        >>> from randadv.data import flatten
        >>> flatten(torch.zeros(5, 3, 4, 4)).shape
        torch.Size([5, 48])
    """
    if not isinstance(images, torch.Tensor) or images.dim() < 1:
        raise InvalidInputError("images must be a torch.Tensor with a batch dimension")
    return images.reshape(images.shape[0], -1)


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """Scale each row of ``x`` (N, d) to unit Euclidean norm; a zero row is an error.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 3 and Figures 5, 6 (inputs normalised to ||x|| = 1).

    Arguments:
        x: (N, d), no zero row.

    Returns:
        The rows scaled to norm 1.

    Example:
        >>> import torch
        >>> from randadv.data import normalize_rows
        >>> normalize_rows(torch.tensor([[3.0, 4.0]], dtype=torch.float64)).tolist()
        [[0.6, 0.8]]
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise InvalidInputError("x must be a floating-point torch.Tensor of shape (N, d)")
    check_finite(x, "x")
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    zero = torch.nonzero(norms.squeeze(1) == 0).flatten().tolist()
    if zero:
        more = f" (and {len(zero) - 10} more)" if len(zero) > 10 else ""
        raise InvalidInputError(f"cannot normalize zero rows: index {zero[:10]}{more}")
    return x / norms
