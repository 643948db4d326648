"""What every architecture description has: ``n``, ``pixel_ratio`` and the robustness radii of
De Palma et al. (2021) that follow from them (:mod:`randadv.theory.robustness_bounds`)."""

from __future__ import annotations

import torch
from numpy.typing import ArrayLike

from randadv.protocol.piecewise import PiecewiseLinearModel, read_piecewise_linear
from randadv.theory.robustness_bounds import (
    corollary1_l1_radius,
    corollary1_segment_radius,
    lp_radius,
)


class _Radii:
    """Mixin: the radii of :mod:`randadv.theory.robustness_bounds` at the spec's ``n`` and
    ``pixel_ratio`` (the subclass defines both), and the piecewise-linear reading of the built
    network (the subclass defines ``build``)."""

    n: int
    pixel_ratio: float

    def piecewise_form(self, seed: int = 0, *, dtype: torch.dtype = torch.float64
                       ) -> PiecewiseLinearModel:
        """The network of seed ``seed`` read by randadv's one piecewise-linear reader
        (:func:`randadv.protocol.read_piecewise_linear`: its native stack, float64 affine
        layers, dense stack), as the exact ray and region walks and the MILP encoding read it."""
        net = self.build(seed, dtype=dtype)  # type: ignore[attr-defined]
        return read_piecewise_linear(net, getattr(self, "input_shape", None))

    def corollary1_l1_radius(self, delta: ArrayLike, x_norm2: ArrayLike):
        """:func:`randadv.theory.corollary1_l1_radius` (eq. (16)) of this architecture."""
        return corollary1_l1_radius(self.n, delta, self.pixel_ratio, x_norm2)

    def corollary1_segment_radius(self, delta: ArrayLike, x_norm2: ArrayLike):
        """:func:`randadv.theory.corollary1_segment_radius` (eq. (18)) of this architecture."""
        return corollary1_segment_radius(delta, self.pixel_ratio, x_norm2)

    def lp_radius(self, p: float, delta: ArrayLike, x_norm2: ArrayLike):
        """:func:`randadv.theory.lp_radius` (Remark 5, eq. (23)) of this architecture."""
        return lp_radius(p, self.n, delta, self.pixel_ratio, x_norm2)
