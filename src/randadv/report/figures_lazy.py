"""Figures of "Adversarial Robustness is at Odds with Lazy Training" (NeurIPS 2022):
Figures 2, 3, 5, 6 (||delta||, ||grad f||, eta against d with the theory's rates), Figure 7
(histograms) and Figure 4 (robust accuracy against ||delta|| and V)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from randadv.report.figures import _curves, _label, _save  # noqa: E402
from randadv.stats import loglog_slope

# (column of the summary table, its std column, y label, theory exponent in d)
RATE_PANELS = (
    ("delta_mean", "delta_std", "smallest ||delta|| / ||x||", -0.5),
    ("grad_norm_mean", "grad_norm_std", "||grad f(x)||", 0.5),
    ("eta_mean", "eta_std", "smallest step |eta|", -1.0),
)


def rates_figure(table: pd.DataFrame, path: Path, curve: str, curve_label: str,
                 title: str = "", panels=RATE_PANELS) -> Path:
    """Figure 2/3 layout: one panel per quantity against d (log-log), one curve per value of
    ``curve`` (m or C0), +-1 std bands, the theory's rate d^p dashed (through the log-log
    centre of all the points), fitted exponents in the legend."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    values = sorted(table[curve].unique())
    colors = plt.cm.plasma(np.linspace(0.1, 0.8, max(1, len(values))))
    for ax, (col, std, label, p) in zip(np.atleast_1d(axes), panels, strict=False):
        for color, v in zip(colors, values, strict=False):
            g = table[table[curve] == v].sort_values("d")
            slope = loglog_slope(g.d, g[col])
            ax.plot(g.d, g[col], "o-", color=color,
                    label=f"{curve_label} = {v:g} (slope {slope:.2f})")
            s = g[std].fillna(0).to_numpy()
            lo = np.maximum(g[col].to_numpy() - s, g[col].to_numpy() * 0.05)
            ax.fill_between(g.d, lo, g[col] + s, color=color, alpha=0.12)
        vals = table[col].to_numpy(float)
        ok = np.isfinite(vals) & (vals > 0)
        if ok.any():   # the rate d^p through the centre (in log-log) of all the points
            logd, logy = np.log(table.d.to_numpy(float)[ok]), np.log(vals[ok])
            ds = np.array(sorted(table.d.unique()), float)
            ax.plot(ds, np.exp(logy.mean() + p * (np.log(ds) - logd.mean())), "g--", lw=2,
                    label=f"theory: d^{p:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(table.d.unique()))
        ax.set_xticklabels([str(int(d)) for d in sorted(table.d.unique())])
        ax.xaxis.set_minor_formatter(NullFormatter())
        _label(ax, "input dimension d", label)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def histograms_figure(df: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Figure 7 layout: histograms of ||delta||, ||grad f(x)|| and |eta| over test examples."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    fl = df[df.flipped]
    for ax, values, label in ((axes[0], fl.perturbation_norm, "smallest ||delta||"),
                              (axes[1], df.grad_norm, "||grad f(x)||"),
                              (axes[2], fl.eta.abs(), "smallest |eta|")):
        ax.hist(values, bins=50, color="tab:blue", alpha=0.8)
        med = float(np.median(values)) if len(values) else float("nan")
        ax.axvline(med, color="k", ls="--", label=f"median {med:.4g}")
        ax.set_xlabel(label)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test examples")
    fig.suptitle(title)
    return _save(fig, path)


def robust_accuracy_figure(table: pd.DataFrame, path: Path, x: str, curve: str,
                           x_label: str, curve_label: str, threshold: str,
                           title: str = "") -> Path:
    """Figure 4 layout: robust test accuracy against ``x`` (||delta|| or V), one curve per
    ``curve`` (d or m), vertical dotted lines at the theory's threshold ``c / sqrt(curve)``
    (``threshold`` names it), in the curve's color."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for color, v, g in _curves(table, curve, x):
        ax.plot(g[x], g.robust_acc, "o-", color=color, label=f"{curve_label} = {v:g}")
        if "robust_acc_std" in g:
            s = g.robust_acc_std.fillna(0)
            ax.fill_between(g[x], g.robust_acc - s, g.robust_acc + s, color=color, alpha=0.12)
        ax.axvline(1 / np.sqrt(v), color=color, ls=":", lw=1.5, label="_threshold")
    ax.plot([], [], "k:", label=threshold)
    ax.set_xscale("log")
    xs = sorted(table[x].unique())
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{v:.3g}" for v in xs])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(x_label)
    ax.set_ylabel("robust test accuracy (PGD-l2)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def percentile_figure(df: pd.DataFrame, path: Path, title: str = "") -> Path:
    """De Palma et al. (2021), Figure 3 layout: closest-adversarial distance of the trained nets
    sorted against its percentile, one curve per input kind, with the least-squares line over
    percentiles 0-0.25 (solid)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    colors = {"random": "tab:blue", "train": "tab:orange", "test": "tab:green"}
    tr = df[df.state == "trained"] if "state" in df else df
    for kind, g in tr.groupby("inputs"):
        # no adversarial example found: +inf, i.e. above the plotted range
        d = np.sort(g.distance.where(g.success, np.inf).to_numpy(float))
        q = (np.arange(len(d)) + 0.5) / len(d)
        ok = np.isfinite(d)
        ax.plot(q[ok], d[ok], "o", ms=3, color=colors.get(kind),
                label=f"{kind} images ({ok.mean():.0%} found)")
        q, d = q[ok], d[ok]
        sel = q <= 0.25
        if sel.sum() >= 2:
            b, a = np.polyfit(q[sel], d[sel], 1)
            ax.plot(q, a + b * q, "-", color=colors.get(kind), lw=1, label="_fit")
    ax.set_xlabel("percentile")
    ax.set_ylabel("closest adversarial distance")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="0.35", ls="-", lw=1))
    labels.append("linear fit to the lowest quartile")
    ax.legend(handles, labels, fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def median_bars_figure(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """De Palma et al. (2021), Figure 4 layout: median distance of random vs trained nets per
    input kind, one panel per norm, 5th-95th percentile error bars."""
    norms = sorted(table.norm.unique())
    fig, axes = plt.subplots(1, len(norms), figsize=(4.5 * len(norms), 3.8), squeeze=False)
    for ax, norm in zip(axes[0], norms, strict=False):
        t = table[table.norm == norm]
        kinds = [k for k in ("random", "train", "test") if k in set(t.inputs)]
        for j, (state, color) in enumerate((("random", "tab:gray"), ("trained", "tab:red"))):
            rows = [t[(t.inputs == k) & (t.state == state)] for k in kinds]
            med = [float(r["median"].iloc[0]) if len(r) else np.nan for r in rows]
            med = [m if np.isfinite(m) else np.nan for m in med]     # inf: not drawn
            lo = [m - float(r.p05.iloc[0]) if len(r) and np.isfinite(m) else 0
                  for m, r in zip(med, rows, strict=True)]
            hi = [float(r.p95.iloc[0]) - m if len(r) and np.isfinite(m) else 0
                  for m, r in zip(med, rows, strict=True)]
            hi = [h if np.isfinite(h) else 0 for h in hi]
            xs = np.arange(len(kinds)) + (j - 0.5) * 0.35
            # points, not bars: a bar's length means nothing on a log axis
            ax.errorbar(xs, med, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], fmt="o" if j
                        else "s", ms=7, color=color, capsize=4, label=f"{state} nets")
        ax.set_xticks(np.arange(len(kinds)))
        ax.set_xticklabels([f"{k} images" for k in kinds])
        ax.set_yscale("log")
        ax.set_ylabel(f"median {norm} distance")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)
