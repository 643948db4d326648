"""Quick adversarial points for an initial upper bound on the distance (numpy, float64).

DeepFool-style linearisation steps (Moosavi-Dezfooli et al. 2016) in the l_p geometry, a
random-direction line search, then exact in-region refinement (:mod:`randadv.exact.region`).
Every returned point is strictly on the other side of the boundary for the float64 network.
"""

from __future__ import annotations

import numpy as np

from randadv.exact.region import closest_in_pattern, f_range
from randadv.protocol.adversarial import is_adversarial
from randadv.protocol.norms import dual_pnorm, pnorm
from randadv.protocol.piecewise import AffineNet


def _steepest(g: np.ndarray, norm: str) -> np.ndarray:
    """Unit-l_p direction ``v`` maximising ``g . v``."""
    if norm == "l2":
        return g / np.linalg.norm(g)
    if norm == "linf":
        return np.sign(g)
    v = np.zeros_like(g)
    i = int(np.argmax(np.abs(g)))
    v[i] = np.sign(g[i])
    return v


def is_adv(net: AffineNet, pts: np.ndarray, s: float, margin: float) -> np.ndarray:
    """Rows of ``pts`` strictly across (``s f < -margin``:
    :func:`randadv.protocol.is_adversarial`) or on a plateau ``f == 0`` (zero gradient: sign 0
    there)."""
    pts = np.atleast_2d(pts)
    f = net.forward(pts)
    ok = is_adversarial(f, s, margin)
    for i in np.nonzero((f == 0.0) & ~ok)[0]:
        ok[i] = not np.any(net.value_and_grad(pts[i])[1])
    return ok


def _line_search(net: AffineNet, x: np.ndarray, s: float, dirs: np.ndarray, t_max: float,
                 lo: np.ndarray, hi: np.ndarray, margin: float, n_grid: int = 48
                 ) -> list[np.ndarray]:
    """Along each ray ``clip(x + t u)``, ``0 < t <= t_max``: first adversarial grid point, then
    bisection. Returns the adversarial points found."""
    ts = t_max * (np.arange(1, n_grid + 1) / n_grid)
    pts = np.clip(x[None, None, :] + ts[None, :, None] * dirs[:, None, :], lo, hi)
    ok = is_adv(net, pts.reshape(-1, len(x)), s, margin).reshape(len(dirs), n_grid)
    out = []
    for k in range(len(dirs)):
        idx = np.nonzero(ok[k])[0]
        if len(idx) == 0:
            continue
        j = idx[0]
        ta, tb = (ts[j - 1] if j > 0 else 0.0), ts[j]
        for _ in range(60):
            tm = 0.5 * (ta + tb)
            if is_adv(net, np.clip(x + tm * dirs[k], lo, hi), s, margin)[0]:
                tb = tm
            else:
                ta = tm
        out.append(np.clip(x + tb * dirs[k], lo, hi))
    return out


def quick_attack(net: AffineNet, x: np.ndarray, norm: str, lo: np.ndarray, hi: np.ndarray, *,
                 radius: float, n_random: int = 32, n_refine: int = 40, seed: int = 0,
                 margin: float = 0.0) -> np.ndarray | None:
    """The closest adversarial point found (``s f(x') < -margin`` with ``s = sign f(x)``),
    or None. ``radius`` bounds the random-direction search (in linf)."""
    f0 = float(net.forward(x[None, :])[0])
    s = 1.0 if f0 > 0 else -1.0
    cands: list[np.ndarray] = []

    def adv(p: np.ndarray) -> bool:
        return bool(is_adv(net, p, s, margin)[0])

    # DeepFool in the l_p geometry
    y = x.copy()
    for _ in range(50):
        fy, g = net.value_and_grad(y)
        if s * fy < -margin or (fy == 0.0 and not np.any(g)):
            break
        gq = float(dual_pnorm(g, norm))
        if gq == 0.0:
            break
        step = (abs(fy) + margin) * 1.0001 / gq + 1e-12 * (1.0 + np.abs(y).max())
        y = np.clip(y - s * step * _steepest(g, norm), lo, hi)
    if adv(y):
        cands += _line_search(net, x, s, (y - x)[None, :], 1.0, lo, hi, margin, n_grid=1)
    # random directions (unit l_p length), line search up to the best distance so far
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_random, len(x)))
    if norm == "linf":
        dirs = np.sign(dirs)
    dirs /= pnorm(dirs, norm)[:, None]
    best = min((float(pnorm(c - x, norm)) for c in cands), default=None)
    t_max = best if best is not None else radius
    cands += [p for p in _line_search(net, x, s, dirs, t_max, lo, hi, margin)]
    cands = [c for c in cands if adv(c)]
    if not cands:
        return None
    y = min(cands, key=lambda c: float(pnorm(c - x, norm)))
    return pattern_search(net, x, y, norm, lo, hi, s, margin, max_solves=n_refine)


def pattern_search(net: AffineNet, x: np.ndarray, y: np.ndarray, norm: str, lo: np.ndarray,
                   hi: np.ndarray, s: float, margin: float, max_solves: int = 40) -> np.ndarray:
    """Local search over linear regions from the adversarial point ``y``: the exact closest
    adversarial point of the current region (LP/QP), then the regions across its tight
    neuron constraints (one flipped neuron each), first improvement, until no improvement."""
    dist = lambda p: float(pnorm(p - x, norm))  # noqa: E731
    best, best_d = y, dist(y)
    pat = net.pattern(y)
    seen = {_key(pat)}
    n = 0

    def solve(pattern: list[np.ndarray]) -> np.ndarray | None:
        nonlocal n
        n += 1
        lo_f, hi_f = f_range(net, pattern, x, s, margin)
        p, _, _ = closest_in_pattern(net, pattern, x, norm, lo, hi, lo_f, hi_f)
        return p if p is not None and is_adv(net, p, s, margin)[0] else None

    p = solve(pat)
    if p is None:
        return best
    if dist(p) < best_d:
        best, best_d = p, dist(p)
    while n < max_solves:
        zs = net.preactivations(p[None, :])[:-1]
        tight = [(l, j) for l, z in enumerate(zs)
                 for j in np.nonzero(np.abs(z[0]) <= 1e-7 * (1.0 + np.abs(z[0]).max()))[0]]
        moved = False
        for l, j in tight:
            if n >= max_solves:
                break
            new = [q.copy() for q in pat]
            new[l][j] = ~new[l][j]
            if _key(new) in seen:
                continue
            seen.add(_key(new))
            q = solve(new)
            if q is not None and dist(q) < best_d * (1 - 1e-12):
                best, best_d, pat, p, moved = q, dist(q), new, q, True
                break
        if not moved:
            break
    return best


def _key(pattern: list[np.ndarray]) -> bytes:
    return b"".join(np.packbits(p).tobytes() for p in pattern)
