"""The one result type of a minimum-norm search: every attack of randadv that looks for the
closest adversarial point (FMN, DDN, FAB, DeepFool, closest_adversarial, a propagation
counter's best query) and the exact solver (:func:`randadv.exact.min_distance`) report
``success``, ``distance``, ``x_adv``, ``f_x``, ``f_adv``, ``norm``, ``method``,
``rounding_bound`` and ``propagations`` under these names, with :attr:`verified_margin`."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch


@dataclass(kw_only=True)
class AdversarialResult:
    """The closest adversarial point found for each input, checked by a forward pass.

    Paper: De Palma, Kiani, Lloyd (ICML 2021), Section 4: the l_p distance from an input to the
    closest point of the other side of a binary classifier's boundary.

    The batched attacks give (B,) tensors (``x_adv`` (B, ...)); the exact solver gives one
    input's values as Python floats (``x_adv`` of the input's shape, or None).

    Attributes:
        success: a verified adversarial point was found: ``sign f(x_adv) != sign f(x)`` with
            ``|f_adv|`` above ``rounding_bound`` in the verifying forward pass.
        distance: ``||x_adv - x||_p`` in ``norm``; inf where not ``success``.
        x_adv: the adversarial points (x where not ``success`` for the batched attacks).
        f_x: f(x).
        f_adv: f(x_adv) from the verifying forward pass.
        norm: ``"l1"``, ``"l2"`` or ``"linf"`` (:class:`randadv.protocol.Norm`).
        method: the search that produced the points (one str).
        rounding_bound: the bound on the forward pass's rounding error the flip was checked
            against (:func:`randadv.protocol.rounding_bound_of`); NaN where there was no
            candidate, None where not computed.
        propagations: model propagations spent per input (forwards + backwards, AttackBench's
            count); None where not counted.

    Example::

        >>> r = randadv.attacks.fmn(net, x, "l2")
        >>> r.success, r.distance, r.verified_margin
    """

    success: torch.Tensor | bool
    distance: torch.Tensor | float
    x_adv: torch.Tensor | None
    f_x: torch.Tensor | float
    f_adv: torch.Tensor | float | None
    norm: str
    method: str = "closest"
    rounding_bound: torch.Tensor | float | None = None
    propagations: torch.Tensor | None = None

    @property
    def verified_margin(self) -> torch.Tensor | float | None:
        """``|f_adv| / rounding_bound``: how far past the rounding bound the flip is (> 1 for
        every success except the exact solver's witnesses accepted on the boundary)."""
        if self.rounding_bound is None or self.f_adv is None:
            return None
        if isinstance(self.f_adv, torch.Tensor):
            return self.f_adv.abs() / self.rounding_bound
        if self.rounding_bound == 0:
            return math.inf if self.f_adv else 0.0
        return abs(self.f_adv) / self.rounding_bound

    def to(self, device: torch.device | str) -> AdversarialResult:
        """A copy with every tensor on ``device``."""
        return type(self)(**{f.name: _to(getattr(self, f.name), device) for f in fields(self)})


def _to(v: object, device: torch.device | str) -> object:
    return v.to(device) if isinstance(v, torch.Tensor) else v
