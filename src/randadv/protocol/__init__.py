"""What every attack and every exact solver agree on, below both: the l_p norm type and its
helpers, the "is adversarial" test and the verification rule, the search box of a
``bounds=(lo, hi)`` argument, the bound on a forward pass's rounding error that decides whether
a point is on the other side, the result type of a minimum-norm search, and the one reader of
piecewise-linear networks (:mod:`.piecewise`).

``attacks`` and ``exact`` import from here; nothing here imports from them."""

from randadv.protocol.adversarial import is_adversarial, verified_flip
from randadv.protocol.box import check_box
from randadv.protocol.norms import NORMS, Norm, check_norm, dual_norm, dual_pnorm, lp_norm, pnorm
from randadv.protocol.piecewise import (
    AffineNet,
    PiecewiseLinearModel,
    PiecewiseLinearStack,
    as_piecewise_linear,
    read_piecewise_linear,
    to_affine_layers,
)
from randadv.protocol.rounding import ROUNDING_FACTOR, rounding_bound_of

__all__ = ["NORMS", "AffineNet", "Norm", "PiecewiseLinearModel", "PiecewiseLinearStack",
           "ROUNDING_FACTOR", "as_piecewise_linear", "check_box", "check_norm", "dual_norm",
           "dual_pnorm", "is_adversarial", "lp_norm", "pnorm", "read_piecewise_linear",
           "rounding_bound_of", "to_affine_layers", "verified_flip"]
