"""``width-window``: the window k ~ d that Bubeck, Cherapanamjeri, Gidel, Tachet des Combes
(NeurIPS 2021) leave open, and the infinite-width Gaussian-process limit of their two-layer nets.

Theorem 2 (ReLU) needs ``k >= C d log^2 d``; Daniely and Schacham (2020) cover ``k = o(d)``;
the paper (Section 1.1): "there remains a small window of widths around k ~ d where the conjecture
of Daniely and Schacham remains open". Per grid cell (activation, d, k = round(r d)) with r on a
log grid from ``ratio_min`` to ``ratio_max``: N two-layer nets (``TwoLayerRandomNet``, eq. (1))
x M inputs uniform on sqrt(d) S^{d-1}; for each input the exact smallest step eta along
grad f(x) that flips sign f (``smallest_flip_step``, |eta| <= max_eta): the exact root of
f along the ray (``eta_boundary``) and the verified step just past it (``eta``: a forward pass at
x + eta grad f(x) has the other sign, by more than the rounding bound), f(x), ||grad f(x)|| and
||eta grad f(x)||. The statistics of the boundary distance (|eta|, ||delta||/||x||, the excess
over the linearised step) use the root; the fraction flipped uses the verification. The
reference is the k = infinity limit, drawn from the Gaussian process the nets converge to
(``theory.gp_limit``): its linearised step, gradient norm, |f| and relative perturbation at the
same d.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from randadv.attacks import smallest_flip_step
from randadv.experiments._papers import BUBECK_2021
from randadv.framework import Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets import ACTIVATIONS, TwoLayerRandomNet, get_activation, sphere_points
from randadv.nets.seeding import derive_seed
from randadv.stats import mean_se
from randadv.theory.gp_limit import gp_single_step

MAX_WEIGHT_ENTRIES = 10**11      # one net: d * k weights (streamed block by block beyond 2 GiB)
WINDOW = (1 / 3, 3.0)            # k/d counted as "k ~ d" by the claims
LAW_MIN_K = 30                   # cells fitted by the nonlinearity law (fewer units: see notes)


def ratio_grid(ratio_min: float, ratio_max: float, n_ratios: int) -> np.ndarray:
    """``n_ratios`` values of k/d, geometrically spaced from ratio_min to ratio_max."""
    if n_ratios == 1:
        return np.array([ratio_min])
    return np.geomspace(ratio_min, ratio_max, n_ratios)


def widths_for(d: int, ratios: np.ndarray) -> list[int]:
    """The distinct widths ``k = max(1, round(r d))`` of a dimension d, increasing."""
    return sorted({max(1, int(round(r * d))) for r in ratios})


class WidthWindow(Experiment):
    name = "width-window"
    paper = BUBECK_2021
    figures_reproduced = ("the window k ~ d left open after Theorem 2 (Section 1.1), with the "
                          "k = infinity Gaussian-process limit (no figure in the paper)")
    summary = ("smallest flipping step, ||grad f||, fraction flipped and ||delta||/||x|| of "
               "two-layer nets for k/d on a log grid 0.1..10, against the infinite-width GP")
    parameters = dict(
        d=Param([100, 300, 1000], "input dimensions d", min=2),
        ratio_min=Param(0.1, "smallest k/d", gt=0),
        ratio_max=Param(10.0, "largest k/d"),
        n_ratios=Param(17, "values of k/d on the log grid", min=1),
        activation=Param(["relu", "tanh"], "activation psi", choices=tuple(ACTIVATIONS)),
        nets=Param(12, min=2, why="standard errors"),
        inputs=Param(32, "inputs per network", min=1),
        max_eta=Param(20.0, gt=0),
        gp_samples=Param(200_000,
                         "samples of the infinite-width Gaussian law of (f, grad f) per cell",
                         min=100),
    )
    profiles = {
        "smoke": dict(d=[16, 32, 64], ratio_min=0.25, ratio_max=4.0, n_ratios=3,
                      activation=["relu"], nets=3, inputs=4, gp_samples=20_000),
        "quick": dict(),
        "paper": dict(d=[100, 300, 1000, 3000, 10000], n_ratios=33, nets=20, inputs=50,
                      gp_samples=400_000),
    }
    record = TypedDict("Record", {"activation": str, "d": int, "k": int, "ratio": float, "net": int,
                                  "input": int, "f_x": float, "grad_norm": float, "eta": float,
                                  "eta_boundary": float, "flipped": bool,
                                  "perturbation_norm": float, "x_norm": float})

    # ------------------------------------------------------------------ grid
    def validate(self, p: dict[str, Any]) -> None:
        require(p["ratio_min"] <= p["ratio_max"],
                f"need ratio_min <= ratio_max, got {p['ratio_min']}, {p['ratio_max']}")
        for cell in self.cells(p):
            n = cell["d"] * cell["k"]
            require(n <= MAX_WEIGHT_ENTRIES, f"cell {cell} needs {n:.3g} weights, over the "
                    f"{MAX_WEIGHT_ENTRIES:.0e} limit")

    def cells(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        ratios = ratio_grid(p["ratio_min"], p["ratio_max"], p["n_ratios"])
        return [dict(activation=a, d=d, k=k)
                for a, d in itertools.product(p["activation"], p["d"])
                for k in widths_for(d, ratios)]

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(cell, net=n) for cell in self.cells(p) for n in range(p["nets"])]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Weight generation (~15 ns per weight) plus three products and the root search per
        input (~0.5 ns per weight and input for ReLU's kink sweep, ~1.6 for a smooth psi)."""
        per_input = 0.5 if get_activation(unit["activation"]).piecewise_linear else 1.6
        return unit["d"] * unit["k"] * (15.0 + per_input * p["inputs"]) + 2e5

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        act, d, k, n = unit["activation"], unit["d"], unit["k"], unit["net"]
        net = TwoLayerRandomNet(d, k, act, seed=derive_seed(ctx.seed, "net", act, d, k, n),
                                device=ctx.device)
        x = sphere_points(p["inputs"], d, math.sqrt(d), ctx.seed, "inputs", d, n).to(ctx.device)
        with warnings.catch_warnings():
            # all-dead ReLU units give f = 0, grad = 0: recorded as not flipped (eta NaN)
            warnings.simplefilter("ignore", RuntimeWarning)
            r = smallest_flip_step(net, x, max_eta=p["max_eta"]).to("cpu")
        x_norm = x.norm(dim=1).cpu()
        return [dict(activation=act, d=d, k=k, ratio=k / d, net=n, input=i,
                     f_x=float(r.f_x[i]), grad_norm=float(r.grad_norm[i]), eta=float(r.eta[i]),
                     eta_boundary=float(r.eta_boundary[i]), flipped=bool(r.flipped[i]),
                     perturbation_norm=float(r.perturbation_norm[i]),
                     x_norm=float(x_norm[i]))
                for i in range(len(r))]

    # ------------------------------------------------------------------ results
    @staticmethod
    def gp(activation: str, d: int, p: Mapping[str, Any]):
        """Infinite-width (GP) single-step statistics at ||x|| = sqrt(d)."""
        return gp_single_step(d, 1, activation, max_eta=p["max_eta"], n=p["gp_samples"], seed=0)

    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        """One row per cell (activation, d, k). |eta| (``eta_mean``), ||delta||/||x||
        (``rel_mean``) and the excess over the linearised step (``nonlin_*``) are those of the
        boundary, the exact root ``eta_boundary`` of f along the ray, over the inputs whose
        verified step flipped; ``nonlin_verified_mean`` is the excess of the verified step
        ``eta``, which the push past the rounding bound inflates where |f(x)| is tiny."""
        if "eta_boundary" not in df.columns:
            warnings.warn("this store has no eta_boundary (recorded before it was added): the "
                          "boundary statistics use the verified step eta", RuntimeWarning,
                          stacklevel=2)
            df = df.assign(eta_boundary=df.eta)
        rows = []
        for (act, d, k), g in df.groupby(["activation", "d", "k"], sort=True):
            g = g.assign(
                abs_eta=g.eta_boundary.abs().where(g.flipped),
                eta_lin=(g.f_x.abs() / g.grad_norm ** 2).replace(np.inf, np.nan),
                rel=(g.eta_boundary.abs() * g.grad_norm / g.x_norm).where(g.flipped),
                abs_f=g.f_x.abs(), flip=g.flipped.astype(float))
            g = g.assign(nonlin=g.abs_eta / g.eta_lin - 1,
                         nonlin_verified=g.eta.abs().where(g.flipped) / g.eta_lin - 1)
            per_net = g.groupby("net")[["flip", "abs_eta", "grad_norm", "abs_f", "rel",
                                        "nonlin"]].mean()
            se = mean_se(per_net)
            gp = self.gp(act, int(d), p)
            rows.append(dict(
                activation=act, d=d, k=k, ratio=k / d, nets=len(per_net), n=len(g),
                flipped=g.flip.mean(), flipped_se=se.flip, gp_flipped=gp.flipped,
                eta_mean=g.abs_eta.mean(), eta_se=se.abs_eta, gp_eta=gp.eta_mean,
                eta_lin_mean=g.eta_lin.mean(), nonlin_mean=g.nonlin.mean(),
                nonlin_se=se.nonlin, nonlin_median=g.nonlin.median(),
                nonlin_verified_mean=g.nonlin_verified.mean(),
                grad_norm_mean=g.grad_norm.mean(), grad_norm_se=se.grad_norm,
                gp_grad_norm=gp.grad_norm_mean,
                abs_f_mean=g.abs_f.mean(), abs_f_se=se.abs_f, gp_abs_f=gp.f_abs_mean,
                rel_mean=g.rel.mean(), rel_se=se.rel, gp_rel=gp.rel_mean,
                rel_sqrt_d=g.rel.mean() * math.sqrt(d)))
        return pd.DataFrame(rows)

    @staticmethod
    def exponents(t: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        """Log-log slope of the cell mean of ||delta||/||x|| against d at each nominal k/d of the
        grid (cells k = round(r d)), with its SE from the per-cell SEs (delta method)."""
        rows = []
        for act, g in t.groupby("activation"):
            cell = {(int(r.d), int(r.k)): r for r in g.itertuples()}
            for r in ratio_grid(p["ratio_min"], p["ratio_max"], p["n_ratios"]):
                pts = [cell[(d, max(1, int(round(r * d))))] for d in sorted(g.d.unique())
                       if (d, max(1, int(round(r * d)))) in cell]
                pts = [c for c in pts if c.rel_mean > 0 and np.isfinite(c.rel_se)]
                if len(pts) < 3:
                    continue
                x = np.log([c.d for c in pts])
                y = np.log([c.rel_mean for c in pts])
                w = np.array([c.rel_se / c.rel_mean for c in pts])
                xc = x - x.mean()
                slope = float(np.sum(xc * y) / np.sum(xc ** 2))
                se = float(np.sqrt(np.sum(xc ** 2 * w ** 2)) / np.sum(xc ** 2))
                rows.append(dict(activation=act, ratio=float(r), n_d=len(pts), slope=slope,
                                 slope_se=se))
        return pd.DataFrame(rows)

    @staticmethod
    def nonlinearity_law(t: pd.DataFrame) -> tuple[float, pd.DataFrame]:
        """Fit of the mean relative excess of the exact over the linearised step,
        ``eta ||grad f||^2 / |f| - 1 ~ C sqrt(1/k + 1/d)``, over the cells with k >= LAW_MIN_K and
        a positive mean (C: geometric mean of the ratios); returns C and those cells with their
        ``law`` value and ``law_ratio`` = measured / law."""
        c = t[(t.k >= LAW_MIN_K) & (t.nonlin_mean > 0)].copy()
        if not len(c):
            return math.nan, c
        x = np.sqrt(1.0 / c.k + 1.0 / c.d)
        const = float(np.exp(np.mean(np.log(c.nonlin_mean / x))))
        c["law"] = const * x
        c["law_ratio"] = c.nonlin_mean / c.law
        return const, c

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_width_window import window_figure, window_scaling_figure

        t = self.summary_table(df, p)
        ex = self.exponents(t, p)
        out = []
        for act, g in t.groupby("activation", sort=True):
            path = window_figure(g, folder / f"window_{act}.png", max_eta=p["max_eta"],
                                 title=f"{act}: two-layer nets across k/d")
            out.append((f"{act}: fraction flipped with |eta| <= {p['max_eta']:g}, mean smallest "
                        f"|eta|, mean ||grad f|| and sqrt(d) mean ||eta grad f|| / ||x|| vs k/d, "
                        f"one colour per d (bands: +-2 SE over nets); dashed: the infinite-width "
                        f"Gaussian process at the same d (linearised step); grey: k/d in "
                        f"[1/3, 3]", path))
            e = ex[ex.activation == act] if len(ex) else ex
            const = (self.nonlinearity_law(g)[0]
                     if get_activation(act).piecewise_linear else None)
            path = window_scaling_figure(g, e, folder / f"window_scaling_{act}.png",
                                         law_constant=const, title=f"{act}")
            out.append((f"{act}: left, mean of eta ||grad f||^2 / |f| - 1 (exact root over "
                        f"linearised step, +-2 SE) against sqrt(1/k + 1/d), one colour per d"
                        + ("" if const is None else f", dotted: {const:.3f} sqrt(1/k + 1/d)")
                        + "; right, fitted exponent of mean ||delta||/||x|| against d at each "
                        "k/d (+-2 SE), -1/2 dashed", path))
        return out

    def fit_standard_errors(self, df: pd.DataFrame, p: Mapping[str, Any]) -> dict[str, float]:
        """SEs of the ||delta||/||x|| ~ d^(-1/2) exponents, per activation and k/d."""
        ex = self.exponents(self.summary_table(df, p), p)
        return {f"{r.activation} k/d={r.ratio:.3g}": float(r.slope_se) for r in ex.itertuples()}

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        ex = self.exponents(t, p)
        claims: list[Claim] = []
        lo, hi = WINDOW
        for act, g in t.groupby("activation", sort=True):
            win = g[(g.ratio >= lo * 0.999) & (g.ratio <= hi * 1.001)]
            if len(win):
                claims.append(C.at_least(
                    f"Section 1.1: the open window k ~ d. A single gradient step flips sign f "
                    f"for k/d in [1/3, 3] as it does outside ({act}, |eta| <= "
                    f"{p['max_eta']:g})", win.flipped.min(), 0.99,
                    "{flipped} of {n} inputs flipped over {cells} cells; lowest cell d = {w.d}, "
                    "k = {w.k}: {w.flipped:.2%}; all {all_cells} cells: lowest {lowest:.2%}",
                    "at least 99% flipped in every window cell",
                    scale="k/d in [1/3, 3] at large d (the paper profile's d)",
                    reached=self.reaches_paper(p, "d"),
                    flipped=int(round((win.flipped * win.n).sum())), n=int(win.n.sum()),
                    cells=len(win), w=win.loc[win.flipped.idxmin()], all_cells=len(g),
                    lowest=g.flipped.min()))
            e = ex[ex.activation == act] if len(ex) else ex
            if len(e):
                claims.append(C.every(
                    f"Theorems 1-2: ||eta grad f|| = O(1) while ||x|| = sqrt(d), so ||delta|| / "
                    f"||x|| decays like d^-1/2, at every k/d ({act})",
                    ~((e.slope + 0.5).abs() > np.maximum(0.1, 3 * e.slope_se)),
                    "fitted exponents over {cells} ratios from {lo:.3f} to {hi:.3f}; at k/d = "
                    "{mid.ratio:.2f}: {mid.slope:.3f} +- {mid.slope_se:.3f}",
                    "every exponent within max(0.1, 3 SE) of -0.5",
                    scale="d -> infinity at fixed k/d (the paper profile's d)",
                    reached=self.reaches_paper(p, "d"), lo=e.slope.min(), hi=e.slope.max(),
                    mid=e.loc[(np.log(e.ratio)).abs().idxmin()]))
            top = g.loc[g.groupby("d").ratio.idxmax()]
            zs = []
            for col in ("eta", "grad_norm", "abs_f", "rel"):
                z = ((top[f"{col}_mean"] - top[f"gp_{col}"]) / top[f"{col}_se"]).abs()
                zs.append((col, float(z.max()), top.loc[z.idxmax()]))
            col, zmax, row = max(zs, key=lambda c: c[1])
            claims.append(C.at_most(
                f"Infinite width: at the widest k/d of each d the cell means of |eta|, ||grad f||, "
                f"|f| and ||delta||/||x|| match the Gaussian-process limit (linearised step; "
                f"{act})", zmax, 4.0,
                "{each} (worst: {col} at d = {w.d}, k = {w.k}: {mean:.4g} vs GP {gp:.4g})",
                "every deviation within 4 standard errors (per-net SE)",
                scale="k/d -> infinity (the widest ratio of the grid)",
                each="; ".join(f"{c}: max {z:.1f} SE" for c, z, _ in zs), col=col, w=row,
                mean=row[f"{col}_mean"], gp=row[f"gp_{col}"]))
            claims.extend(self._no_transition(g, act))
            claims.extend(self._local_linearity(g, act))
        return claims

    def _local_linearity(self, g: pd.DataFrame, act: str) -> list[Claim]:
        """How far the exact flipping step is from the linearised one, across k/d."""
        lo, hi = WINDOW
        cells = g[(g.k >= LAW_MIN_K) & g.nonlin_mean.notna()]
        if not len(cells):
            return []
        win = cells[(cells.ratio >= lo * 0.999) & (cells.ratio <= hi * 1.001)]
        top = (win if len(win) else cells).loc[(win if len(win) else cells).nonlin_mean.idxmax()]
        where = (f"largest window cell: {top.nonlin_mean:.2%} at d = {top.d}, k = {top.k}"
                 if len(win) else "no window cell")
        if not get_activation(act).piecewise_linear:
            return [C.at_most(
                f"Smooth psi, locally linear at the flip (Bubeck et al. eq. (5), curvature "
                f"O(1/d)): the exact flipping step equals the linearised -f/||grad f||^2 up to "
                f"a small relative excess across k/d ({act})", cells.nonlin_mean.abs().max(),
                0.01, "mean of eta ||grad f||^2/|f| - 1 (eta: the root) over {cells} cells "
                "with k >= {min_k}: largest |mean| {value:.3%} (d = {w.d}, k = {w.k}); {where}",
                "|mean relative excess| <= 1% in every cell with k >= {min_k}",
                scale=f"large d and k (cells with k >= {LAW_MIN_K})", cells=len(cells),
                min_k=LAW_MIN_K, w=cells.loc[cells.nonlin_mean.abs().idxmax()], where=where)]
        const, fit = self.nonlinearity_law(g)
        if len(fit) < 3:
            return []
        return [C.every(
            f"ReLU kinks along the ray (our heuristic, not in the paper): the exact step exceeds "
            f"the linearised one by eta ||grad f||^2/|f| - 1 ~ C sqrt(1/k + 1/d): a unit's own "
            f"weight in grad f moves its pre-activation by ~1/sqrt(k) (dominant for k << d), "
            f"the overlaps with the other units by ~1/sqrt(d) (k >> d); both are small at "
            f"k ~ d ({act})", (fit.law_ratio >= 1 / 1.5) & (fit.law_ratio <= 1.5),
            "C = {const:.3f}; measured / law from {lo:.2f} to {hi:.2f} over {cells} cells with "
            "k >= {min_k}; {where}",
            "every cell with k >= {min_k} within a factor 1.5 of the one-constant law (mean "
            "over flipped inputs)", scale=f"cells with k >= {LAW_MIN_K} (our heuristic)",
            const=const, lo=fit.law_ratio.min(), hi=fit.law_ratio.max(), min_k=LAW_MIN_K,
            where=where)]

    @staticmethod
    def _no_transition(g: pd.DataFrame, act: str) -> list[Claim]:
        """Window cells against the two cells bracketing the window, per d and statistic."""
        lo, hi = WINDOW
        viol, checked = [], 0
        for d, h in g.groupby("d"):
            h = h.sort_values("ratio")
            below, above = h[h.ratio < lo * 0.999], h[h.ratio > hi * 1.001]
            win = h[(h.ratio >= lo * 0.999) & (h.ratio <= hi * 1.001)]
            if not len(below) or not len(above) or not len(win):
                continue
            b, a = below.iloc[-1], above.iloc[0]
            for col in ("flipped", "eta", "grad_norm", "rel"):
                m = "flipped" if col == "flipped" else f"{col}_mean"
                s = f"{col}_se"
                lo_v = min(b[m] - 4 * b[s], a[m] - 4 * a[s])
                hi_v = max(b[m] + 4 * b[s], a[m] + 4 * a[s])
                for _, w in win.iterrows():
                    checked += 1
                    if not (lo_v - 4 * w[s] <= w[m] <= hi_v + 4 * w[s]):
                        viol.append(f"d={d} k={w.k} {col}")
        if not checked:
            return []
        return [C.count(
            f"What happens at k ~ d: nothing special. Each statistic of a window cell lies "
            f"between its values just outside the window ({act})", checked - len(viol), checked,
            "{passed} of {total} (cell, statistic) pairs inside{outside}",
            "fraction flipped, |eta|, ||grad f|| and ||delta||/||x|| of every cell with k/d in "
            "[1/3, 3] within the range of the nearest cells below 1/3 and above 3, widened by "
            "4 SE each", scale="k/d around [1/3, 3] at each d of the grid",
            outside=f"; outside: {', '.join(viol[:6])}" if viol else "")]
