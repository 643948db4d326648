"""``min-pert``: Bartlett, Bubeck, Cherapanamjeri (NeurIPS 2021), Appendix D, Figure 1.

For a one-hidden-layer net f(x) = w_2^T relu(W_1 x), W_1 (k, d) with i.i.d. N(0, 1) entries, the
optimal value of (Min-Pert), min ||delta|| s.t. W_1 (x - delta) = 0, is ||W_1^+ W_1 x||: the
smallest perturbation after which every gradient pattern of f is reachable. The paper plots
||delta*|| / ||x|| against k (d = 10000, 10 runs) next to sqrt(k / d).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd
import torch

from randadv.experiments._papers import BARTLETT_2021
from randadv.framework import ANY_SIZE, Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets import GaussianMatrix, sphere_points
from randadv.nets.seeding import derive_seed
from randadv.stats import loglog_slope, mean_se
from randadv.theory.min_pert import (
    min_pert_ratio_mean,
    min_pert_ratio_sq_moments,
    min_pert_ratio_theory,
    min_pert_ratio_torch,
)

MAX_ENTRIES = 2 * 10**8     # W_1 is materialised in float64 for the QR: 1.6 GB at this size


class MinPert(Experiment):
    name = "min-pert"
    paper = BARTLETT_2021
    figures_reproduced = "Appendix D, Figure 1"
    summary = "Min-Pert radius ||W1^+ W1 x|| / ||x|| of one-hidden-layer nets vs k, with sqrt(k/d)"
    parameters = dict(
        d=Param(1000, "input dimension", min=2),
        k=Param([1, 5, 10, 50, 100, 500, 1000], "widths k of the first layer W (the x axis)",
                min=1),
        runs=Param(10, "independent random matrices W per width", min=2,
                   why="standard errors"),
        inputs=Param(5, "inputs per run", min=1),
    )
    profiles = {
        "smoke": dict(d=200, k=[2, 10, 50, 100, 200], runs=4, inputs=2),
        "quick": dict(),
        "paper": dict(d=10000, k=[10, 50, 100, 500, 1000, 5000, 10000], inputs=1),
    }
    record = TypedDict("Record", {"d": int, "k": int, "run": int, "input": int, "ratio": float,
                                  "theory": float, "exact_mean": float})

    def validate(self, p: dict[str, Any]) -> None:
        big = [k for k in p["k"] if k * p["d"] > MAX_ENTRIES]
        require(not big, f"k = {big} with d = {p['d']}: W_1 over {MAX_ENTRIES:.0e} entries")

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(d=p["d"], k=k, run=r) for k in p["k"] for r in range(p["runs"])]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        d, k = unit["d"], unit["k"]
        return float(d * k * min(d, k) + d * k)     # QR of W_1^T plus drawing W_1

    def unit_memory(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> int:
        return 3 * 8 * unit["d"] * unit["k"]        # W_1, its transpose copy and Q in float64

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        d, k, run = unit["d"], unit["k"], unit["run"]
        w1 = GaussianMatrix(k, d, 1.0, (derive_seed(ctx.seed, "W1", run, k, d),),
                            dtype=torch.float64).full()
        x = sphere_points(p["inputs"], d, math.sqrt(d), ctx.seed, "x", run, k, d,
                          dtype=torch.float64)
        ratio = min_pert_ratio_torch(w1, x).numpy()
        th, exact = min_pert_ratio_theory(k, d), min_pert_ratio_mean(k, d)
        return [dict(d=d, k=k, run=run, input=i, ratio=float(r), theory=th, exact_mean=exact)
                for i, r in enumerate(ratio)]

    # ------------------------------------------------------------------ results
    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        rows = []
        for (d, k), g in df.groupby(["d", "k"], sort=True):
            per_run = g.groupby("run").ratio.mean()
            se = mean_se(per_run)
            m2, s2 = min_pert_ratio_sq_moments(int(k), int(d))
            rows.append(dict(d=d, k=k, runs=len(per_run), n=len(g), mean=g.ratio.mean(),
                             std=g.ratio.std(ddof=1), se=se, sqrt_k_over_d=g.theory.iloc[0],
                             exact_mean=g.exact_mean.iloc[0],
                             mean_sq=(g.ratio ** 2).mean(), exact_mean_sq=m2))
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_multilayer import min_pert_figure

        t = self.summary_table(df, p)
        path = min_pert_figure(t, folder / "min_pert.png",
                               title=f"Min-Pert radius, d = {int(t.d.iloc[0])} (Figure 1)")
        return [(f"||W1^+ W1 x|| / ||x|| vs k (mean over {int(t.runs.max())} runs, bars: +-1 "
                 "std over runs x inputs); dashed: sqrt(k/d) (Appendix D, Figure 1)", path)]

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        sub, full = t[t.k < t.d], t[t.k >= t.d]
        claims: list[Claim] = []
        if len(sub):
            z = ((sub["mean"] - sub.exact_mean) / sub.se).abs()
            gap = sub["mean"] / sub.sqrt_k_over_d - 1
            claims.append(C.at_most(
                "Appendix D: ||W1^+ W1 x|| / ||x|| concentrates around sqrt(k/d) (exact law for "
                "k < d: squared ratio ~ Beta(k/2, (d-k)/2))", float(z.max()), 4.0,
                "largest deviation of a run mean from the exact mean: {value:.2f} standard "
                "errors (k = {w.k:.0f}: {w[mean]:.5f} vs {w.exact_mean:.5f}); relative gap to "
                "sqrt(k/d) from {lo:+.2%} to {hi:+.2%}",
                "every k < d within 4 standard errors (across runs) of E sqrt(Beta)",
                scale=ANY_SIZE + ": the Beta law is exact for every k < d",
                w=sub.loc[z.idxmax()], lo=float(gap.min()), hi=float(gap.max())))
            claims.append(C.every(
                "Figure 1: \"the data points are in close agreement with the theoretically "
                "predicted ratio of sqrt(k/d)\"",
                gap.abs() <= 1 / (4 * sub.k) + 4 * sub.se / sub.sqrt_k_over_d,
                C.listing(sub, "k={k:.0f}: {mean:.4f} vs {sqrt_k_over_d:.4f}", "; "),
                "|mean / sqrt(k/d) - 1| <= 1/(4k) (Jensen gap of E sqrt(Beta)) + 4 standard "
                "errors, for every k < d",
                scale="Figure 1: d = 1e4, k = 10 ... 1e4", reached=self.reaches_paper(p, "d", "k")))
            if sub.k.nunique() >= 3:
                claims.append(C.within(
                    "Appendix D: the Min-Pert radius grows like sqrt(k) (k < d)",
                    loglog_slope(sub.k, sub["mean"]), 0.5, 0.05,
                    "fitted log-log exponent of the mean ratio vs k: {value:.4f}",
                    "exponent within 0.05 of 1/2", scale="k << d (Figure 1: d = 1e4)",
                    reached=self.reaches_paper(p, "d")))
        if len(full):
            claims.append(C.at_most(
                "Min-Pert: for k >= d, W1 has full column rank and delta* = x (ratio 1)",
                float((full["mean"] - 1).abs().max()), 1e-8,
                "largest |ratio - 1| over k >= d: {value:.2e}",
                "|ratio - 1| <= 1e-8 (float64 rounding)", scale=ANY_SIZE))
        return claims
