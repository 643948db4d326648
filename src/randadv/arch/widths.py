"""The hidden widths of the architecture families the experiments sweep:
:func:`multilayer_family_widths` (Bartlett, Bubeck, Cherapanamjeri 2021: constant, widening,
narrowing, bottleneck, polynomial) and :func:`bottleneck_widths` (Bartlett et al. 2021's
bottleneck layer, alone or between two wide ones). ``MLPSpec.nn_def([d, *widths])`` builds them.
"""

from __future__ import annotations

import math

from randadv.errors import InvalidInputError

__all__ = ["MULTILAYER_FAMILIES", "bottleneck_widths", "multilayer_family_widths"]

MULTILAYER_FAMILIES = ("constant", "widening", "narrowing", "bottleneck", "polynomial")
"""The families of :func:`multilayer_family_widths`.

Paper:
    Bartlett, Bubeck, Cherapanamjeri 2021, Theorem 1.1 (any widths with d_min >> (log d)^{c l}).

Example:
    >>> from randadv.arch.widths import MULTILAYER_FAMILIES
    >>> MULTILAYER_FAMILIES[0]
    'constant'
"""


def multilayer_family_widths(family: str, d: int, depth: int, width: int,
                             bottleneck_width: int, poly_cap: int) -> list[int]:
    """Hidden widths ``[d_1, ..., d_L]`` of a family: ``constant`` k, ..., k; ``widening``
    k/4 -> 4k geometrically (``narrowing`` the reverse); ``bottleneck`` k, ..., b, ..., k (b at
    layer ceil(L/2)); ``polynomial`` ceil(sqrt d), min(d^2, poly_cap), ceil(sqrt d), ...
    (alternating).

    Paper:
        Bartlett, Bubeck, Cherapanamjeri 2021, Theorem 1.1 (the widths may vary; the narrowest
        layer d_min sets the scale).

    Arguments:
        family: one of :data:`MULTILAYER_FAMILIES`.
        d: input dimension; depth: L; width: k; bottleneck_width: b; poly_cap: the cap of the
            polynomial family's wide layers.

    Returns:
        The L hidden widths.

    Example:
        >>> from randadv.arch.widths import multilayer_family_widths
        >>> multilayer_family_widths("widening", 100, 3, 64, 8, 4096)
        [16, 64, 256]
        >>> multilayer_family_widths("polynomial", 100, 3, 64, 8, 4096)
        [10, 4096, 10]
    """
    if family == "constant":
        return [width] * depth
    if family in ("widening", "narrowing"):
        if depth == 1:
            return [width]
        w = [max(1, round(width * 4.0 ** (2.0 * i / (depth - 1) - 1.0))) for i in range(depth)]
        return w if family == "widening" else w[::-1]
    if family == "bottleneck":
        w = [width] * depth
        w[(depth - 1) // 2] = bottleneck_width
        return w
    if family == "polynomial":
        lo, hi = math.ceil(math.sqrt(d)), min(d * d, poly_cap)
        return [lo if i % 2 == 0 else hi for i in range(depth)]
    raise InvalidInputError(f"unknown family {family!r}; known: {', '.join(MULTILAYER_FAMILIES)}")


def bottleneck_widths(architecture: str, m: int, width: int) -> list[int]:
    """Hidden widths with a bottleneck of m units: ``single`` [m] (the one-hidden-layer net of
    Appendix D), ``middle`` [width, m, width] (a bottleneck between two wide layers).

    Paper:
        Bartlett, Bubeck, Cherapanamjeri 2021, Appendix D (the bottleneck layer and the
        ||W^+ W x|| radius).

    Arguments:
        architecture: ``"single"`` or ``"middle"``.
        m: the bottleneck's width; width: the wide layers' width.

    Returns:
        The hidden widths.

    Example:
        >>> from randadv.arch.widths import bottleneck_widths
        >>> bottleneck_widths("middle", 4, 256)
        [256, 4, 256]
    """
    if architecture == "single":
        return [m]
    if architecture == "middle":
        return [width, m, width]
    raise InvalidInputError(f"unknown architecture {architecture!r}; known: single, middle")
