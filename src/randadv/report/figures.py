"""Figures in the style of the papers, with the theory's prediction overlaid (matplotlib, Agg)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from randadv.theory.gp_limit import GPSingleStep, gp_single_step, gp_value_grad_law  # noqa: E402

GP_COLOR = "C3"
GP_SAMPLES = 100_000   # draws per (activation, depth, d): Monte-Carlo error ~0.3% of a std


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")   # labels of neighbouring panels do not overlap
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _colors(n: int):
    """``n`` colours of the viridis map (its yellow end left out), one per curve of a panel."""
    return plt.cm.viridis(np.linspace(0, 0.9, max(1, n)))


def _curves(table: pd.DataFrame, column: str, x: str) -> list[tuple[object, object, pd.DataFrame]]:
    """One curve per distinct value of ``column``, in sorted order: ``(colour, value, rows)``
    with the value's rows sorted by ``x``, the colours from :func:`_colors`."""
    values = sorted(table[column].unique())
    return [(color, v, table[table[column] == v].sort_values(x))
            for color, v in zip(_colors(len(values)), values, strict=True)]


def _label(ax, xlabel: str, ylabel: str, title: str | None = None) -> None:
    """Label a panel's axes (and title it, when ``title`` is given) and draw the light grid, on
    the major and minor ticks, that every figure's panels share."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")


def style_legend(ax, entries, **kwargs) -> None:
    """``ax.legend`` with the labelled artists plus one grey entry per line style that is drawn
    in every colour (``entries``: ``(style kwargs, label)``, e.g. ``({"ls": "--"}, "theory")``)."""
    handles, labels = ax.get_legend_handles_labels()
    for style, label in entries:
        handles.append(plt.Line2D([], [], color="0.35", **style))
        labels.append(label)
    ax.legend(handles, labels, **kwargs)


def gp_two_layer_reference(activation: str, depth: int, d: int, max_eta: float = 20.0,
                           hidden_gain: float = 1.0, f_sq_theory: float | None = None
                           ) -> GPSingleStep | None:
    """Infinite-width (GP) single-step statistics of ``DeepRandomNet(d, k, depth, activation,
    hidden_gain=...)`` at ||x|| = sqrt(d) (``theory.gp_limit``; linearised step, flipped when
    |eta| <= max_eta), or None when ``f_sq_theory`` (the table's E f^2, which depends on the
    hidden gain) disagrees with the GP's Var f: the figure was not told the run's hidden_gain."""
    if f_sq_theory is not None and depth > 1:
        law = gp_value_grad_law(int(d), int(depth), activation, hidden_gain=hidden_gain)
        if not math.isclose(law.f_var, float(f_sq_theory), rel_tol=1e-4):
            warnings.warn(f"GP overlay skipped for {activation}, L = {depth}: the table's "
                          f"E f^2 = {f_sq_theory:.6g} is not the GP's {law.f_var:.6g} at "
                          f"hidden_gain = {hidden_gain:g} (pass the run's hidden_gain)",
                          RuntimeWarning, stacklevel=3)
            return None
    return gp_single_step(int(d), int(depth), activation, hidden_gain=hidden_gain,
                          max_eta=max_eta, n=GP_SAMPLES, seed=0)


def _gp_rows(table: pd.DataFrame, max_eta: float, hidden_gain: float | None) -> pd.DataFrame:
    """GP reference per (activation, depth, d) of a two-layer-single-step summary table."""
    rows = []
    for (act, depth, d), g in table.groupby(["activation", "depth", "d"], sort=True):
        f_sq = g.f_sq_theory.iloc[0] if hidden_gain is None and "f_sq_theory" in g else None
        st = gp_two_layer_reference(act, depth, d, max_eta, hidden_gain or 1.0, f_sq)
        if st is not None:
            rows.append(dict(activation=act, depth=depth, d=d, flipped=st.flipped,
                             eta=st.eta_mean, eta_std=st.eta_std, grad=st.grad_norm_mean,
                             grad_std=st.grad_norm_std))
    return pd.DataFrame(rows)


def eta_and_grad_figure(table: pd.DataFrame, path: Path, title: str = "", *,
                        max_eta: float = 20.0, hidden_gain: float | None = None,
                        gp: bool = True) -> Path:
    """Bubeck et al. (2021), Figure 1 layout: mean smallest |eta| over flipped samples (left) and
    mean ||grad f(x)|| (right) against d, one curve per width k, +-1 std bands, theory dashed.

    ``gp``: overlay the infinite-width Gaussian process (``theory.gp_limit``, computed here, for
    the table's activation and depth): mean linearised |eta| over draws with |eta| <= max_eta,
    mean ||grad f||, +-1 std band, where the finite-width curves are heading as k grows.
    ``hidden_gain`` of the run (None: 1, checked against the table's ``f_sq_theory``)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for color, k, g in _curves(table, "k", "d"):
        for ax, m, s in ((axes[0], "eta_mean", "eta_std"),
                         (axes[1], "grad_norm_mean", "grad_norm_std")):
            ax.plot(g.d, g[m], "o-", color=color, label=f"k = {k:g}")
            ax.fill_between(g.d, g[m] - g[s].fillna(0), g[m] + g[s].fillna(0), color=color,
                            alpha=0.15)
    th = table.groupby("d")[["eta_theory", "grad_norm_theory"]].mean().sort_index()
    axes[0].plot(th.index, th.eta_theory, "k--", label="theory E|f| / E||grad f||^2")
    axes[1].plot(th.index, th.grad_norm_theory, "k--", label="theory sqrt(E||grad f||^2)")
    ref = _gp_rows(table, max_eta, hidden_gain) if gp else pd.DataFrame()
    if len(ref):
        ref = ref.groupby("d")[["eta", "eta_std", "grad", "grad_std"]].mean().sort_index()
        for ax, m, s, lab in ((axes[0], "eta", "eta_std", "E|f| / ||grad f||^2"),
                              (axes[1], "grad", "grad_std", "E||grad f||")):
            ax.plot(ref.index, ref[m], ls=(0, (5, 2)), lw=2, color=GP_COLOR, alpha=0.85,
                    label=f"infinite width (GP): {lab}")
            ax.fill_between(ref.index, ref[m] - ref[s], ref[m] + ref[s], color=GP_COLOR,
                            alpha=0.07, lw=0)
    axes[0].set_ylabel("smallest |eta| (flipped samples)")
    axes[1].set_ylabel("||grad f(x)||")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("input dimension d")
        ax.grid(alpha=0.3)
    axes[1].set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def flip_fraction_figure(table: pd.DataFrame, path: Path, max_eta: float = 20.0,
                         title: str = "", *, hidden_gain: float | None = None,
                         gp: bool = True) -> Path:
    """Bubeck et al. (2021), Figure 2 layout: fraction of inputs flipped with |eta| <= max_eta on
    the (d, k) grid, one panel per depth; with ``gp``, each panel's title gives the infinite-width
    (GP) fraction P(|f| / ||grad f||^2 <= max_eta) at the smallest and largest d."""
    ref = _gp_rows(table, max_eta, hidden_gain) if gp else pd.DataFrame()
    depths = sorted(table.depth.unique())
    ncol = min(3, len(depths))
    nrow = math.ceil(len(depths) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.8 * nrow), squeeze=False,
                             constrained_layout=True)
    for ax, depth in zip(axes.flat, depths, strict=False):
        g = table[table.depth == depth]
        grid = g.pivot(index="d", columns="k", values="flipped").sort_index(ascending=False)
        im = ax.imshow(grid.values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [f"{k:g}" for k in grid.columns], rotation=45)
        ax.set_yticks(range(grid.shape[0]), [f"{d:g}" for d in grid.index])
        for (i, j), v in np.ndenumerate(grid.values):
            if not np.isnan(v):
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7)
        ax.set_xlabel("width k")
        ax.set_ylabel("input dimension d")
        r = ref[ref.depth == depth].sort_values("d") if len(ref) else ref
        gp_text = ""
        if len(r):
            lo, hi = 100 * r.flipped.iloc[0], 100 * r.flipped.iloc[-1]
            gp_text = f"\nGP: {lo:.1f}%" + (f" (d={r.d.iloc[0]:g}) .. {hi:.1f}% "
                                               f"(d={r.d.iloc[-1]:g})" if len(r) > 1 else "")
        ax.set_title(f"L = {depth}{gp_text}", fontsize=9 if gp_text else None)
    for ax in list(axes.flat)[len(depths):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"fraction flipped, |eta| <= {max_eta:g}")
    fig.suptitle(title)
    return _save(fig, path)
