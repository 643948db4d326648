"""Exact line search on piecewise-linear networks.

Along a ray p(t) = x + t u a network built from affine maps and ReLU-like activations is
piecewise linear in t. The first t > 0 where f(p(t)) reaches 0 is found exactly (to float
rounding) from the ray's linear regions: in each region every pre-activation is affine in t, so
the region's end (the first pre-activation to change sign) and the root of the output's affine
piece are closed-form.

Two ways to enumerate the regions give the same roots:

* the layer sweep (default): over a window [t_lo, t_hi] of the ray, layer by layer, the
  breakpoints of layer l's output are those of layer l-1 plus the zeros of layer l's
  pre-activations between consecutive breakpoints (where they are affine in t). One batched
  matrix product per layer and window serves every breakpoint of every row, instead of one
  forward pass per region; windows grow geometrically from 3x the linearised root.
* the region walk: one forward pass with tangent per region crossed (kept as the reference).

With one hidden layer all kinks are known up front and :func:`kink_sweep` sorts them directly.

Used by the smallest flipping step (Bubeck et al. 2021, Section 4) and by segment crossing
(De Palma et al. 2021, Theorem 1). The stacks come from the one reader of piecewise-linear
networks, :func:`randadv.protocol.read_piecewise_linear`.
"""

from __future__ import annotations

import torch

from randadv.protocol.piecewise import LinearMap, PiecewiseLinearStack

SWEEP_MAX_BYTES = 256 * 1024**2   # the layer sweep's default bound on breakpoint values held
KINK_SWEEP_CHUNK = 1 << 20        # kinks per chunk of rows in kink_sweep (at least one row)


@torch.no_grad()
def first_root_on_ray(stack: PiecewiseLinearStack, x: torch.Tensor, u: torch.Tensor,
                      t_max: float | torch.Tensor, max_regions: int = 1_000_000, *,
                      method: str = "sweep", max_bytes: int = SWEEP_MAX_BYTES) -> torch.Tensor:
    """The first t in (0, t_max] with f(x + t u) = 0 for each row, NaN where none.

    Exact to float rounding. ``f(x)`` must be nonzero. ``t_max``: one bound, or one per row.
    ``method``: ``"sweep"`` (layer-by-layer breakpoints, batched over rows; default) or
    ``"walk"`` (one forward pass per region). ``max_regions`` bounds the regions per row of
    both; ``max_bytes`` the breakpoint values the sweep holds at once (larger windows are
    halved). With one hidden layer a vectorised kink sweep is used instead.

    Paper:
        Bubeck et al. 2021, Section 4 (the smallest flipping eta along grad f); De Palma et al.
        2021, Corollary 1, eq. (18) (the first crossing of a segment).

    Arguments:
        stack: the model's piecewise-linear stack; x: starting points (B, ...); u: directions
        (B, ...); t_max: the bound; max_regions, method, max_bytes: as above.

    Returns:
        The (B,) first roots (NaN where none).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.attacks import as_piecewise_linear, first_root_on_ray
        >>> lin = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
        >>> with torch.no_grad():
        ...     _ = lin[0].weight.copy_(torch.tensor([[1.0, 0.0]])); _ = lin[0].bias.fill_(-1.0)
        >>> u = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
        >>> t = first_root_on_ray(as_piecewise_linear(lin), torch.zeros(2, 2), u, 5.0)
        >>> [round(v, 6) if v == v else "nan" for v in t.tolist()]   # f = x_1 - 1
        [1.0, 'nan']
    """
    if method not in ("sweep", "walk"):
        raise ValueError(f"method must be 'sweep' or 'walk', got {method!r}")
    x = x.reshape(x.shape[0], -1)
    u = u.reshape(u.shape[0], -1).to(x.dtype)
    t_max = torch.as_tensor(t_max, dtype=torch.float64, device=x.device).expand(x.shape[0])
    if stack.depth == 1:
        return _first_root_one_hidden_layer(stack, x, u, t_max)
    if method == "walk":
        return _first_root_region_walk(stack, x, u, t_max.to(x.dtype), max_regions)
    return _first_root_layer_sweep(stack, x, u, t_max, max_regions, max_bytes)


