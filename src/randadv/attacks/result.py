"""Result types of the attacks: they say what they hold, every field of shape (B, ...)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TypeVar

import torch

_Step = TypeVar("_Step", bound="_FlipStep")


@dataclass
class _FlipStep:
    """The fields of a smallest flipping step that both searches report, each of shape (B,):
    the step along grad f(x), where f reaches 0, whether it flipped, f(x), ||grad f(x)||_2 and
    the perturbation's norm (documented on :class:`FlipStepResult`)."""

    eta: torch.Tensor
    eta_boundary: torch.Tensor
    flipped: torch.Tensor
    f_x: torch.Tensor
    grad_norm: torch.Tensor
    perturbation_norm: torch.Tensor

    def __len__(self) -> int:
        return int(self.eta.shape[0]) if self.eta.dim() else 1

    def to(self: _Step, device: torch.device | str) -> _Step:
        return type(self)(**{f.name: _to(getattr(self, f.name), device) for f in fields(self)})


@dataclass
class FlipStepResult(_FlipStep):
    """Result of :func:`randadv.attacks.smallest_flip_step` for a batch of B inputs.

    Attributes:
        eta: signed step, of sign opposite to f(x), with ``x_adv = x + eta * grad f(x)``;
            NaN where no flipping step was found within ``|eta| <= max_eta``. It exceeds the
            exact smallest flipping step ``eta_boundary`` by the push that takes |f(x_adv)| past
            ``rounding_bound`` (about 2 rounding_bound / ||grad f||^2; median relative push
            7.8e-5 on a float32 d = 100, k = 1000 ReLU net), so ``x_adv`` is on the other side
            in float64 too and in a batch of any size.
        eta_boundary: the smallest |eta| at which f(x + eta grad f(x)) reaches 0 (signed;
            exact to float rounding for piecewise-linear models); NaN where none.
        flipped: sign f(x_adv) != sign f(x), from a forward pass at ``x_adv``.
        f_x: f(x).
        grad_norm: ||grad f(x)||_2.
        perturbation_norm: |eta| * ||grad f(x)|| (NaN where not flipped).
        x_adv: the adversarial example (equal to x where not flipped).
        f_adv: f(x_adv) from the verifying forward pass.
        rounding_bound: the bound on the forward pass's rounding error, from f(x) and
            grad f(x) (:func:`randadv.attacks.verify.rounding_bound_of`; at the sizes of the
            paper it is within 0.83-1.0 of the bound at the boundary point); a flip is reported
            only where |f_adv| exceeds it, so ``|f_adv| / rounding_bound`` is the verified
            margin.
        method: the search that ran (a str for the whole batch): ``"kinks"`` (exact kink sweep,
            one hidden layer), ``"layers"`` / ``"walk"`` (exact piecewise-linear search of a
            deep ReLU net), ``"newton"`` (bracket + safeguarded Newton on one hidden layer of a
            smooth activation) or ``"bracket"`` (grid bracket + Newton on any model).

    Paper:
        Bubeck et al. 2021, Section 4 (the smallest eta flipping the sign, |eta| < 20, and
        the gradient norm, Figures 1-7).

    Example:
        >>> import torch
        >>> from randadv.nets import TwoLayerRandomNet
        >>> from randadv.attacks import smallest_flip_step
        >>> net = TwoLayerRandomNet(100, 200, seed=0)
        >>> x = torch.nn.functional.normalize(torch.randn(8, 100)) * 10.0   # ||x|| = sqrt(d)
        >>> r = smallest_flip_step(net, x)
        >>> len(r), r.method, r.flip_rate
        (8, 'kinks', 1.0)
        >>> bool((torch.sign(r.eta) == -torch.sign(r.f_x)).all())
        True
        >>> bool((r.eta.abs() >= r.eta_boundary.abs()).all())   # pushed past the boundary
        True
        >>> bool((r.f_adv.abs() > r.rounding_bound).all())       # by more than the rounding
        True
    """

    x_adv: torch.Tensor
    f_adv: torch.Tensor
    rounding_bound: torch.Tensor
    method: str = "bracket"

    @classmethod
    def concat(cls, parts: list[FlipStepResult]) -> FlipStepResult:
        """The results of consecutive batches of one search as one (the first one's
        ``method``)."""
        return cls(**{f.name: parts[0].method if f.name == "method" else
                      torch.cat([getattr(q, f.name) for q in parts]) for f in fields(cls)})

    @property
    def flip_rate(self) -> float:
        return float(self.flipped.float().mean())

    def __repr__(self) -> str:
        n = len(self)
        eta = self.eta.reshape(-1)[self.flipped.reshape(-1)].abs()
        mean = f"{float(eta.mean()):.4g}" if eta.numel() else "nan"
        return (f"FlipStepResult(n={n}, flipped={int(self.flipped.sum())}/{n}, "
                f"mean |eta| over flipped={mean}, "
                f"mean grad_norm={float(self.grad_norm.float().mean()):.4g}, "
                f"method={self.method!r})")


@dataclass
class RayFlipStepResult(_FlipStep):
    """Result of :func:`randadv.attacks.smallest_flip_step_on_ray` for B sampled pairs.

    The fields of :class:`FlipStepResult` that exist without a materialised input (float64,
    each of shape (B,)).

    Attributes:
        eta: signed step, of sign opposite to f(x), past the boundary by the verification's
            push; NaN where no flipping step was found within ``|eta| <= max_eta``.
        eta_boundary: the smallest |eta| at which f(x + eta grad f(x)) reaches 0 (signed);
            NaN where none.
        flipped: sign f(x + eta grad f) != sign f(x), from the ray's k numbers, with |f| above
            ``rounding_bound``.
        f_x: f(x).
        grad_norm: ||grad f(x)||_2.
        perturbation_norm: |eta| ||grad f(x)|| (NaN where not flipped).
        f_adv: f at the reported step.
        rounding_bound: the bound on the rounding error of the float64 sum over the k units at
            the boundary (:func:`randadv.attacks.verify.unit_sum_rounding_bound`).
        method: ``"kinks"`` (exact kink sweep, piecewise-linear psi) or ``"newton"``.

    Paper:
        Bubeck et al. 2021, Section 4 (the smallest flipping step eta), on the rays of eq. (1)
        sampled in law (:func:`randadv.theory.two_layer_law.sample_two_layer_ray`).

    Example:
        >>> from randadv.attacks import smallest_flip_step_on_ray
        >>> from randadv.theory.two_layer_law import sample_two_layer_ray
        >>> r = smallest_flip_step_on_ray(sample_two_layer_ray(1000, 100, pairs=4))
        >>> len(r), r.method, r.eta.dtype
        (4, 'kinks', torch.float64)
        >>> bool(r.flipped.all()), bool((r.eta.abs() >= r.eta_boundary.abs()).all())
        (True, True)
    """

    f_adv: torch.Tensor
    rounding_bound: torch.Tensor
    method: str = "kinks"


def _to(v: object, device: torch.device | str) -> object:
    return v.to(device) if isinstance(v, torch.Tensor) else v
