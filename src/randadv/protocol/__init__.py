"""What every attack and every exact solver agree on, below both: the l_p norm type and the
bound on a forward pass's rounding error that decides whether a point is on the other side.

``attacks`` and ``exact`` import from here; nothing here imports from them."""

from randadv.protocol.norms import NORMS, Norm, check_norm
from randadv.protocol.rounding import ROUNDING_FACTOR, rounding_bound_of

__all__ = ["NORMS", "Norm", "ROUNDING_FACTOR", "check_norm", "rounding_bound_of"]
