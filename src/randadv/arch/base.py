"""What every architecture description has: ``n``, ``pixel_ratio`` and the robustness radii of
De Palma et al. (2021) that follow from them (:mod:`randadv.theory.robustness_bounds`)."""

from __future__ import annotations

from numpy.typing import ArrayLike

from randadv.theory.robustness_bounds import (
    corollary1_l1_radius,
    corollary1_segment_radius,
    lp_radius,
)


class _Radii:
    """Mixin: the radii of :mod:`randadv.theory.robustness_bounds` at the spec's ``n`` and
    ``pixel_ratio`` (the subclass defines both)."""

    n: int
    pixel_ratio: float

    def corollary1_l1_radius(self, delta: ArrayLike, x_norm2: ArrayLike):
        """:func:`randadv.theory.corollary1_l1_radius` (eq. (16)) of this architecture."""
        return corollary1_l1_radius(self.n, delta, self.pixel_ratio, x_norm2)

    def corollary1_segment_radius(self, delta: ArrayLike, x_norm2: ArrayLike):
        """:func:`randadv.theory.corollary1_segment_radius` (eq. (18)) of this architecture."""
        return corollary1_segment_radius(delta, self.pixel_ratio, x_norm2)

    def lp_radius(self, p: float, delta: ArrayLike, x_norm2: ArrayLike):
        """:func:`randadv.theory.lp_radius` (Remark 5, eq. (23)) of this architecture."""
        return lp_radius(p, self.n, delta, self.pixel_ratio, x_norm2)
