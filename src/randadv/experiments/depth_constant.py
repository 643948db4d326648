"""``depth-constant``: Bartlett, Bubeck, Cherapanamjeri (NeurIPS 2021), Theorem 3.1 and Lemma 3.2,
and (beyond the paper) how the single-step sensitivity decreases with depth.

Fixed width k, growing depth L: per network (``DeepReLUNet([d] + [k] * L)``)
* ``points`` inputs uniform on the sphere of radius sqrt(d): f(x), ||grad f(x)|| and the smallest
  flipping step along grad f(x) (exact layer sweep, verified), i.e. the spread of f over the
  sphere (Theorem 3.1: max |f(x) - f(y)| / |f(x)| <= C sqrt(log d / d) once L >= d^3), the fraction
  with a flipping step |eta| < 20, and sqrt(d) ||eta grad f|| / ||x|| (Section 1: "we do not know
  how the sensitivity to input perturbations decreases with depth");
* ``pairs`` of inputs with input correlation rho_0: the cosine between their last-layer images
  against the iterated correlation map c^L(rho_0) (Lemma 3.2).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import scipy.stats
import torch

from randadv.arch import MLPSpec
from randadv.experiments._flip_capped import flip_steps_capped
from randadv.experiments._papers import BARTLETT_2021
from randadv.experiments._sweep_cost import flip_search_cost
from randadv.framework import Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets import correlated_sphere_pairs, sphere_points
from randadv.nets.seeding import derive_seed
from randadv.stats import mean_se

MEDIAN_ABS_NORMAL = 0.6744897501960817   # median of |N(0, 1)|: the linear-limit sqrt(d)|u_1|


def quantile_inf(values: np.ndarray, q: float) -> float:
    """numpy's linear-interpolation quantile, with +inf entries allowed (inf where the
    interpolation reaches one; numpy gives NaN from inf - inf)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    pos = q * (len(v) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi or v[lo] == v[hi]:
        return float(v[lo])
    return float(v[lo] + (v[hi] - v[lo]) * (pos - lo))


class DepthConstant(Experiment):
    name = "depth-constant"
    paper = BARTLETT_2021
    figures_reproduced = "Theorem 3.1, Lemma 3.2 (no figure in the paper); depth sweep beyond it"
    summary = ("deep constant-width nets: spread of f on the sphere, image correlations vs the "
               "iterated ReLU correlation map, flip fraction (|eta| < 20) and "
               "sqrt(d)||delta||/||x|| vs depth up to 128")
    parameters = dict(
        d=Param([16, 64], "input dimensions", min=2),
        width=Param(64, "width of every hidden layer", min=1),
        depth=Param([1, 2, 4, 8, 16, 32, 64, 128], "depths L of the ReLU networks", min=1),
        nets=Param(4, min=2, why="standard errors"),
        points=Param(24, "inputs per network for the spread of f and the flip steps", min=2),
        pairs=Param(8, "input pairs per correlation rho0 (Lemma 3.2's correlation map)", min=1),
        rho0=Param([-0.5, 0.0, 0.5, 0.9], "input correlations x.y/d of the pairs", min=-1,
                   max=1),
        max_eta=Param(20.0, gt=0),
        max_rel=Param(2.0, gt=0),
        hidden_gain=Param(2.0,
                          "variance gain of the hidden layers (2: He scaling, f keeps its scale "
                          "with depth)", gt=0),
        exact_max_depth=Param(128,
                              "deepest L searched by the exact layer sweep; deeper nets use the "
                              "grid bracket + Newton search"),
        n_grid=Param(1024,
                     "grid points per ray of the bracket search (depths over exact_max_depth)",
                     min=16),
    )
    profiles = {
        "smoke": dict(d=[16], width=32, depth=[1, 4, 16], nets=3, points=12, pairs=4,
                      rho0=[0.0, 0.5], exact_max_depth=8),
        "quick": dict(),
        "paper": dict(d=[16, 64, 256], width=256, depth=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
                      nets=20, points=100, pairs=20, exact_max_depth=512),
    }
    record = TypedDict("Record", {"kind": str, "d": int, "width": int, "depth": int, "net": int,
                                  "index": int, "rho0": float, "corr": float, "corr_theory": float,
                                  "f_x": float, "grad_norm": float, "eta": float, "flipped": bool,
                                  "rel_pert": float})

    def validate(self, p: dict[str, Any]) -> None:
        require(max(p["depth"]) * p["width"] ** 2 <= 10**9, "depth x width^2 over 1e9 weights")

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(d=d, depth=L, net=n) for d in p["d"] for L in p["depth"]
                for n in range(p["nets"])]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Multiply-adds up to a constant. Exact sweep: :func:`flip_search_cost` (layer l
        carries the zeros of layers 1..l-1 the ray crossed, about width x turned angle / pi per
        layer; rays that flip stop near their linearised root, the others, a share growing with
        depth as c^L(0) -> 1, at the batch's bound: ~ L^2 width^3 per unflipped ray); grid
        search: n_grid points per ray; pairs: one forward pass each."""
        k, depth = p["width"], unit["depth"]
        widths = (unit["d"],) + (k,) * depth
        forward = sum(a * b for a, b in itertools.pairwise(widths))
        if depth <= p["exact_max_depth"]:
            search = flip_search_cost(widths, p["points"], p["max_rel"])
        else:
            search = p["points"] * p["n_grid"] * forward
        return float(search + 2 * len(p["rho0"]) * p["pairs"] * forward)

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        d, depth, n, k = unit["d"], unit["depth"], unit["net"], p["width"]
        spec = MLPSpec.nn_def([d] + [k] * depth, hidden_gain=p["hidden_gain"])
        net = spec.build(derive_seed(ctx.seed, "net", d, depth, n), device=ctx.device)
        base = dict(d=d, width=k, depth=depth, net=n)
        nan = math.nan
        recs: list[dict[str, Any]] = []
        # pairs: last-layer images against the iterated correlation map (Lemma 3.2)
        for rho in p["rho0"]:
            x, y = correlated_sphere_pairs(p["pairs"], d, rho, ctx.seed, "pairs", d, n, rho)
            with torch.no_grad():
                hx = torch.relu(net.preactivations(x.float().to(ctx.device))[-1]).double().cpu()
                hy = torch.relu(net.preactivations(y.float().to(ctx.device))[-1]).double().cpu()
            cos = (hx * hy).sum(1) / (hx.norm(dim=1) * hy.norm(dim=1)).clamp_min(1e-300)
            th = float(spec.output_correlation(rho))
            recs += [dict(base, kind="pair", index=i, rho0=rho, corr=float(c), corr_theory=th,
                          f_x=nan, grad_norm=nan, eta=nan, flipped=False, rel_pert=nan)
                     for i, c in enumerate(cos)]
        # points on the sphere: spread of f, flipping steps
        x = sphere_points(p["points"], d, math.sqrt(d), ctx.seed, "points", d, n)
        xn = x.double() / math.sqrt(d)
        gram = (xn @ xn.T).clamp(-1.0, 1.0).numpy()
        kernel_mean = float(spec.output_correlation(gram).mean())
        r = flip_steps_capped(net, x.to(ctx.device), p["max_eta"], p["max_rel"],
                              exact=depth <= p["exact_max_depth"], n_grid=p["n_grid"])
        recs += [dict(base, kind="point", index=i, rho0=nan, corr=nan, corr_theory=kernel_mean,
                      f_x=float(r["f_x"][i]), grad_norm=float(r["grad_norm"][i]),
                      eta=float(r["eta"][i]), flipped=bool(r["flipped"][i]),
                      rel_pert=float(r["rel_pert"][i]))
                 for i in range(x.shape[0])]
        return recs

    # ------------------------------------------------------------------ results
    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        pts = df[df.kind == "point"]
        rows = []
        for (d, depth), g in pts.groupby(["d", "depth"], sort=True):
            spreads, var, msq = [], [], []
            for _, h in g.groupby("net"):
                f = h.f_x.to_numpy()
                spreads.append((f.max() - f.min()) / max(np.abs(f).min(), 1e-300))
                var.append(f.var())
                msq.append((f ** 2).mean())
            s = np.sqrt(d) * np.where(g.flipped, g.rel_pert, np.inf)
            within = g.flipped & (g.eta.abs() < p.get("max_eta", 20.0))
            frac_net = within.groupby(g.net).mean()
            same_sign = g.groupby("net").f_x.apply(lambda f: bool((f > 0).all() or (f < 0).all()))
            rows.append(dict(
                d=d, depth=depth, nets=g.net.nunique(), n=len(g),
                spread_median=float(np.median(spreads)),
                spread_q25=float(np.quantile(spreads, 0.25)),
                spread_q75=float(np.quantile(spreads, 0.75)),
                dispersion=float(np.sum(var) / np.sum(msq)),
                dispersion_theory=float(1 - g.corr_theory.mean()),
                same_sign_nets=float(same_sign.mean()),
                flip_frac=float(within.mean()),
                flip_frac_se=float(mean_se(frac_net)),
                found_frac=float(g.flipped.mean()),
                sens_median=quantile_inf(s, 0.5),
                sens_q25=quantile_inf(s, 0.25), sens_q75=quantile_inf(s, 0.75),
                lin_median=float(np.median(np.sqrt(d) * g.f_x.abs() / g.grad_norm
                                           / math.sqrt(d))),
                theorem31=math.sqrt(math.log(d) / d)))
        out = pd.DataFrame(rows)
        c = self.correlation_table(df)
        if len(c):
            wide = c.pivot_table(index=["d", "depth"], columns="rho0",
                                 values=["corr_mean", "corr_se", "corr_theory"])
            wide.columns = [f"{a}_rho{b:g}" for a, b in wide.columns]
            out = out.merge(wide.reset_index(), on=["d", "depth"], how="left")
        return out

    def correlation_table(self, df: pd.DataFrame) -> pd.DataFrame:
        pairs = df[df.kind == "pair"]
        rows = []
        for (d, depth, rho), g in pairs.groupby(["d", "depth", "rho0"], sort=True):
            per_net = g.groupby("net")["corr"].mean()
            rows.append(dict(d=d, depth=depth, rho0=rho, corr_mean=float(g["corr"].mean()),
                             corr_se=float(mean_se(per_net)),
                             corr_theory=float(g.corr_theory.iloc[0])))
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_multilayer import (
            depth_correlation_figure,
            depth_sensitivity_figure,
            depth_spread_figure,
        )

        t = self.summary_table(df, p)
        c = self.correlation_table(df)
        k = int(p["width"])
        return [
            (f"Spread max|f(x)-f(y)|/|f(x)| over the points (median over nets, IQR band) and "
             f"normalised dispersion var_x f / mean_x f^2 vs depth (width {k}); dashed: "
             "1 - mean c^L(rho_ij) (Lemma 3.2, infinite width); dotted: sqrt(log d / d) "
             "(Theorem 3.1's scale, C = 1)",
             depth_spread_figure(t, folder / "depth_spread.png")),
            (f"Cosine of the last-layer images of two inputs with correlation rho0 vs depth "
             f"(width {k}; mean over pairs and nets, bars: 2 standard errors); dashed: c^L(rho0)"
             " (Lemma 3.2)", depth_correlation_figure(c, folder / "depth_correlation.png")),
            (f"Fraction of inputs flipped with |eta| < {p['max_eta']:g} (left) and median "
             f"sqrt(d) ||eta grad f|| / ||x|| (right, IQR band; unflipped inputs count as +inf) "
             "vs depth; dashed: the linear limit 0.674 (median sqrt(d)|u_1|)",
             depth_sensitivity_figure(t, folder / "depth_sensitivity.png",
                                      max_eta=p["max_eta"])),
        ]

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        c = self.correlation_table(df)
        claims: list[Claim] = []
        k = int(p["width"])
        for d, g in t.groupby("d"):
            g = g.sort_values("depth")
            rho_s = scipy.stats.spearmanr(g.depth, g.spread_median).statistic \
                if len(g) >= 3 else math.nan
            claims.append(C.trend(
                f"Theorem 3.1 (trend): f becomes nearly constant on the sphere as depth grows "
                f"(d = {d}, width {k})",
                rho_s < 0 and g.spread_median.iloc[-1] < g.spread_median.iloc[0],
                "median spread max|f(x)-f(y)|/|f(x)| by depth: {spread}; nets with one sign on "
                "all points: {signs}",
                "spread decreasing with depth (Spearman correlation < 0, last depth below the "
                "first); the theorem's bound C sqrt(log d/d) needs L >= d^3 (not reached)",
                scale="depth growing at fixed d (the paper profile's depths and width)",
                reached=self.reaches_paper(p, "depth", "width"), numbers=[rho_s],
                spread=C.listing(g, "L={depth}: {spread_median:.3g}"),
                signs=C.listing(g, "L={depth}: {same_sign_nets:.0%}")))
            small = g[g.depth <= k / 8]
            if len(small):
                claims.append(C.every(
                    f"Lemma 3.2: the dispersion of f on the sphere follows the correlation map, "
                    f"E var_x f / E f^2 = 1 - mean c^L(rho_ij) (d = {d}, L <= width/8)",
                    ((small.dispersion - small.dispersion_theory)
                     / small.dispersion_theory).abs() <= 0.25, "{cells_text}",
                    "within 25% in every cell (ratio of sums over ~nets x points values; finite "
                    "width corrections O(L/k))",
                    scale="L <= width/8 (infinite-width correlation map; any such cell)",
                    cells_text=C.listing(small, "L={depth}: {dispersion:.3f} vs "
                                                "{dispersion_theory:.3f}", "; ")))
        small = c[c.depth <= k / 8]
        if len(small):
            allow = small.depth / k * (1 - small.corr_theory)
            dev = (small.corr_mean - small.corr_theory).abs()
            tol = 4 * small.corr_se + allow
            claims.append(C.every(
                "Lemma 3.2: the correlation of the last-layer images of two inputs is the "
                "iterated map c^L(rho0) (c(rho) = (sin t + (pi - t) cos t)/pi, t = arccos rho)",
                C.within_se(small.corr_mean, small.corr_theory, small.corr_se, 4, allow),
                "largest |mean - c^L| = {dev:.4f} over {cells} cells with L <= width/8; worst "
                "relative to tolerance: d = {w.d}, L = {w.depth}, rho0 = {w.rho0:g}: "
                "{w.corr_mean:.4f} vs {w.corr_theory:.4f}",
                "|mean - c^L(rho0)| <= 4 standard errors (per-network means) + (L/k)(1 - c^L), "
                "an O(L/k) finite-width allowance",
                scale="L <= width/8 (infinite-width correlation map; any such cell)",
                dev=float(dev.max()), w=small.loc[(dev / tol).idxmax()]))
        deep = c[(c.depth > k / 8)]
        if len(deep):
            claims.append(C.reported(
                "Lemma 3.2 at depth >= width/8 (finite-width regime, reported)", "{cells}",
                "no criterion: outside the correlation map's regime",
                scale="L > width/8 (reported only)",
                cells=C.listing(deep[deep.rho0 == 0.0], "d={d} L={depth} rho0={rho0:g}: "
                                "{corr_mean:.4f} vs {corr_theory:.4f}", "; ")
                or "no rho0 = 0 cells"))
        for d, g in t.groupby("d"):
            g = g.sort_values("depth")
            se = math.hypot(g.flip_frac_se.iloc[-1], g.flip_frac_se.iloc[0])
            claims.append(C.trend(
                f"Section 3: deep networks rule out single-step adversarial examples; fraction "
                f"with a flipping step |eta| < {p['max_eta']:g} vs depth (d = {d})",
                g.flip_frac.iloc[-1] < g.flip_frac.iloc[0] - 2 * se,
                "{fracs}", "the fraction at the largest depth is below that at the smallest by "
                "more than 2 standard errors (per-network fractions)",
                scale="large depth at fixed d (the paper profile's depths)",
                reached=self.reaches_paper(p, "depth"),
                fracs=C.listing(g, "L={depth}: {flip_frac:.0%}")))
            claims.append(C.reported(
                f"Beyond the paper (\"we do not know how the sensitivity decreases with depth\"): "
                f"median sqrt(d) ||eta grad f|| / ||x|| vs depth (d = {d})",
                "{sens}; linearised median: {lin}",
                "reported, no criterion; the linear limit is 0.674 at every depth",
                scale="beyond the paper: depths of the paper profile",
                sens=C.listing(g, "L={depth}: {sens_median:.3g}"),
                lin=C.listing(g, "L={depth}: {lin_median:.3g}")))
        return claims
