"""``bottleneck-linearity``: Bartlett, Bubeck, Cherapanamjeri (NeurIPS 2021), Sections 2.3-2.4 and
Appendix D: the radius R within which the gradient of a random ReLU net changes by less than a
fixed fraction eps of its norm grows with the bottleneck width d_min (the proof's
R ~ sqrt(d_min) / polylog, ||x|| = sqrt(d)), the rest of the architecture held fixed.

Per (architecture, bottleneck width m, network): M inputs on the sphere of radius sqrt(d) and
:func:`randadv.attacks.linearity.linearity_radius` for each eps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from randadv.arch import MLPSpec, bottleneck_widths
from randadv.attacks.linearity import linearity_radius
from randadv.experiments._papers import BARTLETT_2021
from randadv.framework import Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets import sphere_points
from randadv.nets.seeding import derive_seed
from randadv.stats import loglog_slope, mean_se

ARCHITECTURES = ("single", "middle")


class BottleneckLinearity(Experiment):
    name = "bottleneck-linearity"
    paper = BARTLETT_2021
    figures_reproduced = "Sections 2.3-2.4 (R ~ sqrt(d_min)), Appendix D (no figure)"
    summary = ("radius within which ||grad f(x+v) - grad f(x)|| < eps ||grad f(x)||, vs the "
               "bottleneck width d_min; fitted exponent vs 1/2")
    parameters = dict(
        d=Param(512, "input dimension", min=2),
        width=Param(512, "width of the wide hidden layers", min=1),
        bottleneck=Param([16, 32, 64, 128, 256], "bottleneck widths d_min (the x axis)", min=1),
        architecture=Param(["single", "middle"],
                           "where the bottleneck sits: single (one hidden layer of width d_min) "
                           "or middle (width x bottleneck x width)",
                           choices=ARCHITECTURES),
        eps=Param([0.5, 1.0],
                  "relative gradient change eps defining the linearity radius (Bartlett et al. "
                  "eq. (1))", gt=0),
        nets=Param(8, min=2, why="standard errors"),
        inputs=Param(6, "inputs per network (uniform on the sphere of radius sqrt(d))", min=1),
        n_directions=Param(16,
                           "random directions tried on each sphere of radius r before the ascent",
                           min=1),
        ascent_steps=Param(4,
                           "projected ascent steps of the gradient-change search from the best "
                           "direction", min=0),
        n_scan=Param(10, "radii scanned (log grid) before the bisection", min=2),
        bisect_steps=Param(4,
                           "bisection steps refining the linearity radius between two scanned "
                           "radii", min=0),
    )
    profiles = {
        "smoke": dict(d=64, width=64, bottleneck=[8, 16, 32], architecture=["single"], eps=[1.0],
                      nets=2, inputs=3, n_directions=6, ascent_steps=2, n_scan=6, bisect_steps=2),
        "quick": dict(),
        "paper": dict(d=2048, width=2048, bottleneck=[16, 32, 64, 128, 256, 512, 1024],
                      eps=[0.25, 0.5, 1.0], nets=10, inputs=20, n_directions=32, ascent_steps=8,
                      n_scan=12, bisect_steps=6),
    }
    record = TypedDict("Record", {"architecture": str, "d": int, "bottleneck": int, "widths": str,
                                  "d_min": int, "eps": float, "net": int, "input": int,
                                  "radius": float, "upper": float, "censored": bool,
                                  "grad_norm": float})

    def validate(self, p: dict[str, Any]) -> None:
        require(p["d"] * max(p["width"], max(p["bottleneck"])) <= 10**8, "layers over 1e8 weights")

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(architecture=a, bottleneck=m, net=n) for a, m, n in
                itertools.product(p["architecture"], p["bottleneck"], range(p["nets"]))]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        widths = [p["d"], *bottleneck_widths(unit["architecture"], unit["bottleneck"], p["width"])]
        weights = sum(a * b for a, b in zip(widths, widths[1:], strict=False)) + widths[-1]
        evaluations = ((p["n_scan"] + p["bisect_steps"]) * p["n_directions"]
                       * (p["ascent_steps"] + 1))
        return float(weights * evaluations * p["inputs"] * len(p["eps"]))

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        d, m, n, arch = p["d"], unit["bottleneck"], unit["net"], unit["architecture"]
        hidden = bottleneck_widths(arch, m, p["width"])
        net = MLPSpec.nn_def([d, *hidden]).build(derive_seed(ctx.seed, "net", arch, m, n),
                                                 device=ctx.device)
        x = sphere_points(p["inputs"], d, math.sqrt(d), ctx.seed, "inputs", d, n).to(ctx.device)
        recs = []
        for eps in p["eps"]:
            r = linearity_radius(net, x, eps, r_max=2 * math.sqrt(d), r_min=0.1 / math.sqrt(d),
                                 n_scan=p["n_scan"], bisect_steps=p["bisect_steps"],
                                 n_directions=p["n_directions"], ascent_steps=p["ascent_steps"],
                                 seed=derive_seed(ctx.seed, "search", arch, m, n, eps))
            recs += [dict(architecture=arch, d=d, bottleneck=m, widths=",".join(map(str, hidden)),
                          d_min=min(d, *hidden), eps=float(eps), net=n, input=i,
                          radius=float(r.radius[i]), upper=float(r.upper[i]),
                          censored=bool(r.censored[i]), grad_norm=float(r.grad_norm[i]))
                     for i in range(x.shape[0])]
        return recs

    # ------------------------------------------------------------------ results
    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        rows = []
        for (arch, eps, m), g in df.groupby(["architecture", "eps", "d_min"], sort=True):
            r = g.radius.clip(lower=0.1 / np.sqrt(g.d))
            per_net = np.log(r.groupby(g.net).median())
            rows.append(dict(architecture=arch, eps=eps, d_min=m, n=len(g),
                             radius_median=float(g.radius.median()),
                             radius_q25=float(g.radius.quantile(0.25)),
                             radius_q75=float(g.radius.quantile(0.75)),
                             log_median_radius_mean=float(per_net.mean()),
                             log_median_radius_se=float(mean_se(per_net)),
                             censored=float(g.censored.mean()),
                             radius_over_sqrt_dmin=float(g.radius.median() / math.sqrt(m))))
        return pd.DataFrame(rows)

    def exponents(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per (architecture, eps): the log-log slope of the median radius vs d_min (pooled), and
        the same slope fitted on each network index separately (medians over its inputs;
        networks of one index are independent across d_min), whose spread gives the standard
        error. Radii of 0 (a change >= eps already at r_min) count as r_min = 0.1 / sqrt(d)."""
        rows = []
        for (arch, eps), g in df.groupby(["architecture", "eps"], sort=True):
            if g.d_min.nunique() < 2:
                continue
            r = g.radius.clip(lower=0.1 / np.sqrt(g.d))
            cell = r.groupby([g.net, g.d_min]).median().reset_index()
            slopes = [loglog_slope(h.d_min, h.radius)
                      for _, h in cell.groupby("net") if h.d_min.nunique() >= 2]
            pooled = r.groupby(g.d_min).median()
            rows.append(dict(architecture=arch, eps=eps,
                             slope=loglog_slope(pooled.index, pooled.values),
                             slope_se=float(np.std(slopes, ddof=1) / math.sqrt(len(slopes)))
                             if len(slopes) >= 2 else math.nan, nets=len(slopes)))
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_multilayer import bottleneck_radius_figure

        t = self.summary_table(df, p)
        path = bottleneck_radius_figure(t, self.exponents(df), folder / "bottleneck_radius.png",
                                        title=f"d = {p['d']}, width {p['width']}")
        return [("Linearity radius R_eps (median over nets x inputs, IQR band) vs bottleneck "
                 "width d_min, one panel per architecture, one colour per eps; dashed: "
                 "C sqrt(d_min) through the geometric mean of each curve (slope 1/2; the "
                 "constant is fitted, the exponent is the paper's)", path)]

    def fit_standard_errors(self, df: pd.DataFrame, p: Mapping[str, Any]) -> dict[str, float]:
        """SEs (over network indices) of the R ~ d_min^(1/2) exponents."""
        return {f"{r.architecture} eps={r.eps:g}": float(r.slope_se)
                for r in self.exponents(df).itertuples()}

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        return [C.within(
            f"Sections 2.3-2.4: R ~ sqrt(d_min) (exponent 1/2; {r.architecture} bottleneck, "
            f"eps = {r.eps:g})", r.slope, 0.5,
            max(0.1, 2 * r.slope_se) if not math.isnan(r.slope_se) else 0.1,
            "fitted exponent of the median radius {value:.3f} (standard error {se:.3f} from "
            "{nets} independent network indices)",
            "|exponent - 1/2| <= max(0.1, 2 standard errors): the theorem's R is sqrt(d_min) up "
            "to polylog factors, which move a fitted exponent by ~0.1",
            scale="d_min << width, large d (the paper profile's d, width and bottleneck widths)",
            reached=self.reaches_paper(p, "d", "width", "bottleneck"), se=r.slope_se,
            nets=r.nets) for r in self.exponents(df).itertuples()]
