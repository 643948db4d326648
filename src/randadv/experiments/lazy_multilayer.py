"""``lazy-multilayer``: beyond "Adversarial Robustness is at Odds with Lazy Training" (NeurIPS
2022), whose Section 6 asks whether its result holds for multi-layer networks.

Per unit: a ReLU net with L hidden layers of width m in the NTK parameterisation
(:class:`randadv.train.lazy_deep.LazyDeepNet`: first layer N(0, I_d) rows as Definition 2.1,
hidden layers NN-DEF), trained on MNIST 0 vs 1 (||x|| = 1) by SGD (logistic loss, lr 0.1)
until a raw weight row would leave the lazy ball of radius C_0 / sqrt(m); then for every test
example the exact smallest single gradient step that flips the prediction (region walk).
Questions: does one gradient step still suffice, and how does ||delta|| scale with d?
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from randadv.experiments._lazy_common import (
    exact_flip_steps,
    left_ball,
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
from randadv.experiments._single_step_common import flip_fields, mean_std
from randadv.framework import Claim, Experiment, Param, UnitContext
from randadv.framework import claims as C
from randadv.stats import loglog_slope
from randadv.train.lazy import LazyTrainConfig, train_lazy_sgd
from randadv.train.lazy_deep import LazyDeepNet

# test images attacked at a time: the region walks of all 2,115 at once need > 20 GB at
# m = 2000, L = 2
ATTACK_ROWS = 128


class LazyMultilayer(Experiment):
    name = "lazy-multilayer"
    paper = f"beyond {WANG_2022} (Section 6, open question)"
    figures_reproduced = "Figures 5-6 (normalised data) extended to L = 1..4 hidden layers"
    summary = ("deep ReLU nets (NTK parameterisation) trained in the lazy regime on MNIST 0 vs 1:"
               " smallest single flipping gradient step, ||grad f||, ||delta|| vs d and depth")
    parameters = dict(
        **mnist_training(0.1, 3, "epochs of lazy SGD", n_train=0, n_test=200),
        d=Param([25, 100, 196, 400, 784], "input dimensions (downsampled MNIST, d = side^2)"),
        depth=Param([1, 2, 3, 4], "hidden layers L", min=1),
        m=Param(500, "width of the hidden layers", min=1),
        c0=Param(10.0, "initial scale C0 of the lazy (NTK) parameterisation", gt=0),
        max_eta=Param(50.0, gt=0),
    )
    profiles = {
        "smoke": dict(d=[25, 100], depth=[1, 2], m=100, max_epochs=20, n_train=1000, n_test=50),
        "quick": dict(),
        "paper": dict(d=[25, 49, 100, 196, 400, 625, 784], m=2000, seeds=5, max_epochs=20,
                      n_test=0),
    }
    record = TypedDict("Record", {"depth": int, "d": int, "m": int, "c0": float, "seed": int,
                                  "index": int, "y": int, "f_x": float, "grad_norm": float,
                                  "eta": float, "eta_boundary": float, "flipped": bool,
                                  "perturbation_norm": float, "test_acc": float, "steps": int,
                                  "stop_reason": str, "max_dev_ratio": float})

    def validate(self, p: dict[str, Any]) -> None:
        validate_dims(p["d"])

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(depth=int(L), d=int(d), seed=s)
                for L, d, s in itertools.product(p["depth"], p["d"], range(p["seeds"]))]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Multiply-adds: SGD (~3 (d m + (L - 1) m^2) per example and epoch) and the exact
        attack: a ray crosses ~L m linear regions, each carried through L layers of m^2, i.e.
        ~L^2 m^3 per test input, times 30 (fitted with the SGD term on the quick grid, where
        the time grows with depth and hardly with d). The training is the part a cached model
        saves (:meth:`shared_work_cached`)."""
        from randadv.framework.unit_cost import UnitCost

        m, L, d = p["m"], unit["depth"], unit["d"]
        n_train, n_test = sample_counts(p)
        train = 3.0 * (d * m + (L - 1) * m * m) * n_train * p["max_epochs"]
        return UnitCost(30.0 * L * L * m ** 3 * n_test, train, key=(d, L, unit["seed"]))

    def train_config(self, unit: Mapping[str, Any], p: Mapping[str, Any], seed: int) -> dict:
        """Everything that determines the unit's trained model (the model cache key)."""
        return train_key("lazy-multilayer", p, seed, unit["seed"], "lazy-deep-net",
                         "lazy-order", d=unit["d"], depth=unit["depth"], m=p["m"], c0=p["c0"])

    def shared_work_cached(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                           ctx: UnitContext) -> bool:
        return model_cached(p, ctx, self.train_config(unit, p, ctx.seed))

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        d, L = unit["d"], unit["depth"]
        tc = self.train_config(unit, p, ctx.seed)
        cfg = LazyTrainConfig(c0=p["c0"], lr=p["lr"], batch_size=p["batch_size"],
                              max_epochs=p["max_epochs"], seed=tc["order_seed"])
        net, res = trained_model(p, ctx, tc, d, True,
                                 lambda: LazyDeepNet(d, p["m"], L, tc["net_seed"],
                                                     device=ctx.device),
                                 lambda net, x, y, xt, yt: train_lazy_sgd(net, x, y, cfg, xt, yt))
        xt, yt = mnist01(p, "test", d, True, ctx.seed, p["n_test"])
        r = exact_flip_steps(net, xt, ctx.device, p["max_eta"], ATTACK_ROWS)
        base = dict(depth=L, d=d, m=p["m"], c0=p["c0"], seed=unit["seed"], **training_fields(
            res, "test_acc", "steps", "stop_reason", "max_dev_ratio"))
        return [dict(base, index=i, y=int(yt[i]), **flip_fields(r, i)) for i in range(len(yt))]

    # ------------------------------------------------------------------ results
    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        rows = []
        for (L, d), g in df.groupby(["depth", "d"], sort=True):
            fl = g[g.flipped]
            models = g.groupby("seed").first()
            rows.append(dict(
                depth=L, d=d, n=len(g), test_error=1 - models.test_acc.mean(),
                left_ball=left_ball(models), flipped=len(fl) / len(g),
                **mean_std("delta", fl.perturbation_norm), **mean_std("grad_norm", g.grad_norm),
                **mean_std("eta", fl.eta.abs()), abs_f_mean=g.f_x.abs().mean()))
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_lazy import rates_figure

        t = self.summary_table(df, p)
        if t.d.nunique() < 2:
            return []
        path = folder / "rates_by_depth.png"
        rates_figure(t, path, "depth", "L", title=f"||x|| = 1, m = {p['m']}, C0 = "
                                                   f"{p['c0']:g}: depth L = 1..{t.depth.max()}")
        return [("Smallest ||delta|| (left), ||grad f(x)|| (middle), smallest |eta| (right) vs "
                 "d, one curve per number of hidden layers L; dashed: the two-layer theory's "
                 "rates d^-1/2, d^1/2, d^-1", path)]

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        per_depth = df.groupby("depth").flipped.mean()
        wide = dict(scale="d over 25 ... 784 at width m >> d (the paper profile's m)",
                    reached=self.reaches_paper(p, "m", "d"))
        claims = [C.every(
            "Open question (Section 6): one gradient step still flips every prediction of a "
            "lazily trained multi-layer net", per_depth >= 0.99,
            "{fractions} flipped with |eta| <= {max_eta:g}", ">= 99% flipped at every depth",
            scale="beyond the paper: lazy nets of width m >> d (the paper profile's m)",
            reached=wide["reached"], max_eta=p["max_eta"],
            fractions=", ".join(f"L={L}: {v:.2%}" for L, v in per_depth.items()))]
        if t.d.nunique() >= 3:
            for col, theory, label in (("delta_mean", -0.5, "||delta||"),
                                       ("grad_norm_mean", 0.5, "||grad f||")):
                slopes = {L: loglog_slope(g.d, g[col]) for L, g in t.groupby("depth")}
                claims.append(C.every(
                    f"Extension of Theorem 3.1: {label} scales like d^{theory:g} at every depth "
                    "(||x|| = 1)", [abs(s - theory) <= 0.2 for s in slopes.values()],
                    "fitted exponents: {text}", "every exponent within 0.2 of {theory:g}",
                    **wide, theory=theory,
                    text=", ".join(f"L={L}: {s:.3f}" for L, s in slopes.items())))
        models = df.groupby(["depth", "d", "seed"]).first()
        claims.append(C.every(
            "The trained nets generalise (as the paper's two-layer nets: test error < 1%)",
            models.test_acc > 0.99, "test error: mean {mean:.2%}, max {max:.2%} over {cells} "
            "models", "every model's test error < 1%",
            scale="full MNIST 0-vs-1 training (the paper profile's epochs)",
            reached=self.reaches_paper(p, "max_epochs"), mean=1 - models.test_acc.mean(),
            max=1 - models.test_acc.min()))
        return claims
