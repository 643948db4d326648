"""Segment crossing: the first point of a segment ``x + t v``, ``0 < t <= t_max``, where the
decision sign f changes.

Paper:
    De Palma, Kiani, Lloyd, "Adversarial robustness guarantees for random deep neural
    networks", ICML 2021, Theorem 1 (second part) and Corollary 1, eq. (18)-(19): along a fixed
    unit direction v the segment ``L_r = {x_0 + t v : 0 <= t <= r}`` does not meet the boundary
    with probability >= 1 - delta for r up to ``pi ||x_0||_2 delta / (2 M + pi)``.

Exact for piecewise-linear ReLU networks randadv can read: the region walk of
:func:`randadv.attacks.piecewise_linear.first_root_on_ray` on the stack of the one reader
(:meth:`randadv.protocol.PiecewiseLinearModel.stack`): the model's own matrices (RandomMLP, ReLU
MLP ``nn.Sequential``), or the dense affine layers of a small conv ``nn.Sequential`` or ReLU zoo
network (the zoo's fc net at every size, its conv nets only when tiny). Other models: the
bracket + safeguarded Newton search of
:func:`randadv.attacks.line_search.first_root_bracketed` (roots closer together than ``t_max /
n_grid`` may be missed there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from randadv.attacks.checks import check_attack_input, check_positive, scalar_output
from randadv.attacks.line_search import first_root_bracketed
from randadv.attacks.piecewise_linear import first_root_on_ray
from randadv.attacks.verify import verified_flip_along
from randadv.errors import InvalidInputError
from randadv.protocol.piecewise import PiecewiseLinearStack, model_stack


@dataclass
class SegmentCrossing:
    """Result of :func:`first_boundary_crossing` for B inputs (fields of shape (B,) / (B, ...)).

    Attributes:
        t: the first boundary point ``x + t v`` (f = 0 up to float rounding), NaN where the
            segment does not cross.
        t_adv: the verified crossing step (``t`` pushed past the boundary until |f| exceeds the
            forward pass's rounding bound, see :func:`randadv.attacks.verify.verified_flip_along`);
            NaN where not crossed.
        crossed: sign f(x + t_adv v) != sign f(x), from a forward pass.
        x_adv: ``x + t_adv v`` (x where not crossed).
        f_x, f_adv: f at x and at x_adv.
        exact: True when the piecewise-linear region walk was used (exact to float rounding).

    Paper:
        De Palma et al. 2021, Theorem 1 (segment part) and Corollary 1, eqs. (18), (19).

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP
        >>> from randadv.attacks import first_boundary_crossing
        >>> net, x = RandomMLP([10, 32], seed=0), torch.randn(4, 10)
        >>> v = torch.nn.functional.normalize(torch.randn(4, 10))
        >>> r = first_boundary_crossing(net, x, v, t_max=50.0)
        >>> bool((torch.sign(r.f_adv[r.crossed]) != torch.sign(r.f_x[r.crossed])).all())
        True
    """

    t: torch.Tensor
    t_adv: torch.Tensor
    crossed: torch.Tensor
    x_adv: torch.Tensor
    f_x: torch.Tensor
    f_adv: torch.Tensor
    exact: bool


def first_boundary_crossing(model: nn.Module, x: torch.Tensor, v: torch.Tensor,
                            t_max: float, *, exact: bool | None = None, n_grid: int = 512,
                            stack: PiecewiseLinearStack | None = None,
                            bounds: tuple | None = None) -> SegmentCrossing:
    """The first ``t`` in ``(0, t_max]`` at which ``x + t v`` crosses the decision boundary.

    Paper: De Palma, Kiani, Lloyd (ICML 2021), Theorem 1 (segment part), Corollary 1 eq. (18).

    Distance: ``t`` is the l2 length along v when v is a unit vector (v is used as given).

    Arguments:
        model: torch module returning one scalar f per input.
        x: inputs (B, ...), floating point, f(x) != 0.
        v: directions (B, ...) (or one direction broadcast to every row).
        t_max: the segment's length bound.
        exact: force the exact region walk (True; raises if the model's structure is unknown),
            the generic bracketed search (False), or choose (None).
        n_grid: grid of the generic bracketing search.
        stack: a precomputed piecewise-linear structure (skips the model inspection).
        bounds: optional box ``(lo, hi)`` (scalars or tensors broadcastable to x): the point
            pushed just past the crossing is clipped to it before its check.

    Shape:
        x, v: (B, ...); fields of the :class:`SegmentCrossing` (B,) or (B, ...).

    Returns:
        :class:`SegmentCrossing`; ``crossed`` comes from a forward pass at ``x_adv``.

    Example:
        >>> import torch
        >>> from randadv.attacks import first_boundary_crossing
        >>> net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(),
        ...                           torch.nn.Linear(32, 1))
        >>> x = torch.randn(4, 10); v = torch.nn.functional.normalize(torch.randn(4, 10))
        >>> r = first_boundary_crossing(net, x, v, t_max=10.0)
        >>> r.exact, r.t.shape
        (True, torch.Size([4]))
    """
    check_attack_input(x)
    t_max = check_positive(t_max, "t_max")
    if not isinstance(v, torch.Tensor) or not v.is_floating_point():
        raise InvalidInputError("v must be a floating-point torch.Tensor")
    try:
        v = torch.broadcast_to(v.to(x.dtype), x.shape)
    except RuntimeError:
        raise InvalidInputError(f"v of shape {tuple(v.shape)} does not fit x of shape "
                                f"{tuple(x.shape)}") from None
    if not bool(torch.isfinite(v).all()):
        raise InvalidInputError("v holds NaN or inf")
    with torch.no_grad():
        f_x = scalar_output(model, x).to(x.dtype)
    if stack is None and exact is not False:
        stack = model_stack(model, x)
    if exact and stack is None:
        raise InvalidInputError("exact=True needs a ReLU network randadv can read (RandomMLP, "
                                "nn.Sequential of Linear/Conv2d/ReLU)")
    b = x.shape[0]
    t = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
    ok = torch.nonzero((f_x != 0) & (v.reshape(b, -1).abs().sum(1) > 0)).flatten()
    if ok.numel():
        if stack is not None:
            with torch.no_grad():
                dt = stack.out_w.dtype
                r = first_root_on_ray(stack, x[ok].to(dt), v[ok].to(dt), t_max)
        else:
            r = first_root_bracketed(model, x[ok], v[ok], f_x[ok], t_max, n_grid)
        t[ok] = r.to(x.dtype)
    box = None if bounds is None else tuple(
        torch.as_tensor(v_, dtype=x.dtype, device=x.device) for v_ in bounds)
    t_adv, crossed, x_adv, f_adv = verified_flip_along(model, x, v, t, f_x, box)
    return SegmentCrossing(t=t, t_adv=t_adv, crossed=crossed, x_adv=x_adv, f_x=f_x,
                           f_adv=f_adv, exact=stack is not None)
