"""The input box ``lo <= x' <= hi`` that an attack or an exact solver searches in: the one reading
of a ``bounds=(lo, hi)`` argument, for the attacks (:func:`randadv.attacks.min_norm.prepare`)
and for the exact solver (:func:`randadv.exact.min_distance`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from randadv.errors import InvalidInputError


def check_box(bounds: object, shape: Sequence[int], dtype: torch.dtype,
              device: torch.device | str | None = None, *, flat: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The box of ``bounds = (lo, hi)``: each side (a scalar, an array or a tensor) broadcast to
    one input's ``shape`` as a fresh tensor, with no NaN and ``lo <= hi`` everywhere; raise
    :class:`randadv.errors.InvalidInputError` otherwise.

    Paper:
        none (utility: the search box, e.g. the pixel range [0, 1] of De Palma et al. 2021,
        Section 4, read in one way by the attacks and the exact solver).

    Arguments:
        bounds: a pair ``(lo, hi)``.
        shape: the shape of one input (no batch axis).
        dtype, device: of the returned tensors.
        flat: read a side holding exactly one value per coordinate in row-major order,
            whatever its shape (for inputs seen as flat vectors, as the exact solver's).

    Returns:
        ``(lo, hi)``, two tensors of ``shape``.

    Example:
        >>> import torch
        >>> from randadv.protocol import check_box
        >>> lo, hi = check_box((0.0, torch.tensor([1.0, 2.0])), (2,), torch.float64)
        >>> lo.tolist(), hi.tolist(), hi.dtype
        ([0.0, 0.0], [1.0, 2.0], torch.float64)
        >>> check_box((torch.zeros(1, 2, 2), 1.0), (4,), torch.float32, flat=True)[0].shape
        torch.Size([4])
    """
    try:
        lo_in, hi_in = bounds  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidInputError(f"bounds must be None or (lo, hi), got {bounds!r}") from None
    shape = tuple(int(s) for s in shape)
    sides = []
    for v in (lo_in, hi_in):
        t = torch.as_tensor(v, dtype=dtype, device=device)
        if flat and t.numel() == math.prod(shape):
            t = t.reshape(shape)
        try:
            t = torch.broadcast_to(t, shape).clone()
        except RuntimeError:
            raise InvalidInputError(f"bounds of shape {tuple(t.shape)} do not broadcast to "
                                    f"one input of shape {shape}") from None
        sides.append(t)
    lo, hi = sides
    if bool(torch.isnan(lo).any() | torch.isnan(hi).any() | (lo > hi).any()):
        raise InvalidInputError("bounds must satisfy lo <= hi with no NaN")
    return lo, hi
