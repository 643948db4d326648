"""Figures of the multi-layer experiments (Bartlett, Bubeck, Cherapanamjeri 2021), theory overlaid
(matplotlib, Agg). Each helper takes a summary table of its experiment and writes one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.stats  # noqa: E402

from randadv.report.figures import _colors, _curves, _label, _save, style_legend  # noqa: E402
from randadv.theory.gp_limit import gp_single_step  # noqa: E402

GP_SAMPLES = 100_000   # draws per (depth, d): Monte-Carlo error ~0.3% of a std


def _panels(table: pd.DataFrame, column: str) -> tuple[plt.Figure, list[tuple]]:
    """A row of panels, one per distinct value of ``column`` in sorted order: the figure and
    ``(ax, value, rows)`` per panel."""
    values = sorted(table[column].unique())
    fig, axes = plt.subplots(1, len(values), figsize=(6 * len(values), 4), squeeze=False)
    return fig, [(ax, v, table[table[column] == v]) for ax, v in zip(axes[0], values, strict=True)]


def min_pert_figure(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Appendix D, Figure 1: mean ||W1^+ W1 x|| / ||x|| vs k with sqrt(min(k, d)/d) dashed."""
    t = table.sort_values("k")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(t.k, t["mean"], yerr=t["std"].fillna(0), fmt="o", capsize=3,
                label="measured (mean +- std)")
    kk = np.geomspace(t.k.min(), t.k.max(), 200)
    d = float(t.d.iloc[0])
    ax.plot(kk, np.sqrt(np.minimum(kk, d) / d), "k--", label="sqrt(k/d)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _label(ax, "hidden units k", "||delta*|| / ||x||")
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)


def gp_nn_def_reference(depths, ds, max_eta: float = 20.0, max_rel: float | None = 1.0
                        ) -> pd.DataFrame:
    """Infinite-width (GP) single-step statistics of the NN-DEF ReLU nets (``DeepReLUNet``) at
    ||x|| = sqrt(d), per (depth, d): mean linearised |eta|, ||grad f||, |f| and
    ||eta grad f|| / ||x|| (``theory.gp_limit``; in the limit grad f ~ N(0, 2^-L I / d) and
    f = x . grad f). A draw counts as flipped when its linearised step is within the
    experiment's bound (|eta| <= max_eta or ||eta grad f|| <= max_rel ||x||)."""
    rows = []
    for depth in depths:
        for d in ds:
            st = gp_single_step(int(d), int(depth), "relu", max_eta=max_eta, max_rel=max_rel,
                                n=GP_SAMPLES, seed=0)
            rows.append(dict(depth=depth, d=d, eta=st.eta_mean, grad=st.grad_norm_mean,
                             abs_f=st.f_abs_mean, rel=st.rel_mean))
    return pd.DataFrame(rows)