def _eval_with_tangent(stack: PiecewiseLinearStack, p: torch.Tensor, u: torch.Tensor):
    """Output y and its directional derivative dy along u in the region containing p (the
    region on the +u side at a kink), and the first kink time tau of every row."""
    b = p.shape[0]
    h, dh = p, u
    tau = torch.full((b,), float("inf"), dtype=p.dtype, device=p.device)
    eps = torch.finfo(p.dtype).eps
    for layer, bias in zip(stack.maps, stack.biases, strict=True):
        zz = layer(torch.cat([h, dh]))
        z, dz = zz[:b], zz[b:]
        if bias is not None:
            z = z + bias
        tol = 64 * eps * (z.abs().amax(dim=1, keepdim=True) + 1e-300)
        near = z.abs() <= tol
        active = torch.where(near, dz > 0, z > 0)
        crossing = ~near & (z * dz < 0)
        if stack.slope_pos != stack.slope_neg:
            t_cross = torch.where(crossing, -z / dz, torch.full_like(z, float("inf")))
            tau = torch.minimum(tau, t_cross.amin(dim=1))
        slope = torch.where(active, z.new_tensor(stack.slope_pos), z.new_tensor(stack.slope_neg))
        h, dh = slope * z, slope * dz
    y = h @ stack.out_w + stack.out_b
    dy = dh @ stack.out_w
    return y, dy, tau


def _first_root_region_walk(stack, x, u, t_max, max_regions):
    b = x.shape[0]
    root = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
    t = torch.zeros(b, dtype=x.dtype, device=x.device)
    todo = torch.arange(b, device=x.device)
    for _ in range(max_regions):
        if todo.numel() == 0:
            break
        tt = t[todo]
        y, dy, tau = _eval_with_tangent(stack, x[todo] + tt[:, None] * u[todo], u[todo])
        heading = (y * dy < 0) | (y == 0)
        t_root = torch.where(heading, -y / torch.where(dy == 0, 1.0, dy),
                             torch.full_like(y, float("inf")))
        t_root = torch.where(y == 0, torch.zeros_like(y), t_root)
        hit = (t_root <= tau) & (tt + t_root <= t_max[todo])
        root[todo[hit]] = tt[hit] + t_root[hit]
        t_next = tt + tau
        t_next = torch.maximum(t_next, torch.nextafter(tt, torch.full_like(tt, float("inf"))))
        t[todo] = t_next
        todo = todo[~hit & (t_next <= t_max[todo])]
    else:
        raise RuntimeError(f"region walk did not finish within {max_regions} regions")
    return root


