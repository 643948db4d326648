"""Bounds on the pre-activations of a ReLU network read as affine layers
(:class:`randadv.protocol.AffineNet`, from :func:`randadv.protocol.read_piecewise_linear`).

Pre-activation bounds over a box (interval arithmetic, optionally intersected with an l1/l2/linf
ball around x) and their LP tightening with the triangle relaxation of the ReLU are the standard
ingredients of MILP verification (Tjeng, Xiao, Tedrake 2019, Sec. 3-4; Ehlers 2017).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from randadv.protocol.norms import dual_pnorm
from randadv.protocol.piecewise import AffineNet


@dataclass
class Box:
    """Per-coordinate bounds ``lo <= delta <= hi`` on the perturbation, with an optional norm
    ball ``||delta||_norm <= radius`` (all points of interest satisfy both)."""

    lo: np.ndarray
    hi: np.ndarray
    norm: str
    radius: float


def interval_bounds(net: AffineNet, x: np.ndarray, box: Box) -> list[tuple[np.ndarray,
                                                                          np.ndarray]]:
    """Bounds ``[(lo_l, hi_l)]`` of every layer's pre-activation (output included) over
    ``x + delta``, ``delta`` in the box and the ball (interval arithmetic)."""
    out = []
    w, b = net.layers[0]
    c = w @ x + b
    wp, wn = np.clip(w, 0, None), np.clip(w, None, 0)
    lo = c + wp @ box.lo + wn @ box.hi
    hi = c + wp @ box.hi + wn @ box.lo
    if math.isfinite(box.radius):
        r = box.radius * dual_pnorm(w, box.norm, axis=1)
        lo, hi = np.maximum(lo, c - r), np.minimum(hi, c + r)
    out.append((lo, hi))
    for w, b in net.layers[1:]:
        hl, hh = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
        wp, wn = np.clip(w, 0, None), np.clip(w, None, 0)
        lo = wp @ hl + wn @ hh + b
        hi = wp @ hh + wn @ hl + b
        out.append((lo, hi))
    return out


def _relax_rows(net: AffineNet, x: np.ndarray, bounds: list[tuple[np.ndarray, np.ndarray]],
                n_layers: int, offsets: list[int]) -> tuple[list, list, list, list, list]:
    """Triangle-relaxation rows of hidden layers ``< n_layers`` (rows, cols, vals, lo, hi)."""
    rows, cols, vals, rlo, rhi = [], [], [], [], []
    r = 0
    for l in range(n_layers):
        w, b = net.layers[l]
        const = b + (w @ x if l == 0 else 0.0)
        src = offsets[l]  # column offset of the layer's input variables
        dst = offsets[l + 1]
        lo, hi = bounds[l]
        nz_r, nz_c = np.nonzero(w)
        for j in range(w.shape[0]):
            if hi[j] <= 0:
                continue  # h fixed to 0 by its variable bounds
            js = nz_c[nz_r == j]
            wj = w[j, js]
            if lo[j] >= 0:  # h = z
                rows += [r] * (len(js) + 1)
                cols += [dst + j, *(src + js)]
                vals += [1.0, *(-wj)]
                rlo.append(const[j])
                rhi.append(const[j])
                r += 1
                continue
            # h >= z
            rows += [r] * (len(js) + 1)
            cols += [dst + j, *(src + js)]
            vals += [1.0, *(-wj)]
            rlo.append(const[j])
            rhi.append(np.inf)
            r += 1
            # h <= u (z - l) / (u - l)
            s = hi[j] / (hi[j] - lo[j])
            rows += [r] * (len(js) + 1)
            cols += [dst + j, *(src + js)]
            vals += [1.0, *(-s * wj)]
            rlo.append(-np.inf)
            rhi.append(s * (const[j] - lo[j]))
            r += 1
    return rows, cols, vals, rlo, rhi


def lp_tighten(net: AffineNet, x: np.ndarray, box: Box,
               bounds: list[tuple[np.ndarray, np.ndarray]], deadline: float | None = None
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Tighten the bounds of unstable neurons by LP (min/max of each pre-activation over the
    triangle relaxation of the earlier layers, the box, and the l1/linf ball when linear);
    later layers are re-propagated by interval arithmetic first. Stops at ``deadline``."""
    bounds = [(lo.copy(), hi.copy()) for lo, hi in bounds]
    d = net.d
    widths = net.hidden_widths
    use_l1 = box.norm == "l1" and math.isfinite(box.radius)
    n_aux = d if use_l1 else 0
    # columns: delta (d), [e (d) for l1], h_1, ..., h_L; offsets[l] = first input column of
    # layer l (offsets[0] = 0: delta)
    offsets = [0]
    start = d + n_aux
    for w in widths:
        offsets.append(start)
        start += w
    n_var = start
    for l in range(len(widths)):
        lo, hi = bounds[l]
        todo = np.nonzero((lo < 0) & (hi > 0))[0]
        if l == 0 and not use_l1:
            todo = todo[:0]  # interval bounds of layer 1 over a box are exact
        if len(todo) == 0:
            continue
        if deadline is not None and time.perf_counter() > deadline:
            break
        rows, cols, vals, rlo, rhi = _relax_rows(net, x, bounds, l, offsets)
        if use_l1:
            r0 = (max(rows) + 1) if rows else 0
            for i in range(d):  # e_i >= |delta_i|
                rows += [r0 + 2 * i, r0 + 2 * i, r0 + 2 * i + 1, r0 + 2 * i + 1]
                cols += [d + i, i, d + i, i]
                vals += [1.0, -1.0, 1.0, 1.0]
                rlo += [0.0, 0.0]
                rhi += [np.inf, np.inf]
            rows += [r0 + 2 * d] * d
            cols += list(range(d, 2 * d))
            vals += [1.0] * d
            rlo.append(-np.inf)
            rhi.append(box.radius)
        vlo = np.zeros(n_var)
        vhi = np.zeros(n_var)
        vlo[:d], vhi[:d] = box.lo, box.hi
        if use_l1:
            vhi[d:2 * d] = np.maximum(np.abs(box.lo), np.abs(box.hi))
        for k in range(l):
            plo, phi = bounds[k]
            vhi[offsets[k + 1]:offsets[k + 1] + widths[k]] = np.maximum(phi, 0.0)
        n_used = d + n_aux if l == 0 else offsets[l] + widths[l - 1]
        a_ub = b_ub = a_eq = b_eq = None
        if rows:
            a_full = sparse.csr_matrix((vals, (rows, cols)), shape=(max(rows) + 1, n_var))
            a_full = a_full[:, :n_used]
            rlo_a, rhi_a = np.asarray(rlo, float), np.asarray(rhi, float)
            eq = rlo_a == rhi_a
            up = np.nonzero(np.isfinite(rhi_a) & ~eq)[0]
            dn = np.nonzero(np.isfinite(rlo_a) & ~eq)[0]
            if len(up) + len(dn):
                a_ub = sparse.vstack([a_full[up], -a_full[dn]]).tocsr()
                b_ub = np.concatenate([rhi_a[up], -rlo_a[dn]])
            if eq.any():
                a_eq, b_eq = a_full[np.nonzero(eq)[0]], rlo_a[eq]
        w, b = net.layers[l]
        const = b + (w @ x if l == 0 else 0.0)
        src = offsets[l]
        var_bounds = list(zip(vlo[:n_used], vhi[:n_used], strict=True))
        for j in todo:
            if deadline is not None and time.perf_counter() > deadline:
                break
            c = np.zeros(n_used)
            c[src:src + w.shape[1]] = w[j]
            new = []
            for sign in (1.0, -1.0):
                res = linprog(sign * c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq,
                              bounds=var_bounds, method="highs")
                new.append(sign * res.fun + const[j] if res.status == 0 else None)
            if new[0] is not None:
                lo[j] = max(lo[j], new[0] - 1e-7 * (1.0 + abs(new[0])))
            if new[1] is not None:
                hi[j] = min(hi[j], new[1] + 1e-7 * (1.0 + abs(new[1])))
        bounds[l] = (lo, hi)
        # re-propagate the later layers from the tightened ones
        for k in range(l + 1, len(net.layers)):
            w2, b2 = net.layers[k]
            hl, hh = np.maximum(bounds[k - 1][0], 0.0), np.maximum(bounds[k - 1][1], 0.0)
            wp, wn = np.clip(w2, 0, None), np.clip(w2, None, 0)
            nlo, nhi = wp @ hl + wn @ hh + b2, wp @ hh + wn @ hl + b2
            bounds[k] = (np.maximum(bounds[k][0], nlo), np.minimum(bounds[k][1], nhi))
    return bounds