def single_step_family_figure(table: pd.DataFrame, path: Path, delta: float = 0.1,
                              title: str = "", *, max_eta: float = 20.0,
                              max_rel: float | None = 1.0, gp: bool = True) -> Path:
    """Four panels vs d, one colour per depth: smallest flipping |eta| (theory: linearised
    E|f| / E||grad f||^2), ||grad f|| (sqrt 2^-L), |f(x)| (E|f| = sqrt(2/pi) 2^-L/2) and the
    relative perturbation (exact linear-limit mean and the (1-delta)-quantile rate).

    ``gp``: also the infinite-width Gaussian process (:func:`gp_nn_def_reference`, thick
    dash-dot in each depth's colour): where the finite-width curves head as the widths grow. It
    differs from the dashed theory where a mean of a ratio is not the ratio of the means (|eta|,
    ||grad f|| at small d) and coincides with it for |f| and the relative perturbation."""
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    depths = sorted(table.depth.unique())
    ref = (gp_nn_def_reference(depths, sorted(table.d.unique()), max_eta, max_rel) if gp
           else pd.DataFrame())
    for color, depth in zip(_colors(len(depths)), depths, strict=True):
        g = table[table.depth == depth].sort_values("d")
        if len(ref):
            r = ref[ref.depth == depth].sort_values("d")
            for ax, col in zip(axes, ("eta", "grad", "abs_f", "rel"), strict=True):
                ax.plot(r.d, r[col], ls="-.", lw=2.5, color=color, alpha=0.45, label="_gp")
        for ax, col, th in ((axes[0], "eta_mean", "eta_lin_theory"),
                            (axes[1], "grad_norm_mean", None), (axes[2], "abs_f_mean",
                                                                "abs_f_theory"),
                            (axes[3], "rel_mean", "lin_rel_theory")):
            ax.plot(g.d, g[col], "o-", color=color, label=f"L = {depth}")
            if th is not None:
                ax.plot(g.d, g[th], "--", color=color, alpha=0.8, label="_theory")
        axes[1].plot(g.d, np.sqrt(g.grad_sq_theory), "--", color=color, alpha=0.8,
                     label="_theory")
        axes[3].plot(g.d, g.rel_q, "^:", color=color, alpha=0.6, label="_quantile")
    dd = np.geomspace(table.d.min(), table.d.max(), 100)
    q = scipy.stats.norm.ppf(1 - delta / 2)
    axes[3].plot(dd, q / np.sqrt(dd), "k:", label=f"c3 sqrt(log(1/delta)/d), c3 = "
                 f"{q / math.sqrt(math.log(1 / delta)):.2f} (linear limit)")
    labels = ("smallest |eta| (flipped)", "mean ||grad f(x)||", "mean |f(x)|",
              "||eta grad f|| / ||x||")
    for ax, lab in zip(axes, labels, strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        _label(ax, "input dimension d", lab)
    styles = [({"ls": "--"}, "theory (each depth's colour)")]
    if len(ref):
        styles.append(({"ls": "-.", "lw": 2.5, "alpha": 0.6}, "infinite width (GP)"))
    style_legend(axes[0], styles, fontsize=8)
    axes[1].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    style_legend(axes[3], [({"ls": "-", "marker": "o"}, "mean (o)"),
                           ({"ls": ":", "marker": "^"}, f"{1 - delta:g}-quantile (^)")],
                 fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def lemma22_figure(table: pd.DataFrame, path: Path) -> Path:
    """Lemma 2.2 vs depth at the largest d: sqrt(mean f^2), sqrt(mean ||grad f||^2) per family
    with 2^(-L/2), and the smallest ||grad f|| against the lemma's 2^-(L+1)."""
    t = table[table.d == table.d.max()]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for color, fam, g in _curves(t, "family", "depth"):
        axes[0].plot(g.depth, np.sqrt(g.f_sq_mean), "o-", color=color, label=fam)
        axes[1].plot(g.depth, np.sqrt(g.grad_sq_mean), "o-", color=color, label=fam)
        axes[2].plot(g.depth, g.grad_norm_min, "o-", color=color, label=fam)
    L = np.arange(1, int(t.depth.max()) + 1)
    for ax in axes[:2]:
        ax.plot(L, 2.0 ** (-L / 2), "k--", label="NNGP 2^(-L/2)")
    bound = 2.0 ** (-(L + 1.0))
    axes[2].plot(L, bound, "k:", label="Lemma 2.2: 2^-(L+1)")
    seen = t.grad_norm_min[t.grad_norm_min > 0]
    if len(seen):   # a zero gradient seen cannot sit on a log axis; the bound sets the floor
        axes[2].set_ylim(0.5 * min(float(seen.min()), float(bound.min())),
                         2 * max(float(seen.max()), float(bound.max())))
    for ax, lab in zip(axes, ("sqrt(mean f(x)^2)", "sqrt(mean ||grad f||^2)",
                              "smallest ||grad f(x)|| seen"), strict=True):
        ax.set_yscale("log")
        _label(ax, "depth L", lab)
        ax.legend(fontsize=7)
    fig.suptitle(f"Lemma 2.2 at d = {int(t.d.max())}")
    return _save(fig, path)


def bottleneck_radius_figure(table: pd.DataFrame, exponents: pd.DataFrame, path: Path,
                             title: str = "") -> Path:
    """Linearity radius vs d_min per architecture, one colour per eps, sqrt(d_min) dashed."""
    fig, panels = _panels(table, "architecture")
    for ax, arch, t in panels:
        for color, eps, g in _curves(t, "eps", "d_min"):
            e = exponents[(exponents.architecture == arch) & (exponents.eps == eps)]
            slope = f", exponent {float(e.slope.iloc[0]):.2f}" if len(e) else ""
            ax.plot(g.d_min, g.radius_median, "o-", color=color, label=f"eps = {eps:g}{slope}")
            ax.fill_between(g.d_min, g.radius_q25, g.radius_q75, color=color, alpha=0.15)
            c = math.exp(float(np.mean(np.log(g.radius_median) - 0.5 * np.log(g.d_min))))
            ax.plot(g.d_min, c * np.sqrt(g.d_min), "--", color=color, alpha=0.7,
                    label="_slope")
        ax.set_xscale("log")
        ax.set_yscale("log")
        widths = sorted(t.d_min.unique())
        ax.set_xticks(widths, [str(int(w)) for w in widths])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        _label(ax, "bottleneck width d_min", "linearity radius R_eps")
        style_legend(ax, [({"ls": "--"}, "slope 1/2 (c sqrt(d_min), each eps' colour)")],
                     fontsize=8)
        ax.set_title(f"{arch}: {title}")
    return _save(fig, path)


def depth_spread_figure(table: pd.DataFrame, path: Path) -> Path:
    """Spread of f on the sphere and its normalised dispersion vs depth, per d."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for color, d, g in _curves(table, "d", "depth"):
        axes[0].plot(g.depth, g.spread_median, "o-", color=color, label=f"d = {d}")
        axes[0].fill_between(g.depth, g.spread_q25, g.spread_q75, color=color, alpha=0.15)
        axes[0].axhline(math.sqrt(math.log(d) / d), color=color, ls=":", alpha=0.8,
                        label="_theorem")
        axes[1].plot(g.depth, g.dispersion, "o-", color=color, label=f"d = {d}")
        axes[1].plot(g.depth, g.dispersion_theory, "--", color=color, alpha=0.8,
                     label="_theory")
    L = np.geomspace(max(2, table.depth.min()), table.depth.max(), 50)
    axes[1].plot(L, 9 * math.pi ** 2 / (2 * L ** 2), "k:", alpha=0.5,
                 label="9 pi^2 / (2 L^2) (large-L limit)")
    for ax, lab in zip(axes, ("max |f(x)-f(y)| / |f(x)|", "var_x f / mean_x f^2"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        _label(ax, "depth L", lab)
    style_legend(axes[0], [({"ls": ":"}, "Theorem 3.1 scale sqrt(log d / d)")], fontsize=8)
    style_legend(axes[1], [({"ls": "--"}, "NNGP theory (each d's colour)")], fontsize=8)
    return _save(fig, path)


def depth_correlation_figure(table: pd.DataFrame, path: Path) -> Path:
    """Cosine of last-layer images vs depth, one colour per rho0, c^L(rho0) dashed."""
    fig, panels = _panels(table, "d")
    for ax, d, t in panels:
        for color, rho, g in _curves(t, "rho0", "depth"):
            ax.errorbar(g.depth, 1 - g.corr_mean, yerr=2 * g.corr_se.fillna(0), fmt="o",
                        color=color, capsize=2, label=f"rho0 = {rho:g}")
            ax.plot(g.depth, 1 - g.corr_theory, "--", color=color, label="_theory")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _label(ax, "depth L", "1 - cos(h_L(x), h_L(y))")
        style_legend(ax, [({"ls": "--"}, "Lemma 3.2: 1 - c^L(rho0)")], fontsize=8)
        ax.set_title(f"d = {d}")
    return _save(fig, path)


def depth_sensitivity_figure(table: pd.DataFrame, path: Path, max_eta: float = 20.0) -> Path:
    """Flip fraction (|eta| < max_eta) and median sqrt(d) ||delta|| / ||x|| vs depth."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for color, d, g in _curves(table, "d", "depth"):
        axes[0].errorbar(g.depth, g.flip_frac, yerr=2 * g.flip_frac_se.fillna(0), fmt="o-",
                         color=color, capsize=2, label=f"d = {d}")
        med = g.sens_median.replace(np.inf, np.nan)
        axes[1].plot(g.depth, med, "o-", color=color, label=f"d = {d}")
        axes[1].fill_between(g.depth, g.sens_q25, g.sens_q75.replace(np.inf, np.nan),
                             color=color, alpha=0.15)
        axes[1].axhline(math.sqrt(d), color=color, ls=":", alpha=0.6, label="_sqrtd")
    axes[1].axhline(0.6745, color="k", ls="--", label="linear limit 0.674")
    axes[0].set_ylabel(f"fraction flipped, |eta| < {max_eta:g}")
    axes[1].set_ylabel("median sqrt(d) ||eta grad f|| / ||x||")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("depth L")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    style_legend(axes[1], [({"ls": ":"}, "sqrt(d): ||delta|| = ||x|| (each d's colour)")],
                 fontsize=8)
    return _save(fig, path)
