"""Closest adversarial examples of one model at a batch of inputs in several l_p norms at once:
:func:`closest_adversarial_all_norms`. Each norm's attack
(:func:`randadv.attacks.closest.closest_adversarial`) returns verified adversarial examples; any
verified example, whatever norm it was found in, is an adversarial point at its own l_p distance,
so the distance reported in norm p is the smallest l_p distance over all of them (an upper bound
of the true minimal distance, never a guess). Used by the De Palma, Kiani, Lloyd (ICML 2021)
experiments (``closest-adversarial``, ``trained-vs-random``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from randadv.attacks.checks import scalar_output
from randadv.attacks.closest import closest_adversarial
from randadv.protocol.adversarial import is_adversarial
from randadv.protocol.norms import lp_norm

__all__ = ["NormBest", "closest_adversarial_all_norms"]


def _lp_rows(x: torch.Tensor, norm: str) -> torch.Tensor:
    return lp_norm(x.double(), norm)


@dataclass(frozen=True)
class NormBest:
    """The closest verified adversarial example of each input in one norm (CPU tensors), as
    :func:`closest_adversarial_all_norms` returns it.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 4 (the l1, l2, linf distances of Figures 1-3).

    Attributes:
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        distance: (B,) float64 ``||x_adv - x||_p``, the smallest over every verified example
            found for the input by any norm's attack; inf where none was found.
        x_adv: (B, ...) the example achieving ``distance`` (= x where none).
        success: (B,) bool, ``distance`` finite (every example passed the attack's verifying
            forward pass).
        attack_success: (B,) bool, this norm's own attack found a verified example.
        own_norm: (B,) bool, this norm's own attack's example is the closest one.
        f_x: (B,) f(x).
        f_adv: (B,) f(x_adv) from a second, independent forward pass over the chosen examples.
        recheck: (B,) bool, ``sign f_adv != sign f_x`` in that second pass (False where none).

    Example:
        >>> import torch
        >>> from randadv.attacks.all_norms import closest_adversarial_all_norms
        >>> net = torch.nn.Linear(4, 1)
        >>> best = closest_adversarial_all_norms(net, torch.rand(2, 4), ["l2"], {"l2": 0},
        ...                                      bounds=None)
        >>> best["l2"].norm, best["l2"].distance.shape
        ('l2', torch.Size([2]))
    """

    norm: str
    distance: torch.Tensor
    x_adv: torch.Tensor
    success: torch.Tensor
    attack_success: torch.Tensor
    own_norm: torch.Tensor
    f_x: torch.Tensor
    f_adv: torch.Tensor
    recheck: torch.Tensor


def closest_adversarial_all_norms(model: nn.Module, x: torch.Tensor, norms: Sequence[str],
                                  seeds: Mapping[str, int], *, n_starts: int = 1,
                                  steps: int = 10, bounds: tuple[float, float] | None = (0.0, 1.0)
                                  ) -> dict[str, NormBest]:
    """Attack ``x`` (B, ...) in every norm of ``norms`` (:func:`closest_adversarial`, attack seed
    ``seeds[norm]``) and keep, per norm, the closest verified example over all the norms'
    results: any verified example is an adversarial point at its own l_p distance, so the
    distance in norm p is the smallest l_p distance over all of them (an upper bound of the true
    minimal distance). Distances are recomputed in float64 from the examples.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 4 and Figures 1-3 (closest adversarial examples in
        l1, l2 and linf).

    Arguments:
        model: scalar-output model.
        x: inputs (B, ...).
        norms: among ``"l1"``, ``"l2"``, ``"linf"``.
        seeds: the attack seed of each norm.
        n_starts: starts per input of each attack; steps: its iterations.
        bounds: the input box (None: none).

    Returns:
        ``{norm: NormBest}``.

    Example:
        >>> import torch
        >>> from randadv.attacks.all_norms import closest_adversarial_all_norms
        >>> net = torch.nn.Linear(3, 1)
        >>> x = torch.rand(4, 3)
        >>> best = closest_adversarial_all_norms(net, x, ["l1", "linf"], {"l1": 0, "linf": 1},
        ...                                      bounds=None)
        >>> bool((best["linf"].distance <= best["l1"].distance).all())   # ||v||_inf <= ||v||_1
        True
    """
    results = {norm: closest_adversarial(model, x, norm, bounds=bounds, seed=seeds[norm],
                                         n_starts=n_starts, steps=steps).to("cpu")
               for norm in norms}
    x_cpu = x.detach().cpu().double()
    out: dict[str, NormBest] = {}
    for norm, r in results.items():
        # every distance in float64 from the stored examples (the attacks' own float32
        # values differ by rounding, which would mislabel own_norm)
        dist = _lp_rows(r.x_adv.double() - x_cpu, norm)
        dist[~r.success] = float("inf")
        own = dist.clone()
        x_adv = r.x_adv.clone()
        for other in results.values():
            d_other = _lp_rows(other.x_adv.double() - x_cpu, norm)
            d_other[~other.success] = float("inf")
            better = d_other < dist
            x_adv[better] = other.x_adv[better]
            dist = torch.minimum(dist, d_other)
        found = torch.isfinite(dist)
        with torch.no_grad():
            f_adv = scalar_output(model, x_adv.to(x.device)).detach().cpu()
        recheck = found & is_adversarial(f_adv, r.f_x)
        out[norm] = NormBest(norm=norm, distance=dist, x_adv=x_adv, success=found,
                             attack_success=r.success.clone(), own_norm=found & (own <= dist),
                             f_x=r.f_x, f_adv=f_adv, recheck=recheck)
    return out
