"""Figures of ``attack-optimality`` (attack vs exact distances) and ``segment-crossing`` (first
boundary crossing along random directions), De Palma, Kiani, Lloyd (ICML 2021), with the theory
overlaid (matplotlib, Agg). Each helper takes the experiment's records or summary table and writes
one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from randadv.report.figures import _colors, _label, _save  # noqa: E402

NORM_ORDER = ("l1", "l2", "linf")


def _norms(df: pd.DataFrame) -> list[str]:
    present = set(df.norm)
    return [n for n in NORM_ORDER if n in present] or sorted(present)


# ---------------------------------------------------------------------- attack-optimality
def ratio_cdf_figure(df: pd.DataFrame, path: Path, title: str = "") -> Path:
    """One panel per norm: empirical CDF of ``attack / exact - 1`` on optimal solves, one curve
    per ``n_starts`` (symlog x-axis, linear below 1e-6)."""
    norms = _norms(df)
    fig, axes = plt.subplots(1, len(norms), figsize=(4.6 * len(norms), 3.8), squeeze=False)
    starts = sorted(df.n_starts.unique())
    for ax, norm in zip(axes[0], norms, strict=True):
        g = df[(df.norm == norm) & (df.exact_status == "optimal") & df.attack_success]
        right = 0.1
        for color, s in zip(_colors(len(starts)), starts, strict=True):
            gap = np.sort(np.maximum(g[g.n_starts == s].ratio.to_numpy(float) - 1, 0))
            if not len(gap):
                continue
            right = max(right, 2 * float(gap[-1]))
            xs = np.concatenate([[0.0], gap, [1e9]])
            ys = np.concatenate([[0.0], np.arange(1, len(gap) + 1) / len(gap), [1.0]])
            ax.step(xs, ys, where="post", color=color, lw=1.8,
                    label=f"n_starts = {s} ({len(gap)} solves)")
        ax.set_xscale("symlog", linthresh=1e-6)
        ax.set_xlim(-3e-7, right)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("attack / exact - 1")
        ax.set_ylabel("fraction of inputs")
        ax.set_title(norm)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title or "closest_adversarial vs exact distance (optimality gap)")
    return _save(fig, path)


def attack_vs_exact_figure(df: pd.DataFrame, path: Path, title: str = "") -> Path:
    """One panel per norm: attack distance against exact distance (log-log), one colour per
    architecture, filled for optimal solves, open for time-limited ones (x: the dual lower
    bound); y = x dashed. The largest ``n_starts`` is drawn."""
    norms = _norms(df)
    fig, axes = plt.subplots(1, len(norms), figsize=(4.6 * len(norms), 4.2), squeeze=False)
    s_max = int(df.n_starts.max())
    archs = sorted(df.arch.unique())
    for ax, norm in zip(axes[0], norms, strict=True):
        g = df[(df.norm == norm) & (df.n_starts == s_max) & df.attack_success]
        lo, hi = math.inf, 0.0
        for color, arch in zip(_colors(len(archs)), archs, strict=True):
            h = g[g.arch == arch]
            opt = h[h.exact_status == "optimal"]
            tl = h[h.exact_status == "time_limit"]
            ax.scatter(opt.exact_distance, opt.attack_distance, s=14, color=color, label=arch)
            if len(tl):
                ax.scatter(tl.exact_lower.clip(lower=1e-12), tl.attack_distance, s=18,
                           facecolors="none", edgecolors=color)
            vals = pd.concat([opt.exact_distance, opt.attack_distance, tl.attack_distance])
            vals = vals[np.isfinite(vals) & (vals > 0)]
            if len(vals):
                lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
        if hi > 0:
            t = np.array([lo / 1.5, hi * 1.5])
            ax.plot(t, t, "k--", lw=1, label="y = x")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        _label(ax, "exact distance", f"attack distance (n_starts = {s_max})", norm)
        ax.legend(fontsize=7)
    fig.suptitle(title or "attack vs exact minimal distance")
    return _save(fig, path)


def corollary1_delta_figure(df: pd.DataFrame, path: Path, title: str = "") -> Path:
    """One panel per norm: empirical CDF of ``delta_emp = d_exact / r(delta = 1)`` (Corollary 1,
    eq. (16), with Remark 5 for l2/linf) per input law, with the bound ``F(delta) <= delta``."""
    norms = _norms(df)
    u = df.drop_duplicates(["arch", "net", "inputs", "point", "norm"])
    fig, axes = plt.subplots(1, len(norms), figsize=(4.6 * len(norms), 3.8), squeeze=False)
    kinds = sorted(u.inputs.unique())
    for ax, norm in zip(axes[0], norms, strict=True):
        g = u[u.norm == norm]
        x_all = []
        for color, kind in zip(_colors(len(kinds)), kinds, strict=True):
            de = np.sort((g[g.inputs == kind].exact_distance
                          / g[g.inputs == kind].radius_unit).to_numpy(float))
            de = de[np.isfinite(de) & (de > 0)]
            if not len(de):
                continue
            x_all.append(de)
            y = np.arange(1, len(de) + 1) / len(de)
            ax.step(de, y, where="post", color=color, label=f"{kind} ({len(de)})")
        lo = min((float(a.min()) for a in x_all), default=1e-2)
        dl = np.geomspace(min(lo, 1e-2) / 2, 1.0, 100)
        ax.plot(dl, dl, "k--", lw=1, label="bound F(delta) = delta")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        _label(ax, "d_exact / r(delta = 1)", "fraction of inputs", norm)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title or "exact distances vs the Corollary 1 radius")
    return _save(fig, path)


# ---------------------------------------------------------------------- segment-crossing
def segment_crossing_figure(table: pd.DataFrame, path: Path, q: float, delta: float,
                            title: str = "") -> Path:
    """Left: the q-quantile of the first crossing t* (all directions, none within the cap =
    +inf) and the median over crossing directions, against n, one colour per family, band: the
    bootstrap 5-95% interval of the quantile over nets; dashed: Corollary 1's r(delta = q) for the
    median ||x|| (eq. (18): a lower bound of the q-quantile). Right: the same relative to ||x||_2
    (middle) and the fraction of directions crossing within the cap (right); one legend below:
    families by colour, quantities by line style."""
    fams = list(dict.fromkeys(table.family))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    fam_handles = []
    for color, fam in zip(_colors(len(fams)), fams, strict=True):
        g = table[table.family == fam].sort_values("n")
        fam_handles.append(plt.Line2D([], [], color=color, lw=6, alpha=0.8))
        for ax, col, lo, hi, rad in ((axes[0], "t_q", "t_q_lo", "t_q_hi", g.radius_q),
                                     (axes[1], "rel_q", "rel_q_lo", "rel_q_hi",
                                      float(g.radius_unit_rel.iloc[0]) * q + 0 * g.n)):
            ax.plot(g.n, g[col], "o-", color=color, label="_quantile")
            ax.fill_between(g.n, g[lo], g[hi], color=color, alpha=0.15)
            ax.plot(g.n, rad, "--", color=color, alpha=0.9, label="_corollary1")
        axes[0].plot(g.n, g.t_cond_median, "s:", color=color, alpha=0.8, label="_median")
        axes[1].plot(g.n, g.rel_cond_median, "s:", color=color, alpha=0.8, label="_median")
        axes[2].plot(g.n, g.crossed_frac, "^-", color=color, label="_frac")
    ref = table.sort_values("n")
    if len(ref):
        n0, t0 = float(ref.n.iloc[0]), float(ref.t_q.iloc[0])
        if math.isfinite(t0) and t0 > 0:
            nn = np.geomspace(ref.n.min(), ref.n.max(), 50)
            axes[0].plot(nn, t0 * np.sqrt(nn / n0), "k-.", lw=1, label="_slope")
    for ax, lab in zip(axes, ("first crossing t*", "t* / ||x||_2",
                              "fraction of directions crossing within the cap"), strict=True):
        ax.set_xscale("log")
        _label(ax, "input dimension n", lab)
    axes[0].set_yscale("log")
    axes[1].set_ylim(bottom=0)
    axes[2].set_ylim(0, 1.05)
    styles = [(dict(ls="-", marker="o"), f"{q:g}-quantile of t* (band: bootstrap 5-95%)"),
              (dict(ls=":", marker="s"), "median t* over crossing directions"),
              (dict(ls="--"), f"Corollary 1: r(delta = {q:g})"),
              (dict(ls="-.", color="k"), "slope 1/2"),
              (dict(ls="-", marker="^"), "fraction crossing (right panel)")]
    handles = fam_handles + [plt.Line2D([], [], **{"color": "0.35", **st}) for st, _ in styles]
    fig.legend(handles, fams + [lab for _, lab in styles], loc="outside lower center", ncol=4,
               fontsize=8)
    fig.suptitle(title or f"first boundary crossing along random directions (delta = {delta:g})")
    return _save(fig, path)


def segment_cdf_figure(df: pd.DataFrame, path: Path, title: str = "") -> Path:
    """One panel per family: the empirical CDF of t*/||x||_2 (log-log; directions without a
    crossing within the cap keep the curve below 1), one colour per n, with the bound of
    Corollary 1, P(t* <= s ||x||) <= s (2M + pi) / pi (eqs. (18)-(19)), dashed, and, for bias-free
    fully connected nets, the NNGP probability of a sign change at the cap (dotted)."""
    fams = list(dict.fromkeys(df.family))
    fig, axes = plt.subplots(1, len(fams), figsize=(4.8 * len(fams), 3.9), squeeze=False)
    for ax, fam in zip(axes[0], fams, strict=True):
        g = df[df.family == fam]
        ns = sorted(g.n.unique())
        cap = float(g.t_cap_rel.max())
        fin = g.t_rel[g.crossed].to_numpy(float)
        left = max(1e-3, float(fin.min()) / 2) if len(fin) else 1e-2
        for color, n in zip(_colors(len(ns)), ns, strict=True):
            h = g[g.n == n]
            rel = np.sort(h.t_rel[h.crossed].to_numpy(float))
            y = np.arange(1, len(rel) + 1) / len(h)
            ax.step(np.concatenate([[left], rel, [cap]]),
                    np.concatenate([[0.0], y, [y[-1] if len(y) else 0.0]]),
                    where="post", color=color, label=f"n = {n}")
        unit = float(g.radius_unit_rel.iloc[0])
        s = np.geomspace(left, min(cap, 1.0 / unit), 60)
        ax.plot(s, s / unit, "k--", lw=1, label="Corollary 1 bound")
        nngp = g.nngp_end_flip.to_numpy(float)
        if np.isfinite(nngp).any():
            ax.axhline(float(np.nanmean(nngp)), color="k", ls=":", lw=1,
                       label="NNGP P(sign change at the cap)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(left, cap)
        ax.set_ylim(0.5 / max(1, g.groupby("n").size().min()), 1.0)
        _label(ax, "t* / ||x||_2", "fraction of directions", fam)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title or "CDF of the first crossing along random directions")
    return _save(fig, path)
