"""``lazy-adversarial-training``: "Adversarial Robustness is at Odds with Lazy Training"
(NeurIPS 2022), Section 5.2, Figure 4 and Appendix A, Algorithm 1.

Two-layer ReLU nets (Definition 2.1, no bias) on MNIST 0 vs 1 with ||x|| = 1, trained by
projected adversarial training (PGD-l2 examples of budget R, SGD, projection of every w_s onto
B_2(w_s0, V)); the robust test accuracy under PGD-l2 with the same budget R is measured.

* part ``budget`` (Figure 4, left): m = 1000, V = 10 / sqrt(m), robust accuracy against R and d;
  the theory predicts a drop around R ~ 1/sqrt(d) (Theorem 3.1, Corollary 3.2);
* part ``width`` (Figure 4, right): d = 784, R = 0.2, robust accuracy against V and m; the
  lazy-regime analysis allows deviations up to V ~ 1/sqrt(m).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from randadv.attacks.pgd import pgd_l2
from randadv.experiments._lazy_common import (
    mnist01,
    mnist_training,
    model_cached,
    sample_counts,
    train_key,
    trained_model,
    training_fields,
    validate_dims,
)
from randadv.experiments._papers import WANG_2022
from randadv.framework import ANY_SIZE, Claim, Experiment, Param, UnitContext
from randadv.framework import claims as C
from randadv.nets.seeding import derive_seed
from randadv.stats import level_crossing, loglog_slope
from randadv.train.adversarial import AdversarialTrainConfig, train_adversarial
from randadv.train.lazy import LazyTwoLayerNet

PAPER_D = [s * s for s in range(5, 29)]


def crossing_claim(statement: str, name: str, size: str, levels: dict[int, float], *,
                   scale: str, reached: bool) -> Claim:
    """Figure 4's threshold ~ c / sqrt(size): the crossings ``levels`` (size -> where the robust
    accuracy crosses 50%, NaN where it does not) fitted against the size, log-log slope within
    0.2 of -1/2; undecided with fewer than two crossings. ``name`` names the crossing in the
    measured text, its last word in the criterion ("budget R50")."""
    known = {k: v for k, v in levels.items() if math.isfinite(v)}
    slope = loglog_slope(list(known), list(known.values())) if len(known) >= 2 else math.nan
    return C.within(
        statement, slope, -0.5, 0.2, f"{name} where robust accuracy crosses 50%: {{levels}}; "
        f"fitted exponent of {name.split()[-1]} vs {size}: {{value:.3f}}",
        f"log-log slope of {name.split()[-1]} against {size} within 0.2 of -0.5 (needs >= 2 "
        "crossings)", scale=scale, reached=reached, levels=", ".join(
            f"{size}={k}: {v:.3g} (x sqrt({size}) = {v * math.sqrt(k):.3g})"
            for k, v in levels.items()))


PROJECTION_WORK = 1000
"""The exact projection onto B_2(x, R) cap [0, 1]^d of a PGD step (50 bisection halvings over
the d entries, memory-bound) in hidden-unit equivalents of the step's 3 d m multiply-adds:
measured at d = 784, a pass over the training set took 161 s at m = 100 and 1000 and 910 s at
m = 1e4 (one core), and this project's Figure 4 right run 1.74x as long a unit at m = 1000 as
at m = 100 (same epochs); (1e4 + M) / (1e3 + M) = 910 / 161 gives M = 935,
(1e3 + M) / (1e2 + M) = 1.74 gives M = 1116."""


class LazyAdversarialTraining(Experiment):
    name = "lazy-adversarial-training"
    paper = WANG_2022
    figures_reproduced = "Section 5.2 (Figure 4) and Appendix A (Algorithm 1)"
    summary = ("projected adversarial training inside the lazy ball on MNIST 0 vs 1; robust "
               "test accuracy under PGD-l2 vs ||delta|| and d, and vs V and m")
    parameters = dict(
        **mnist_training(0.01, 6, "most epochs of adversarial training", n_train=2000,
                         n_test=200),
        parts=Param(["budget", "width"],
                    "parts of Figure 4 to run: budget (left: R and d), width (right: V and m)",
                    choices=("budget", "width"), unique=True),
        d=Param([49, 196, 784],
                "input dimensions (downsampled MNIST, d = side^2) of the budget part"),
        radius=Param([0.05, 0.2, 0.8], "l2 attack radii of the budget part", gt=0),
        m_budget=Param(1000, "width m of the budget part", min=1),
        v_budget_c=Param(10.0, "budget part's v = v_budget_c / sqrt(m_budget)", gt=0),
        d_width=Param(784, "input dimension of the width part"),
        radius_width=Param(0.2, "l2 attack radius of the width part", gt=0),
        m=Param([100, 1000], "widths m of the width part", min=1),
        v=Param([0.05, 0.2, 0.8],
                "weight budgets v (the projection radius of Algorithm 1) of the width part", gt=0),
        pgd_steps_train=Param(10, "PGD steps of the training-time attack (Algorithm 1)", min=1),
        pgd_steps_test=Param(20, "PGD steps of the test-time attack", min=1),
        pgd_restarts=Param(0, "random restarts of the test-time PGD", min=0),
        patience=Param(2,
                       "epochs without improvement of the robust accuracy before stopping (best "
                       "weights restored)", min=1),
    )
    profiles = {
        "smoke": dict(d=[25, 100], radius=[0.1, 0.8], m_budget=100, d_width=100, m=[100],
                      v=[0.05, 1.0], pgd_steps_train=5, pgd_steps_test=10, max_epochs=3,
                      n_train=300, n_test=100),
        "quick": dict(),
        "paper": dict(d=PAPER_D, radius=[0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0],
                      m=[100, 1000, 10000], v=[0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0], seeds=5,
                      pgd_steps_train=100, pgd_steps_test=100, max_epochs=20, n_train=0, n_test=0),
    }
    record = TypedDict("Record", {"part": str, "d": int, "m": int, "v": float, "radius": float,
                                  "seed": int, "index": int, "y": int, "f_x": float,
                                  "correct": bool, "f_adv": float, "robust": bool,
                                  "adv_norm": float, "clean_test_acc": float,
                                  "robust_train_acc": float, "epochs": float, "stop_reason": str,
                                  "max_dev_ratio": float, "train_seconds": float})

    def validate(self, p: dict[str, Any]) -> None:
        validate_dims(p["d"] + [p["d_width"]])

    def cells(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        v_a = p["v_budget_c"] / math.sqrt(p["m_budget"])
        parts = p.get("parts", ["budget", "width"])
        out = []
        if "budget" in parts:
            out += [dict(part="budget", d=int(d), m=int(p["m_budget"]), v=float(v_a),
                         radius=float(r)) for d in p["d"] for r in p["radius"]]
        if "width" in parts:
            out += [dict(part="width", d=int(p["d_width"]), m=int(m), v=float(v),
                         radius=float(p["radius_width"])) for m in p["m"] for v in p["v"]]
        return out

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(c, seed=s) for c in self.cells(p) for s in range(p["seeds"])]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Multiply-adds: PGD over the training set each epoch + SGD (the part a cached model
        saves, :meth:`shared_work_cached`) + the test attack; a PGD step of one image costs
        3 d (m + ``PROJECTION_WORK``)."""
        from randadv.framework.unit_cost import UnitCost

        n_train, n_test = sample_counts(p)
        per_pass = 3.0 * unit["d"] * (unit["m"] + PROJECTION_WORK)
        train = per_pass * (p["max_epochs"] + 1) * n_train * (p["pgd_steps_train"] + 1)
        attack = per_pass * n_test * p["pgd_steps_test"] * (1 + p["pgd_restarts"])
        return UnitCost(attack, train, key=tuple(sorted(unit.items())))

    def shared_work_cached(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                           ctx: UnitContext) -> bool:
        return model_cached(p, ctx, self.train_config(unit, p, ctx.seed))

    def train_config(self, unit: Mapping[str, Any], p: Mapping[str, Any], seed: int) -> dict:
        return train_key("lazy-adversarial", p, seed, unit["seed"], "lazy-net", "adv-order",
                         d=unit["d"], m=unit["m"], v=unit["v"], radius=unit["radius"],
                         pgd_steps=p["pgd_steps_train"], patience=p["patience"])

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        tc = self.train_config(unit, p, ctx.seed)
        cfg = AdversarialTrainConfig(radius=unit["radius"], v=unit["v"], lr=p["lr"],
                                     batch_size=p["batch_size"], pgd_steps=p["pgd_steps_train"],
                                     max_epochs=p["max_epochs"], patience=p["patience"],
                                     seed=tc["order_seed"])
        net, res = trained_model(p, ctx, tc, unit["d"], True,
                                 lambda: LazyTwoLayerNet(unit["d"], unit["m"], tc["net_seed"],
                                                         bias=False, device=ctx.device),
                                 lambda net, x, y, xt, yt: train_adversarial(net, x, y, cfg, xt,
                                                                             yt))
        xt, yt = mnist01(p, "test", unit["d"], True, ctx.seed, p["n_test"])
        net.eval()
        x_dev, y_dev = xt.to(ctx.device), yt.to(ctx.device)
        r = pgd_l2(net, x_dev, y_dev, unit["radius"], steps=p["pgd_steps_test"], keep="best")
        robust, f_adv, norm = r.robust.cpu(), r.f_adv.cpu(), r.norm.cpu()
        for k in range(p["pgd_restarts"]):
            rk = pgd_l2(net, x_dev, y_dev, unit["radius"], steps=p["pgd_steps_test"],
                        keep="best", random_start=True,
                        seed=derive_seed(ctx.seed, "pgd-restart", unit["seed"], k))
            worse = (~rk.robust.cpu()) & robust
            robust = robust & rk.robust.cpu()
            f_adv[worse], norm[worse] = rk.f_adv.cpu()[worse], rk.norm.cpu()[worse]
        f_x = r.f_x.cpu()
        rob_train = max((h["robust_train_acc"] for h in res["history"]), default=float("nan"))
        base = dict(part=unit["part"], d=unit["d"], m=unit["m"], v=unit["v"],
                    radius=unit["radius"], seed=unit["seed"],
                    clean_test_acc=float(res["test_acc"]), robust_train_acc=float(rob_train),
                    **training_fields(res, "epochs", "stop_reason", "max_dev_ratio",
                                      "train_seconds"))
        return [dict(base, index=i, y=int(yt[i]), f_x=float(f_x[i]),
                     correct=bool(f_x[i] * yt[i] > 0), f_adv=float(f_adv[i]),
                     robust=bool(robust[i]), adv_norm=float(norm[i]))
                for i in range(len(yt))]

    # ------------------------------------------------------------------ results
    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        per_model = df.groupby(["part", "d", "m", "v", "radius", "seed"], sort=True).agg(
            robust_acc=("robust", "mean"), clean_acc=("correct", "mean"),
            robust_train_acc=("robust_train_acc", "first"), epochs=("epochs", "first"),
            max_dev_ratio=("max_dev_ratio", "first"),
            train_seconds=("train_seconds", "first")).reset_index()
        t = per_model.groupby(["part", "d", "m", "v", "radius"], sort=True).agg(
            models=("seed", "count"), robust_acc=("robust_acc", "mean"),
            robust_acc_std=("robust_acc", "std"), clean_acc=("clean_acc", "mean"),
            robust_train_acc=("robust_train_acc", "mean"), epochs=("epochs", "mean"),
            max_dev_ratio=("max_dev_ratio", "max"),
            train_seconds=("train_seconds", "mean")).reset_index()
        t["radius_sqrt_d"] = t.radius * np.sqrt(t.d)
        t["v_sqrt_m"] = t.v * np.sqrt(t.m)
        return t

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_lazy import robust_accuracy_figure

        t = self.summary_table(df, p)
        out = []
        a = t[t.part == "budget"]
        if len(a):
            path = folder / "robust_acc_vs_radius.png"
            m, v = int(a.m.iloc[0]), float(a.v.iloc[0])
            robust_accuracy_figure(a, path, "radius", "d", "perturbation budget ||delta|| = R",
                                   "d", "threshold 1/sqrt(d)",
                                   title=f"m = {m}, V = {v:.3g} (Figure 4, left)")
            out.append((f"Robust test accuracy (PGD-l2) against the budget ||delta||, one curve "
                        f"per d; dotted: 1/sqrt(d); m = {m}, V = {v:.3g} (Figure 4, left)",
                        path))
        b = t[t.part == "width"]
        if len(b):
            path = folder / "robust_acc_vs_v.png"
            d, r = int(b.d.iloc[0]), float(b.radius.iloc[0])
            robust_accuracy_figure(b, path, "v", "m", "lazy-ball radius V", "m",
                                   "threshold 1/sqrt(m)",
                                   title=f"d = {d}, ||delta|| = {r:g} (Figure 4, right)")
            out.append((f"Robust test accuracy (PGD-l2) against the radius V of the lazy ball, "
                        f"one curve per m; dotted: 1/sqrt(m); d = {d}, ||delta|| = {r:g} "
                        f"(Figure 4, right)", path))
        return out

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        claims = [C.at_most(
            "Algorithm 1: the projection keeps every w_s in B_2(w_s0, V)", t.max_dev_ratio.max(),
            1 + 1e-5, "max ||w_s - w_s0|| / V over models: {value:.6f}",
            "every ratio <= 1 (float tolerance 1e-5)", scale=ANY_SIZE)]
        a = t[t.part == "budget"]
        if a.radius.nunique() >= 2:
            claims.append(crossing_claim(
                "Section 5.2 / Figure 4 left: robust accuracy drops sharply around a budget "
                "||delta|| ~ c/sqrt(d) (Theorem 3.1)", "budget R50", "d",
                {d: level_crossing(g.radius.to_numpy(), g.robust_acc.to_numpy())
                 for d, g in a.groupby("d")},
                scale="Figure 4 left: d = 25 ... 784, the paper's radii, 5 seeds",
                reached=self.reaches_paper(p, "d", "seeds", "pgd_steps_test")))
            big = a[a.radius_sqrt_d >= 10]
            if len(big):
                claims.append(C.at_most(
                    "Section 5.2: \"for perturbation sizes slightly larger than the threshold, "
                    "the robust accuracy drops to 0\"", big.robust_acc.max(), 0.05,
                    "max robust accuracy over cells with R sqrt(d) >= 10: {value:.3f} ({n} cells)",
                    "<= 5% in every such cell", scale="Figure 4 left: radii above the threshold, "
                    "PGD with the paper's steps", reached=self.reaches_paper(p, "pgd_steps_test"),
                    n=len(big)))
        b = t[t.part == "width"]
        if b.v.nunique() >= 2:
            right = dict(scale="Figure 4 right: m up to 1e4, the paper's V grid",
                         reached=self.reaches_paper(p, "m", "v"))
            curves = {m: g.sort_values("v") for m, g in b.groupby("m")}
            claims.append(C.every(
                "Section 5.2 / Figure 4 right: robust accuracy increases as the weights may "
                "deviate more from initialisation (larger V)",
                [np.all(np.diff(g.robust_acc.to_numpy()) >= -0.05) for g in curves.values()],
                "{text}", "robust accuracy non-decreasing in V for every m (tolerance 0.05)",
                **right, text="; ".join(f"m={m}: " + C.listing(g, "V={v:g}: {robust_acc:.2f}")
                                        for m, g in curves.items())))
            claims.append(crossing_claim(
                "Section 5.2: a phase transition in robust accuracy at V ~ c/sqrt(m)", "V50",
                "m", {m: level_crossing(g.v.to_numpy(), g.robust_acc.to_numpy(), decreasing=False)
                      for m, g in curves.items()}, **right))
        clean = t.clean_acc
        claims.append(C.at_least(
            "Section 5.2: \"the projection step ... does not hurt the test accuracy of the "
            "trained models\"", clean.min(), 0.99,
            "clean test accuracy over cells: mean {mean:.4f}, min {value:.4f}",
            "every cell's clean test accuracy >= 99%",
            scale="the paper's training (full MNIST 0-vs-1, up to 20 epochs)",
            reached=self.reaches_paper(p, "max_epochs") and int(p.get("n_train", 0)) == 0,
            mean=clean.mean()))
        return claims
