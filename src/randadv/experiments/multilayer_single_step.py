"""``multilayer-single-step``: Bartlett, Bubeck, Cherapanamjeri (NeurIPS 2021), Theorem 1.1 and
Lemma 2.2, measured on NN-DEF networks of several architecture families and depths 1..8.

Per grid cell (family, depth L, input dimension d): N networks ``DeepReLUNet(widths)`` x M inputs
uniform on the sphere of radius sqrt(d); for each input f(x), ||grad f(x)||, the smallest step
eta along grad f(x) that flips sign f (exact layer sweep over the ray's linear regions, verified
by a forward pass) and the
relative perturbation ||eta grad f(x)|| / ||x||, next to its linearised value
|f(x)| / (||grad f(x)|| ||x||) (the step that would flip a linear function).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from randadv.arch import MULTILAYER_FAMILIES, MLPSpec, multilayer_family_widths
from randadv.experiments._flip_capped import flip_steps_capped
from randadv.experiments._papers import BARTLETT_2021
from randadv.experiments._sweep_cost import flip_search_cost
from randadv.framework import ANY_SIZE, Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets import sphere_points
from randadv.nets.seeding import derive_seed
from randadv.stats import bonferroni_t, loglog_slope, mean_se
from randadv.theory import mean_abs_uniform_coordinate, uniform_coordinate_quantile

MAX_WEIGHT_ENTRIES = 2 * 10**8


class MultilayerSingleStep(Experiment):
    name = "multilayer-single-step"
    paper = BARTLETT_2021
    figures_reproduced = "Theorem 1.1 and Lemma 2.2 (no figure in the paper)"
    summary = ("smallest flipping step, ||grad f||, |f(x)| and ||eta grad f|| / ||x|| vs d for "
               "constant / widening / narrowing / bottleneck / polynomial widths, depths 1..8")
    parameters = dict(
        d=Param([16, 64, 256, 1024], "input dimensions", min=2),
        depth=Param([1, 2, 4, 8], "depths L (hidden layers)", min=1),
        family=Param(list(MULTILAYER_FAMILIES),
                     "width profiles: constant, widening, narrowing, bottleneck, polynomial",
                     choices=MULTILAYER_FAMILIES),
        width=Param(64, "hidden width of the constant family (and the scale of the others)",
                    min=1),
        bottleneck_width=Param(8, "width of the narrow layer of the bottleneck family",
                               min=1),
        poly_cap=Param(256,
                       "largest width of the polynomial family (widths between sqrt(d) and "
                       "min(d^2, poly_cap))", min=1),
        nets=Param(8, min=2, why="standard errors"),
        inputs=Param(16, "inputs per network", min=1),
        max_eta=Param(20.0, gt=0),
        max_rel=Param(1.0, gt=0),
        delta=Param(0.1, "failure probability delta in Theorem 1.1's statement", gt=0, lt=1),
    )
    profiles = {
        "smoke": dict(d=[16, 64], depth=[1, 2], family=["constant", "bottleneck"], width=32,
                      nets=3, inputs=8),
        "quick": dict(),
        "paper": dict(d=[16, 64, 256, 1024, 4096], depth=[1, 2, 3, 4, 5, 6, 7, 8], width=512,
                      bottleneck_width=16, poly_cap=4096, nets=20, inputs=50),
    }
    record = TypedDict("Record", {"family": str, "depth": int, "d": int, "widths": str,
                                  "d_min": int, "net": int, "input": int, "f_x": float,
                                  "grad_norm": float, "eta": float, "flipped": bool,
                                  "rel_pert": float, "lin_rel_pert": float})

    def validate(self, p: dict[str, Any]) -> None:
        for cell in self.cells(p):
            w = [cell["d"], *self.widths(cell, p)]
            n = sum(a * b for a, b in itertools.pairwise(w))
            require(n <= MAX_WEIGHT_ENTRIES, f"cell {cell}: {n:.3g} weights over the "
                    f"{MAX_WEIGHT_ENTRIES:.0e} limit")

    def cells(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(family=f, depth=L, d=d)
                for f, L, d in itertools.product(p["family"], p["depth"], p["d"])]

    def widths(self, cell: Mapping[str, Any], p: Mapping[str, Any]) -> list[int]:
        return multilayer_family_widths(cell["family"], cell["d"], cell["depth"], p["width"],
                             p["bottleneck_width"], p["poly_cap"])

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(cell, net=n) for cell in self.cells(p) for n in range(p["nets"])]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Multiply-adds of the bounded exact search up to a constant
        (:func:`flip_search_cost`): layer l carries the zeros of layers 1..l-1 the ray crossed
        through its d_{l-1} x d_l product; a ray meets more zeros where the input or a layer is
        narrow (the gradient aligns with the Jacobian: alignment sqrt(1 + sum_j d / d_j)), and
        rays that do not flip (more of them with depth) are swept to the batch's bound."""
        widths = (unit["d"], *self.widths(unit, p))
        return float(flip_search_cost(widths, p["inputs"], p["max_rel"]))

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        d, n = unit["d"], unit["net"]
        spec = self.spec(unit, p)
        hidden, widths = list(spec.hidden), list(spec.widths)
        net = spec.build(derive_seed(ctx.seed, "net", unit["family"], unit["depth"], d, n),
                         device=ctx.device)
        x = sphere_points(p["inputs"], d, math.sqrt(d), ctx.seed, "inputs", n, d).to(ctx.device)
        r = flip_steps_capped(net, x, p["max_eta"], p["max_rel"])
        with np.errstate(divide="ignore", invalid="ignore"):     # dead nets: grad f = 0
            lin = np.abs(r["f_x"]) / (r["grad_norm"] * x.norm(dim=1).double().cpu().numpy())
        return [dict(family=unit["family"], depth=unit["depth"], d=d,
                     widths=",".join(map(str, hidden)), d_min=min(widths), net=n, input=i,
                     f_x=float(r["f_x"][i]), grad_norm=float(r["grad_norm"][i]),
                     eta=float(r["eta"][i]), flipped=bool(r["flipped"][i]),
                     rel_pert=float(r["rel_pert"][i]), lin_rel_pert=float(lin[i]))
                for i in range(x.shape[0])]

    # ------------------------------------------------------------------ results
    def spec(self, cell: Mapping[str, Any], p: Mapping[str, Any]) -> MLPSpec:
        """The network of a cell (family, depth, d): NN-DEF (``DeepReLUNet``) with its widths."""
        return MLPSpec.nn_def([int(cell["d"]), *self.widths(cell, p)])

    @staticmethod
    def theory(spec: MLPSpec) -> dict[str, float]:
        """NNGP values at ||x|| = sqrt(d) (exact at every width for bias-free ReLU)."""
        d = spec.d
        x = np.zeros(d)
        x[0] = math.sqrt(d)
        f_sq = spec.nngp_kernel(x, x).kxx
        g_sq = float(spec.expected_grad_norm_sq(x))
        return dict(f_sq=f_sq, grad_sq=g_sq, abs_f=math.sqrt(2 * f_sq / math.pi),
                    eta_lin=math.sqrt(2 * f_sq / math.pi) / g_sq,
                    lin_rel=mean_abs_uniform_coordinate(d))

    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        rows = []
        delta = p.get("delta", 0.1)
        for (fam, depth, d), g in df.groupby(["family", "depth", "d"], sort=True):
            th = self.theory(self.spec(dict(family=fam, depth=int(depth), d=int(d)), p))
            fl = g[g.flipped]
            per_net = g.groupby("net")

            def se(col: pd.Series, net: pd.Series = g.net) -> float:
                return float(mean_se(col.groupby(net).mean()))

            rows.append(dict(
                family=fam, depth=depth, d=d, widths=g.widths.iloc[0], d_min=g.d_min.iloc[0],
                nets=per_net.ngroups, n=len(g), flipped=len(fl) / len(g),
                eta_mean=fl.eta.abs().mean(), eta_lin_theory=th["eta_lin"],
                abs_f_mean=g.f_x.abs().mean(), abs_f_theory=th["abs_f"],
                f_sq_mean=(g.f_x ** 2).mean(), f_sq_se=se(g.f_x ** 2), f_sq_theory=th["f_sq"],
                grad_norm_mean=g.grad_norm.mean(), grad_sq_mean=(g.grad_norm ** 2).mean(),
                grad_sq_se=se(g.grad_norm ** 2), grad_sq_theory=th["grad_sq"],
                grad_norm_min=g.grad_norm.min(),
                rel_mean=fl.rel_pert.mean(), rel_q=fl.rel_pert.quantile(1 - delta),
                lin_rel_mean=g.lin_rel_pert.mean(), lin_rel_se=se(g.lin_rel_pert),
                lin_rel_theory=th["lin_rel"],
                lin_rel_q_theory=uniform_coordinate_quantile(int(d), 1 - delta),
                nonlin_ratio=(fl.rel_pert / fl.lin_rel_pert).median()))
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_multilayer import lemma22_figure, single_step_family_figure

        t = self.summary_table(df, p)
        delta = p.get("delta", 0.1)
        out = []
        for fam, g in t.groupby("family", sort=True):
            path = single_step_family_figure(g, folder / f"single_step_{fam}.png", delta=delta,
                                             title=f"family: {fam}")
            out.append((f"{fam} widths: smallest flipping |eta|, ||grad f||, |f(x)| and "
                        f"||eta grad f|| / ||x|| vs d, one colour per depth; dashed: NNGP / "
                        f"linear-limit theory, dotted: c3 sqrt(log(1/delta)/d) with the linear "
                        f"constant, delta = {delta:g} (Theorem 1.1, Lemma 2.2)", path))
        path = lemma22_figure(t, folder / "lemma22_depth.png")
        out.append(("Lemma 2.2 vs depth at the largest d: sqrt(mean f^2) and sqrt(mean "
                    "||grad f||^2) per family against the NNGP value 2^(-L/2), and the smallest "
                    "||grad f|| seen against the lemma's bound 2^-(L+1)", path))
        return out

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        claims: list[Claim] = []
        delta = p.get("delta", 0.1)
        large_d = dict(scale="large d at fixed depth (Theorem 1.1: d_min >> polylog; the paper "
                       "profile's d and widths)",
                       reached=self.reaches_paper(p, "d", "width", "bottleneck_width"))
        # the cells' z bound and its criterion, shared by the three claims on means
        z_test = dict(bound=bonferroni_t(len(t), int(t.nets.min())), dof=int(t.nets.min()) - 1,
                      n=len(t), criterion="every cell within {bound:.2f} standard errors (from "
                      "per-network means; the Student-t quantile with {dof} degrees of freedom, "
                      "Bonferroni over {n} cells at 5%)")
        for col, name in (("f_sq", "E f(x)^2"), ("grad_sq", "E ||grad f(x)||^2")):
            z = ((t[f"{col}_mean"] - t[f"{col}_theory"]) / t[f"{col}_se"]).abs()
            worst = t.loc[z.idxmax()]
            claims.append(C.at_most(
                f"Lemma 2.2 / NNGP recursion: {name} = 2^-L at ||x|| = sqrt(d), for every "
                "family and width", float(z.max()),
                measured="largest deviation {value:.2f} standard errors over {n} cells (worst: "
                "{w.family}, L = {w.depth}, d = {w.d}: {mean:.4g} vs {theory:.4g})",
                scale=ANY_SIZE + ": the recursion is exact at every width", w=worst,
                mean=worst[f"{col}_mean"], theory=worst[f"{col}_theory"], **z_test))
        ok_cells = t[t.d_min >= 16]
        if len(ok_cells):
            frac = []
            for r in ok_cells.itertuples():
                g = df[(df.family == r.family) & (df.depth == r.depth) & (df.d == r.d)]
                frac.append(float((g.grad_norm >= 2.0 ** -(r.depth + 1)).mean()))
            claims.append(C.at_least(
                "Lemma 2.2: ||grad f(x)|| >= 2^-(L+1) with probability >= 1 - delta", min(frac),
                1 - delta, "fraction of samples above the bound: min {value:.2%} over {n} cells "
                "with d_min >= 16",
                "at least 1 - delta = {bound:.0%} of the samples of every such cell", **large_d,
                n=len(frac)))
        z = ((t.lin_rel_mean - t.lin_rel_theory) / t.lin_rel_se).abs()
        claims.append(C.at_most(
            "Lemma 2.1-2.2: grad f(x) has a rotation-invariant law and f(x) = grad f(x) . x, so "
            "|f| / (||grad f|| ||x||) ~ |u_1|, u uniform on S^{d-1} (mean ~ sqrt(2/(pi d)))",
            float(z.max()), measured="largest deviation of a cell mean from "
            "Gamma(d/2)/(sqrt(pi)Gamma((d+1)/2)): {value:.2f} standard errors ({w.family}, "
            "L = {w.depth}, d = {w.d})",
            scale=ANY_SIZE + ": the law of grad f is rotation invariant at every width",
            w=t.loc[z.idxmax()], **z_test))
        flipped = t[t.d_min >= 16]
        if len(flipped):
            claims.append(C.at_least(
                "Theorem 1.1: a single gradient step flips sign f (d_min >= 16 cells)",
                flipped.flipped.min(), 1 - delta, "fraction flipped with ||eta grad f|| <= "
                "{max_rel:g} ||x||: min {value:.2%} ({w.family}, L = {w.depth}, d = {w.d}); mean "
                "{mean:.2%}", "at least 1 - delta = {bound:.0%} of every cell", **large_d,
                max_rel=p["max_rel"], w=flipped.loc[flipped.flipped.idxmin()],
                mean=flipped.flipped.mean()))
        slopes = []
        for (fam, depth), g in t.groupby(["family", "depth"]):
            g = g[g.rel_mean.notna() & (g.rel_mean > 0)]
            if g.d.nunique() >= 3:
                slopes.append((fam, depth, loglog_slope(g.d, g.rel_mean)))
        if slopes:
            claims.append(C.every(
                "Theorem 1.1: ||eta grad f(x)|| / ||x|| <= c3 sqrt(log(1/delta)/d), i.e. the "
                "relative perturbation decays like d^-1/2 at fixed depth",
                [abs(s + 0.5) <= 0.15 for *_, s in slopes], "fitted exponents of the mean vs d: "
                "{text}", "every (family, depth) exponent within 0.15 of -0.5", **large_d,
                text="; ".join(f"{f} L={L}: {s:.2f}" for f, L, s in slopes)))
            top = t[t.d == t.d.max()]
            top = top.assign(ratio=top.rel_q / top.lin_rel_q_theory)
            claims.append(C.trend(
                f"Theorem 1.1 with the linear-limit constant: the (1 - delta)-quantile of "
                f"||eta grad f|| / ||x|| is at most that of a random linear function "
                f"(delta = {delta:g}), at the largest d = {int(t.d.max())}",
                (top.ratio <= 1.25).all(), "measured / linear quantile: {text}",
                "ratio <= 1.25 in every cell (the proof's (1 - o(1)) local linearity; 1.25 "
                "allows the sampling error of a quantile of ~100 draws)", **large_d,
                numbers=[top.ratio.max()],   # NaN (undecided) only where every ratio is
                text=C.listing(top, "{family} L={depth}: {ratio:.2f}", "; ")))
            claims.append(C.trend(
                "Section 2 (local linearity, eq. (1)): along the gradient ray the flip happens "
                "where the linearisation says, eta ||grad f||^2 / |f| -> 1",
                ((top.nonlin_ratio - 1).abs() <= 0.1).all(), "median ratio at the largest d: "
                "{text}", "every median within 10% of 1", **large_d,
                numbers=[top.nonlin_ratio.max()],   # NaN only where every median is
                text=C.listing(top, "{family} L={depth}: {nonlin_ratio:.3f}", "; ")))
        return claims
