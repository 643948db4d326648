"""Relative cost of the bounded flip-step search (:mod:`randadv.experiments._flip_capped`): the
expected multiply-adds of the exact layer sweep, from a unit's widths and theory, for the
experiments' ``unit_cost`` (the dry run's cost model fits the scale; only the shape counts).

The layer sweep (:func:`randadv.attacks.first_root_on_ray`) carries, window by window, every
breakpoint a ray has met in layers 1..l-1 through layer l's d_{l-1} x d_l product, so a ray's
cost is set by how many pre-activation zeros it crosses before it stops:

* zeros crossed: where the ray's direction has turned by an angle theta, a unit of layer l has
  changed sign about theta / pi times along a random direction (the normalised ReLU correlation
  map has c'(1) = 1 at every depth). The ray is the gradient direction, aligned with the
  Jacobian J_l of layer l: ||J_l g|| / ||J_l u|| (u random) is sqrt(d tr((J^T J)^2) /
  tr(J^T J)^2) = ``alignment`` sqrt(1 + sum_{j <= l} d / d_j), the second moment of a free
  product of the layers' Gram matrices, so layer l's image of the ray turns by
  atan(alignment tan theta) and the ray meets d_l atan(alignment tan theta) / pi of its zeros;
* where a ray stops, in units tau of its linearised root |f| / ||grad f||^2: the windows start at
  [0, 3] and grow by doubling; a ray that flips stops with the window holding its root (about
  1.2, the measured nonlinear ratio), one that does not at the batch's bound, the largest of the
  rows' max_rel ||x|| / ||grad f|| (about ``BOUND_SPREAD`` = 2 times a typical row's,
  measured), tau = 2 max_rel / l with l = |f| / (||grad f|| ||x||) ~ E|u_1| = sqrt(2 / (pi d));
  the direction has turned by atan2(tau l sqrt(1 - l^2), 1 - tau l^2) at tau;
* the memory cap: a window whose breakpoints at some layer exceed ``SWEEP_MAX_BYTES`` is halved
  for its fullest rows, whose work up to that layer is redone (simulated below on the
  expected rays, window by window);
* what is not multiply-adds: each layer of each window costs ~20 tensor operations of fixed
  cost (``STEP_OVERHEAD``) and each breakpoint value held some bookkeeping (sign tests,
  insertion: ``ELEM_COST``), in multiply-adds; fitted (least squares in relative error) on the
  CPU times of 26 paper units: ~1e7 and ~120-170 (0.3 ms and 5 ns against ~30 GMAC/s). They
  dominate the quick profiles' units of a few ms and layers much wider than the one before
  them (the polynomial family's 16 -> 4096).

Measured with ``benchmarks/sweep_cost_probe.py`` on paper units of depth-constant and
multilayer-single-step: the sweep's multiply-adds are 1.0-1.15x this count from each ray's own
linearised root, flip outcome and bound (1.7x for widening nets, where the memory cap, left out
of the per-ray count, redoes work), and CPU time mostly follows them (25-30 GMAC/s at width
256-512, one thread).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from randadv.attacks.piecewise_linear import SWEEP_MAX_BYTES
from randadv.theory import relu_correlation_iterates

BOUND_SPREAD = 2.0        # the batch's largest search bound over a typical row's (measured)
ROOT_RATIO = 1.2          # first root over the linearised root, rays that flip (measured)
STEP_OVERHEAD = 1e7       # a layer of a window's fixed cost, in multiply-adds (measured)
ELEM_COST = 150.0         # a breakpoint value's bookkeeping, in multiply-adds (measured)
FLIP_REACH = 0.75         # in flip_fraction (fitted on the paper runs' flip fractions)


def alignment(widths: Sequence[int]) -> list[float]:
    """Per hidden layer l, ||J_l g|| / ||J_l u|| for the gradient direction g against a random
    one: sqrt(1 + sum_{j <= l} d / d_j) (widths = [d, d_1, ..., d_L])."""
    d, s, out = widths[0], 0.0, []
    for b in widths[1:]:
        s += d / b
        out.append(math.sqrt(1.0 + s))
    return out


def zeros_crossed(widths: Sequence[int], theta: float,
                  align: Sequence[float] | None = None) -> list[float]:
    """Expected zeros of each hidden layer's pre-activations met by a gradient ray whose
    direction has turned by ``theta`` (radians); ``align``: :func:`alignment` of the widths."""
    s, c = math.sin(theta), math.cos(theta)
    return [b * math.atan2(a * s, c) / math.pi
            for a, b in zip(alignment(widths) if align is None else align, widths[1:],
                            strict=True)]


def turned(tau: float, lin: float) -> float:
    """The angle between x and x + t u, u = -sign f(x) grad f(x), at t = tau |f| / ||grad f||^2,
    where lin = |f| / (||grad f|| ||x||) (bias-free ReLU nets: x . grad f = f)."""
    return math.atan2(tau * lin * math.sqrt(max(0.0, 1.0 - lin * lin)), 1.0 - tau * lin * lin)


def flip_fraction(depth: int, narrowest: int) -> float:
    """Expected fraction of gradient rays that flip within the bound, for a net of ``depth``
    hidden layers whose narrowest layer (the input included) has ``narrowest`` units. f on the
    sphere is a per-network constant (a share c^L(0) of its variance, Lemma 3.2) plus a part
    that varies over the sphere (D = 1 - c^L(0)); a ray flips when the constant is within
    ``reach`` standard deviations of the varying part: erf(reach sqrt(D / (1 - D)) / sqrt 2).
    The reach grows with the narrowest width, as FLIP_REACH narrowest^(1/4) (fitted on the
    flip fractions of depth-constant's and multilayer-single-step's paper runs: 1.2-2.2 at
    narrowest 16, 2-3.5 at 64, 3-5 from 256)."""
    c = float(relu_correlation_iterates(0.0, depth)[-1])
    if c <= 0.0:
        return 1.0
    reach = FLIP_REACH * narrowest ** 0.25
    return math.erf(reach * math.sqrt(max(0.0, 1.0 - c) / c) / math.sqrt(2.0))


def sweep_multiply_adds(widths: Sequence[int], rays: Sequence[tuple[float, float | None]],
                        lin: float, max_tau: float, max_bytes: int = SWEEP_MAX_BYTES,
                        itemsize: int = 4, parts: bool = False
                        ) -> float | tuple[float, float, float]:
    """Multiply-adds of the layer sweep over groups of like rays ``(count, root)`` (root in units
    of the linearised root, None: no root within the bound ``max_tau``), windows and the memory
    cap as in :func:`randadv.attacks.first_root_on_ray`; ``lin``: the rays'
    |f| / (||grad f|| ||x||). ``parts``: also the breakpoint values held and the layer steps
    (one product each), ``(multiply-adds, values, steps)``."""
    n_layers = len(widths) - 1
    groups = [dict(n=n, root=r, lo=0.0, hi=min(3.0, max_tau)) for n, r in rays if n > 0]
    align = alignment(widths)
    work = elems = steps = 0.0
    for _ in range(10_000):
        live = [g for g in groups if not g.get("done")]
        if not live:
            break
        for g in live:
            a = zeros_crossed(widths, turned(g["hi"], lin), align)
            b = zeros_crossed(widths, turned(g["lo"], lin), align)
            g.update(new=[x - y for x, y in zip(a, b, strict=True)], rows=2.0, deferred=False)
        for layer in range(n_layers):
            act = [g for g in live if not g["deferred"]]
            steps += 1
            for g in act:
                work += g["n"] * g["rows"] * widths[layer] * widths[layer + 1]
                g["rows"] += g["new"][layer]
                elems += g["n"] * g["rows"] * widths[layer + 1]
            cap = max(64, max_bytes // (widths[layer + 1] * itemsize))
            if sum(g["n"] * g["rows"] for g in act) > cap:
                share = max(cap // max(sum(g["n"] for g in act), 1), 2)
                for g in act:
                    g["deferred"] = g["rows"] >= share + 1     # whole breakpoints
        for g in live:
            lo, hi = g["lo"], g["hi"]
            if g["deferred"]:
                g["hi"] = lo + 0.5 * (hi - lo)
            elif (g["root"] is not None and hi >= g["root"]) or hi >= max_tau:
                g["done"] = True
            else:
                g["lo"], g["hi"] = hi, min(hi + 2.0 * (hi - lo), max_tau)
    return (work, elems, steps) if parts else work


@functools.lru_cache(maxsize=4096)
def flip_search_cost(widths: tuple[int, ...], rays: int, max_rel: float,
                     flip: float | None = None) -> float:
    """Multiply-adds of :func:`randadv.experiments._flip_capped.flip_steps_capped` on ``rays``
    inputs of a net with ``widths`` = [d, d_1, ..., d_L]: the value-and-gradient and verifying
    passes plus the layer sweep (depth 1: the kink sweep, one product). ``flip``: the fraction
    of rays that flip within the bound (default :func:`flip_fraction` of the depth and the
    narrowest width). Per-layer steps and breakpoint values are charged ``STEP_OVERHEAD`` and
    ``ELEM_COST`` multiply-adds."""
    passes = 4.0 * rays * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    if len(widths) == 2:
        return passes + 3 * STEP_OVERHEAD           # the kink sweep's windows
    p = flip_fraction(len(widths) - 1, min(widths)) if flip is None else flip
    lin = math.sqrt(2.0 / (math.pi * widths[0]))
    max_tau = BOUND_SPREAD * max_rel / lin
    groups = [(rays * p, ROOT_RATIO), (rays * (1 - p), None)]
    work, elems, steps = sweep_multiply_adds(widths, groups, lin, max_tau, parts=True)
    return passes + work + ELEM_COST * elems + STEP_OVERHEAD * steps
