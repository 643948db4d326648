"""What every attack and every exact solver agree on, below both: the l_p norm type and its
helpers, the "is adversarial" test, the bound on a forward pass's rounding error that decides
whether a point is on the other side, and the result type of a minimum-norm search.

``attacks`` and ``exact`` import from here; nothing here imports from them."""

from randadv.protocol.adversarial import is_adversarial, verified_flip
from randadv.protocol.norms import NORMS, Norm, check_norm, dual_norm, dual_pnorm, lp_norm, pnorm
from randadv.protocol.rounding import ROUNDING_FACTOR, rounding_bound_of

__all__ = ["NORMS", "Norm", "ROUNDING_FACTOR", "check_norm", "dual_norm", "dual_pnorm",
           "is_adversarial", "lp_norm", "pnorm", "rounding_bound_of", "verified_flip"]
