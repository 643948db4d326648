"""``two-layer-single-step``: Bubeck, Cherapanamjeri, Gidel, Tachet des Combes (NeurIPS 2021),
Section 4 and Appendix A (Figures 1-7).

Per grid cell (d, k, depth L, activation): N random networks x M inputs uniform on sqrt(d) S^{d-1};
for each input the smallest step eta along grad f(x) that flips sign f (|eta| <= 20), the
gradient norm and the perturbation norm |eta| ||grad f(x)||.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from randadv.arch import MLPSpec
from randadv.attacks import smallest_flip_step
from randadv.experiments._papers import BUBECK_2021
from randadv.experiments._single_step_common import (
    flip_fields,
    mean_std,
    relative_perturbation_claim,
)
from randadv.framework import ANY_SIZE, Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets import ACTIVATIONS, sphere_points
from randadv.nets.seeding import derive_seed
from randadv.stats import bonferroni_t, mean_se

MAX_WEIGHT_ENTRIES = 10**12   # beyond this a cell is refused up front (~4 TB of float32 weights)


# the widest deep (L > 1) cells of the paper's protocol (its footnote 1: k < 10^6 for L > 1; our
# paper profile's deep_max_k): below it the deep-network claims are "not reached at this scale"
DEEP_PAPER_K = 10_000


class TwoLayerSingleStep(Experiment):
    name = "two-layer-single-step"
    paper = BUBECK_2021
    figures_reproduced = "Section 4, Figures 1-2; Appendix A, Figures 3-7"
    summary = ("smallest flipping step eta, ||grad f||, fraction flipped with |eta| < 20, "
               "over d, k and depth L = 1..6")
    parameters = dict(
        d=Param([10, 50, 100, 500, 1000], "input dimensions d", min=1),
        k=Param([10, 100, 1000, 10000], "hidden widths k", min=1),
        depth=Param([1, 2, 3, 4, 5, 6], "hidden layers L (1: the two-layer net of eq. (1))",
                    min=1),
        activation=Param(["relu", "tanh"], "activations psi (relu, tanh, ...)",
                         choices=tuple(ACTIVATIONS)),
        deep_max_k=Param(100, "largest width k of the cells with depth > 1"),
        nets=Param(10, min=1),
        inputs=Param(50, "inputs per network, uniform on the sphere of radius sqrt(d)", min=1),
        max_eta=Param(20.0, gt=0),
        hidden_gain=Param(1.0, "variance gain of the hidden layers of deep nets (2: He scaling)",
                          gt=0),
        output=Param("rademacher", choices=("rademacher", "gaussian")),
    )
    profiles = {
        "smoke": dict(d=[20, 100], k=[20, 100], depth=[1, 2], activation=["relu"], nets=5,
                      inputs=10),
        "quick": dict(),
        "paper": dict(d=[10, 50, 100, 500, 1000, 5000],
                      k=[10, 50, 100, 1000, 10000, 100000, 1000000], activation=["relu"],
                      deep_max_k=10000, nets=100, inputs=100),
    }
    record = TypedDict("Record", {"d": int, "k": int, "depth": int, "activation": str, "net": int,
                                  "input": int, "f_x": float, "grad_norm": float, "eta": float,
                                  "eta_boundary": float, "flipped": bool,
                                  "perturbation_norm": float, "x_norm": float})

    def validate(self, p: dict[str, Any]) -> None:
        for cell in self.cells(p):
            n = cell["d"] * cell["k"] + (cell["depth"] - 1) * cell["k"] ** 2
            require(n <= MAX_WEIGHT_ENTRIES,
                    f"cell {cell} needs {n:.3g} weights ({4 * n / 1e9:.3g} GB in float32, "
                    f"streamed block by block): over the {MAX_WEIGHT_ENTRIES:.0e} limit")

    def cells(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        for depth, act, d, k in itertools.product(p["depth"], p["activation"], p["d"], p["k"]):
            if depth > 1 and k > p["deep_max_k"]:
                continue
            out.append(dict(depth=depth, activation=act, d=d, k=k))
        return out

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(cell, net=n) for cell in self.cells(p) for n in range(p["nets"])]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Units of ~10 ns: a fixed ~10 ms per network, drawing the d k first-layer weights
        (~25 ns each), and per input a search along the step whose work grows with k (~30 ns
        per hidden unit for ReLU's kink sweep, ~500 ns for a smooth psi's line search), a deep
        layer's pass (~130 us of overhead plus ~1 ns per weight of its k^2) and the deep
        sweep's regions: layer l carries the ~(l - 1) k breakpoints of the layers below, each
        ~0.3 us plus ~0.65 ps k^2. Fitted on the quick grid's unit times (1400 units, k <= 100
        deep) and three paper units timed alone (ReLU, d = 1000, 100 inputs, one thread):
        L = 2, k = 1000: 0.2 s; L = 6, k = 1000: 1.5 s; L = 2, k = 10^4: 69 s. The cost
        group's factor absorbs the rest of the activation's difference."""
        d, k, depth = unit["d"], unit["k"], unit["depth"]
        per_unit = 3.0 if ACTIVATIONS[unit["activation"]].piecewise_linear else 50.0
        layers = (depth - 1) * (1.3e4 + 0.105 * k * k)
        sweep = depth * (depth - 1) / 2 * k * (30.0 + 6.5e-5 * k * k)
        return 1e6 + 2.5 * d * k + p["inputs"] * (per_unit * k + layers + sweep)

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        d, k, depth, act, n = unit["d"], unit["k"], unit["depth"], unit["activation"], unit["net"]
        net = self.spec(unit, p).build(derive_seed(ctx.seed, "net", n), device=ctx.device)
        x = sphere_points(p["inputs"], d, math.sqrt(d), ctx.seed, "inputs", n, d).to(ctx.device)
        with warnings.catch_warnings():
            # all-dead ReLU units give f = 0, grad = 0: recorded as not flipped (eta NaN)
            warnings.simplefilter("ignore", RuntimeWarning)
            r = smallest_flip_step(net, x, max_eta=p["max_eta"]).to("cpu")
        x_norm = x.norm(dim=1).cpu()
        return [dict(d=d, k=k, depth=depth, activation=act, net=n, input=i,
                     x_norm=float(x_norm[i]), **flip_fields(r, i)) for i in range(len(r))]

    # ------------------------------------------------------------------ results
    @staticmethod
    def spec(cell: Mapping[str, Any], p: Mapping[str, Any]) -> MLPSpec:
        """The network of a grid cell (d, k, depth, activation): ``DeepRandomNet``'s."""
        return MLPSpec.deep(int(cell["d"]), int(cell["k"]), int(cell["depth"]),
                            cell["activation"], output=p.get("output", "rademacher"),
                            hidden_gain=p.get("hidden_gain", 1.0))

    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        rows = []
        for (depth, act, d, k), g in df.groupby(["depth", "activation", "d", "k"], sort=True):
            fl = g[g.flipped]
            th = self.spec(dict(d=d, k=k, depth=depth, activation=act),
                           p).single_step_prediction()
            rows.append(dict(
                depth=depth, activation=act, d=d, k=k, n=len(g),
                flipped=fl.shape[0] / len(g),
                **mean_std("eta", fl.eta.abs()), eta_theory=th.eta_mean,
                **mean_std("grad_norm", g.grad_norm), grad_norm_theory=th.grad_norm,
                f_sq_mean=(g.f_x ** 2).mean(), f_sq_theory=th.f_var,
                pert_over_x=(fl.perturbation_norm / fl.x_norm).mean()))
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures import eta_and_grad_figure, flip_fraction_figure

        table = self.summary_table(df, p)
        out = []
        for (act, depth), t in table.groupby(["activation", "depth"], sort=True):
            fig_no = {1: "Figure 1"}.get(depth, f"Figure {depth + 1}")
            path = folder / f"eta_grad_{act}_L{depth}.png"
            eta_and_grad_figure(t, path, title=f"{act}, L = {depth} ({fig_no} of the paper)",
                                max_eta=p["max_eta"], hidden_gain=p["hidden_gain"])
            out.append((f"Smallest flipping |eta| over flipped samples (left) and ||grad f(x)|| "
                        f"(right) vs d, {act}, L = {depth}; bands: +-1 std; dashed: "
                        f"large-width theory ({fig_no}); red: infinite-width Gaussian process "
                        f"(linearised step)", path))
        for act, t in table.groupby("activation", sort=True):
            path = folder / f"flip_fraction_{act}.png"
            flip_fraction_figure(t, path, max_eta=p["max_eta"], title=f"{act} (Figure 2)",
                                 hidden_gain=p["hidden_gain"])
            out.append((f"Fraction of inputs flipped with |eta| <= {p['max_eta']:g} over (d, k), "
                        f"per depth, {act} (Figure 2)", path))
        return out

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        claims: list[Claim] = []
        relu1 = t[(t.activation == "relu") & (t.depth == 1)]
        big = relu1[(relu1.d >= 50) & (relu1.k >= 50)]
        if len(big):
            claims.append(C.every(
                "Section 4: \"with L = 1 and values of d and k larger than 50, 100% of samples "
                "are switched\" (ReLU, |eta| < 20)", big.flipped == 1.0,
                "{mean:.2%} of {n} samples flipped over {cells} cells; lowest cell d={w.d}, "
                "k={w.k}: {w.flipped:.2%}", "every sample of every cell d, k >= 50 flipped",
                scale="L = 1, d and k > 50", mean=big.flipped.mean(), n=int(big.n.sum()),
                w=big.loc[big.flipped.idxmin()]))
        fig1 = "L = 1, large d and k (the cells with d, k >= 100 of Figure 1)"
        for act, g in t[t.depth == 1].groupby("activation"):
            g = g[(g.d >= 100) & (g.k >= 100)]
            if len(g) < 2:
                continue
            claims.append(C.at_most(
                f"Section 4 / eq. (3): ||grad f(x)|| is roughly constant in d and k, "
                f"-> sqrt(E psi'(X)^2) = {float(g.grad_norm_theory.iloc[-1]):.4f} ({act}, L = 1)",
                float((g.grad_norm_mean / g.grad_norm_theory - 1).abs().max()), 0.10,
                "cell means from {lo:.4f} to {hi:.4f} over {n} cells with d, k >= 100; largest "
                "deviation from theory {value:.1%}",
                "every cell mean within 10% of the infinite-width value", scale=fig1,
                lo=g.grad_norm_mean.min(), hi=g.grad_norm_mean.max(), n=len(g)))
            eta_lo, eta_hi = float(g.eta_mean.min()), float(g.eta_mean.max())
            claims.append(C.at_most(
                f"Section 4: the smallest eta is approximately constant in d and k "
                f"({act}, L = 1; linearised theory E|f| / E||grad f||^2 = "
                f"{float(g.eta_theory.iloc[-1]):.3f})", eta_hi / eta_lo, 1.5,
                "cell means of |eta| from {lo:.3f} to {hi:.3f} (ratio {value:.2f}) over {n} cells "
                "with d, k >= 100", "largest / smallest cell mean <= 1.5", scale=fig1,
                lo=eta_lo, hi=eta_hi, n=len(g)))
            # E f(x)^2 = E psi(X)^2 holds exactly at every d, k for ||x|| = sqrt(d); inputs of
            # one network are correlated, so the standard error comes from per-network means
            zs = []
            for _, row in g.iterrows():
                cell = df[(df.depth == 1) & (df.activation == act) & (df.d == row.d)
                          & (df.k == row.k)]
                per_net = (cell.f_x ** 2).groupby(cell.net).mean()
                if len(per_net) >= 2:
                    zs.append(abs(per_net.mean() - row.f_sq_theory) / mean_se(per_net))
            if zs:
                # family-wise false-alarm rate 1e-3 over the cells (Bonferroni, Student t)
                claims.append(C.at_most(
                    f"Section 1.2: E f(x)^2 = E psi(X)^2 = {float(g.f_sq_theory.iloc[0]):.4f} "
                    f"(f(x) ~ N(0, E psi(X)^2); {act}, L = 1)", float(max(zs)),
                    bonferroni_t(len(zs), p["nets"], alpha=1e-3),
                    "mean f(x)^2 per cell from {lo:.4f} to {hi:.4f}; largest deviation "
                    "{value:.1f} standard errors", "every cell within {bound:.1f} standard errors "
                    "of the mean over networks (Student t, {dof} dof, family-wise level 1e-3)",
                    scale=ANY_SIZE, lo=g.f_sq_mean.min(), hi=g.f_sq_mean.max(),
                    dof=p["nets"] - 1))
        relu1 = relu1[relu1.flipped > 0]
        if relu1.d.nunique() >= 3:
            claims.append(relative_perturbation_claim(
                relu1, "ReLU, L = 1", "",
                "L = 1, d -> infinity (a fit over at least two decades of d)",
                float(relu1.d.max()) >= 100 * float(relu1.d.min())))
        deep = t[(t.activation == "relu") & (t.depth > 1)]
        if len(deep):
            deep_reached = int(deep.k.max()) >= DEEP_PAPER_K
            tops = pd.DataFrame([g[(g.d == g.d.max()) & (g.k == g.k.max())].iloc[0]
                                 for _, g in deep.groupby("depth")])
            tops["flip_theory"] = [self.spec(dict(d=r.d, k=r.k, depth=r.depth, activation="relu"),
                                             p).single_step_prediction().flip_fraction(
                                                 p["max_eta"]) for r in tops.itertuples()]
            claims.append(C.every(
                "Section 4: \"for deeper networks, the same statement holds\" (ReLU, fraction "
                "flipped with |eta| < 20 at the largest d and k run)", tops.flipped >= 0.99,
                "{text}", "at least 99% flipped at the largest (d, k) of every depth; the "
                "infinite-width value is P(|f| < max_eta E||grad f||^2), f Gaussian (see Notes)",
                scale=f"L = 2..6 with k up to {DEEP_PAPER_K:g} (GPU-limited; footnote 1)",
                reached=deep_reached, text=C.listing(
                    tops, "L={depth} (d={d}, k={k}): {flipped:.1%} (infinite width: "
                    "{flip_theory:.1%})", "; ")))
            reach = []
            for depth, g in t[t.activation == "relu"].groupby("depth"):
                full = g[g.flipped >= 0.99]
                reach.append((depth, int((full.d * full.k).min()) if len(full) else None))
            sizes = [r for _, r in reach]
            known = [r for r in sizes if r is not None]
            first_none = sizes.index(None) if None in sizes else len(sizes)
            claims.append(C.trend(
                "Section 4: \"the values of d and k at which 100% switching is reached appear "
                "to grow with L\" (ReLU)",
                all(a <= b for a, b in zip(known, known[1:], strict=False))
                and all(r is None for r in sizes[first_none:]), "{text}",
                "the smallest d*k reaching 99% is non-decreasing in L (unreached counts as "
                "infinite)", scale=f"L = 1..6 with k up to {DEEP_PAPER_K:g}",
                reached=deep_reached, decided=len(reach) >= 2,  # one depth: undecided
                text="; ".join(f"L={L}: " + (f"smallest d*k with >= 99% flipped = {r:g}"
                                             if r is not None else "not reached in this grid")
                               for L, r in reach)))
        return claims