def _first_root_layer_sweep(stack, x, u, t_max, max_regions, max_bytes):
    """The layer sweep (module docstring) over windows [t_lo, t_hi] that start at 3x the
    linearised root (at least the first region) and double in length; rows are swept together.
    A row whose breakpoints would exceed its share of ``max_bytes`` has its window halved."""
    b, dev, f64 = x.shape[0], x.device, torch.float64
    root = torch.full((b,), float("nan"), dtype=f64, device=dev)
    if b == 0:
        return root
    y0, dy0, tau0 = (v.to(f64) for v in _eval_with_tangent(stack, x, u))
    sign0 = torch.sign(y0)
    guess = torch.where(y0 * dy0 < 0, -y0 / torch.where(dy0 == 0, 1.0, dy0), t_max)
    t_lo = torch.zeros(b, dtype=f64, device=dev)
    t_hi = torch.minimum(torch.maximum(3.0 * guess, tau0), t_max)
    regions = torch.zeros(b, dtype=torch.long, device=dev)
    itemsize = x.element_size()
    todo = torch.arange(b, device=dev)
    while todo.numel():
        n = todo.numel()
        lo, hi = t_lo[todo], t_hi[todo]
        t = torch.stack([lo, hi], 1).reshape(-1)           # points sorted by (row, t)
        row = torch.arange(n, device=dev).repeat_interleave(2)
        h = x[todo][row] + t.to(x.dtype)[:, None] * u[todo][row]
        deferred = torch.zeros(n, dtype=torch.bool, device=dev)
        for layer, bias in zip(stack.maps, stack.biases, strict=True):
            z = layer(h)
            if bias is not None:
                z = z + bias
            if stack.slope_pos != stack.slope_neg:
                z, t, row = _add_zero_crossings(z, t, row, h, layer, bias)
            if stack.slope_pos == 1.0 and stack.slope_neg == 0.0:
                h = z.clamp_(min=0.0)
            else:
                h = torch.where(z > 0, stack.slope_pos * z, stack.slope_neg * z)
            cap = max(64, max_bytes // (h.shape[1] * itemsize))
            if h.shape[0] > cap:                    # halve the windows of the fullest rows
                counts = torch.bincount(row, minlength=n)
                live = int((~deferred).sum())
                deferred |= counts > max(cap // max(live, 1), 2)
                keep = ~deferred[row]
                h, t, row = h[keep], t[keep], row[keep]
        counts = torch.bincount(row, minlength=n)
        regions[todo] += torch.clamp(counts - 1, min=0)
        if bool((regions[todo] > max_regions).any()):
            raise RuntimeError(f"layer sweep: more than {max_regions} regions on a ray")
        y = (h @ stack.out_w + stack.out_b).to(f64)
        big = t.numel()
        idx = torch.arange(big, device=dev)
        cond = sign0[todo][row] * y <= 0
        first = torch.full((n,), big, dtype=torch.long, device=dev).scatter_reduce(
            0, row[cond], idx[cond], "amin")
        found = first < big
        j = first[found]
        start = (torch.cumsum(counts, 0) - counts)[found]
        jm = torch.clamp(j - 1, min=0)
        ya, yb = y[jm], y[j]
        # f is affine between consecutive breakpoints: the root of the segment's chord
        r = t[jm] + (t[j] - t[jm]) * (ya / torch.where(ya == yb, 1.0, ya - yb))
        root[todo[found]] = torch.where(j == start, t[j], r)
        more = ~found & ~deferred & (hi < t_max[todo])
        t_lo[todo[more]] = hi[more]
        t_hi[todo[more]] = torch.minimum(hi[more] + 2.0 * (hi[more] - lo[more]),
                                         t_max[todo[more]])
        t_hi[todo[deferred]] = lo[deferred] + 0.5 * (hi[deferred] - lo[deferred])
        todo = todo[more | deferred]
    return root


def _add_zero_crossings(z: torch.Tensor, t: torch.Tensor, row: torch.Tensor, h: torch.Tensor,
                        layer: LinearMap, bias: torch.Tensor | None):
    """Breakpoints (t, row) sorted by (row, t) with pre-activations z = layer(h) + bias (N, k),
    z and h affine in t between consecutive points of a row: insert every point where a unit
    changes sign, keeping the order. The new z is interpolated (from h and a product when the
    layer widens by more than 4x: fewer operations), the unit that crosses set to exactly 0."""
    za, zb = z[:-1], z[1:]
    # segments where some unit's sign bit changes: compared 8 units at a time when k % 8 == 0
    neg = torch.signbit(z)
    words = neg.view(torch.uint8).view(torch.int64) if z.shape[1] % 8 == 0 else neg
    segs = torch.nonzero((words[:-1] != words[1:]).any(1)).flatten()
    segs = segs[row[segs] == row[segs + 1]]
    i, unit = (neg[segs] != neg[segs + 1]).nonzero(as_tuple=True)
    seg = segs[i]
    strict = (za[seg, unit] != 0) & (zb[seg, unit] != 0)    # a change of sign, not from +-0
    seg, unit = seg[strict], unit[strict]
    m = seg.numel()
    if m == 0:
        return z, t, row
    a = za[seg, unit]
    s = a / (a - zb[seg, unit])                              # in (0, 1]
    # new points ordered by (segment, fraction), placed after their segment's first point
    order = torch.argsort(s, stable=True)
    order = order[torch.argsort(seg[order], stable=True)]
    seg, unit, s = seg[order], unit[order], s[order]
    if 4 * h.shape[1] < z.shape[1]:
        z_new = layer(torch.lerp(h[seg], h[seg + 1], s[:, None]))
        if bias is not None:
            z_new = z_new + bias
    else:
        z_new = torch.lerp(za[seg], zb[seg], s[:, None])
    z_new[torch.arange(m, device=z.device), unit] = 0.0
    s64 = s.to(torch.float64)
    t_new = t[seg] + s64 * (t[seg + 1] - t[seg])
    n = t.numel()
    shift = torch.zeros(n, dtype=torch.long, device=z.device)
    shift.index_add_(0, seg + 1, torch.ones_like(seg))
    pos_old = torch.arange(n, device=z.device) + torch.cumsum(shift, 0)
    pos_new = torch.arange(m, device=z.device) + seg + 1      # after seg's old point and the
    z_out = z.new_empty((n + m, z.shape[1]))                 # m' new points before it in order
    t_out = t.new_empty(n + m)
    row_out = row.new_empty(n + m)
    z_out.index_copy_(0, pos_old, z).index_copy_(0, pos_new, z_new)
    t_out.index_copy_(0, pos_old, t).index_copy_(0, pos_new, t_new)
    row_out.index_copy_(0, pos_old, row).index_copy_(0, pos_new, row[seg])
    return z_out, t_out, row_out


def _first_root_one_hidden_layer(stack, x, u, t_max):
    (layer,), (bias,) = stack.maps, stack.biases
    b = x.shape[0]
    zc = layer(torch.cat([x, u]))
    z, c = zc[:b], zc[b:]
    if bias is not None:
        z = z + bias
    return kink_sweep(z, c, stack.out_w, stack.out_b, stack.slope_pos, stack.slope_neg,
                      t_max).to(x.dtype)


@torch.no_grad()
def kink_sweep(z: torch.Tensor, c: torch.Tensor, out_w: torch.Tensor, out_b: float,
               slope_pos: float, slope_neg: float, t_max: float | torch.Tensor,
               value_and_slope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """First root in (0, t_max] of h(t) = out_w . phi(z + t c) + out_b, row by row.

    The kinks t_l = -z_l / c_l (where z_l and c_l have opposite signs) are visited in increasing
    order within windows [t_lo, t_hi] that grow geometrically from 3x the linearised root, so only
    the kinks before the root are sorted. Between kinks h is affine; its value and slope are
    accumulated in float64. ``value_and_slope``: h(0) and h'(0+) if the caller has them.
    ``out_w``: one output layer (k,) for every row, or one per row (B, k) (the sampled rays of
    :mod:`randadv.theory.two_layer_law`, one network per row).
    """
    b, dev = z.shape[0], z.device
    sp, sn = slope_pos, slope_neg
    dt = torch.float64
    if value_and_slope is None or bool((z == 0).any()):
        active = (z > 0) | ((z == 0) & (c > 0))
        slope_fn = torch.where(active, z.new_tensor(sp), z.new_tensor(sn))
        y = _dot(slope_fn * z, out_w).to(dt) + out_b
        s = _dot(slope_fn * c, out_w).to(dt)
    else:
        y, s = (v.to(dt) for v in value_and_slope)
    sign0 = torch.sign(y)
    root = torch.full((b,), float("nan"), dtype=dt, device=dev)
    heading = y * s < 0
    t_max = torch.as_tensor(t_max, dtype=dt, device=dev).expand(b)
    guess = torch.where(heading, -y / torch.where(s == 0, 1.0, s), t_max)
    if sp == sn:
        ok = heading & (guess <= t_max)
        root[ok] = guess[ok]
        return root
    # rows in chunks of about KINK_SWEEP_CHUNK kinks: the window's sort and sums then stay in
    # cache (at k = 10^6 and 100 rows, one row at a time took the sweep from 62 s to 31 s, the
    # same roots); each row's roots do not depend on the other rows of its chunk
    per = max(1, KINK_SWEEP_CHUNK // max(1, z.shape[1]))
    for lo in range(0, b, per):
        rows = slice(lo, min(b, lo + per))
        w = out_w if out_w.dim() == 1 else out_w[rows]
        root[rows] = _sweep_rows(z[rows], c[rows], w, sp - sn, y[rows], s[rows], sign0[rows],
                                 guess[rows], t_max[rows])
    return root


def _sweep_rows(z: torch.Tensor, c: torch.Tensor, out_w: torch.Tensor, jump: float,
                y: torch.Tensor, s: torch.Tensor, sign0: torch.Tensor, guess: torch.Tensor,
                t_max: torch.Tensor) -> torch.Tensor:
    """:func:`kink_sweep`'s windows for a chunk of rows (``jump``: slope_pos - slope_neg)."""
    b, dev, dt = z.shape[0], z.device, torch.float64
    root = torch.full((b,), float("nan"), dtype=dt, device=dev)
    times = torch.div(z, c).neg_()        # > 0 exactly where the unit changes side ahead
    t_lo = torch.zeros(b, dtype=dt, device=dev)
    # window ends rounded to times' dtype, so that windows partition the kinks exactly
    t_hi = torch.minimum(3.0 * guess, t_max).to(times.dtype).to(dt)
    y_lo, s_lo = y.clone(), s.clone()
    todo = torch.arange(b, device=dev)
    while todo.numel():
        n = todo.numel()
        tl, th = t_lo[todo], t_hi[todo]
        tim = times if n == b else times[todo]
        sel = (tim > tl[:, None].to(tim.dtype)) & (tim <= th[:, None].to(tim.dtype))
        rows, cols = sel.nonzero(as_tuple=True)            # row-major: grouped by row
        counts = torch.bincount(rows, minlength=n)
        m = int(counts.max()) if rows.numel() else 0
        pos = torch.arange(rows.numel(), device=dev) - (torch.cumsum(counts, 0) - counts)[rows]
        kt = torch.full((n, max(m, 1)), float("inf"), dtype=dt, device=dev)
        kj = torch.zeros((n, max(m, 1)), dtype=dt, device=dev)
        kt[rows, pos] = tim[rows, cols].to(dt)
        # slope change at kink l: a_l |c_l| (slope_pos - slope_neg)
        w = out_w[cols] if out_w.dim() == 1 else out_w[todo[rows], cols]
        kj[rows, pos] = (w * c[todo[rows], cols].abs()).to(dt) * jump
        kt, order = torch.sort(kt, dim=1)
        kj = torch.gather(kj, 1, order)
        valid = torch.isfinite(kt)
        prev = torch.cat([tl[:, None], kt[:, :-1]], dim=1)
        seg = torch.where(valid, kt - prev, 0.0)
        cj = torch.cumsum(kj, 1)
        slope = s_lo[todo, None] + cj - kj                   # slope before each kink
        inc = slope * seg
        h_at = y_lo[todo, None] + torch.cumsum(inc, 1)       # h at each kink
        cross = valid & (sign0[todo, None] * h_at <= 0)
        found = cross.any(1)
        j = torch.argmax(cross.to(torch.int8), dim=1)
        r = torch.arange(n, device=dev)
        h_prev = h_at[r, j] - inc[r, j]
        sl = slope[r, j]
        t_found = prev[r, j] - h_prev / torch.where(sl == 0, 1.0, sl)
        root[todo[found]] = t_found[found]
        # no root among the kinks: the affine tail from the last kink to t_hi
        last = torch.clamp(counts - 1, min=0)
        has = counts > 0
        t_last = torch.where(has, kt[r, last], tl)
        y_last = torch.where(has, h_at[r, last], y_lo[todo])
        s_end = s_lo[todo] + cj[:, -1]
        y_hi = y_last + s_end * (th - t_last)
        tail = ~found & (sign0[todo] * y_hi <= 0)
        t_tail = t_last - y_last / torch.where(s_end == 0, 1.0, s_end)
        root[todo[tail]] = t_tail[tail]
        more = ~found & ~tail & (th < t_max[todo])
        nxt = todo[more]
        t_lo[nxt], y_lo[nxt], s_lo[nxt] = th[more], y_hi[more], s_end[more]
        t_hi[nxt] = torch.minimum(2.0 * th[more], t_max[nxt]).to(times.dtype).to(dt)
        todo = nxt
    return root


def _dot(h: torch.Tensor, out_w: torch.Tensor) -> torch.Tensor:
    """Row-wise h . out_w for one output layer (k,) or one per row (B, k)."""
    return h @ out_w if out_w.dim() == 1 else (h * out_w).sum(-1)
