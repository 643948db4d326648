"""``lazy-sgd``: "Adversarial Robustness is at Odds with Lazy Training" (NeurIPS 2022),
Section 5.1 and Appendix A (Figures 2, 3, 5, 6, 7).

Per unit (one trained model): MNIST 0 vs 1 downsampled to d pixels (optionally ||x|| = 1), a
two-layer ReLU net of width m initialised as in Definition 2.1, trained by SGD (logistic loss,
learning rate 0.1) until an iterate would leave the lazy ball of radius C_0 / sqrt(m); then for
every test example the exact smallest step eta along grad f(x) that flips sign f (Theorem 3.1's
single gradient step), ||grad f(x)|| and ||delta|| = |eta| ||grad f(x)||.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import torch

from randadv.experiments._lazy_common import (
    exact_flip_steps,
    left_ball,
    mnist01,
    mnist_training,
    model_cached,
    model_root,
    sample_counts,
    train_key,
    trained_model,
    training_fields,
    validate_dims,
)
from randadv.experiments._papers import WANG_2022
from randadv.experiments._single_step_common import flip_fields, mean_std
from randadv.framework import ANY_SIZE, Claim, Experiment, Param, UnitContext
from randadv.framework import claims as C
from randadv.stats import loglog_slope
from randadv.train.lazy import (
    LazyTrainConfig,
    LazyTwoLayerNet,
    TrainResult,
    train_lazy_sgd,
    train_lazy_sgd_c0s,
)
from randadv.train.store import ModelCache

PAPER_D = [25, 49, 100, 196, 400, 625, 784]
BIAS_CHOICES = ("paper", "true", "false")
DATA = {False: "raw pixels", True: "||x|| = 1"}   # the two preprocessings, by `normalize`
SETTING = " (the theorem's setting)"   # of normalised inputs
# the training columns of a record, one value per model
MODEL_COLUMNS = ("test_acc", "train_acc", "steps", "epochs", "stop_reason", "max_dev_ratio",
                 "train_seconds")


def _bias(p: Mapping[str, Any], normalize: bool) -> bool:
    """Figures 2-3 (raw pixels) use first-layer biases, Figures 5-6 (||x|| = 1) do not."""
    return (not normalize) if p["bias"] == "paper" else p["bias"] == "true"


class LazySGD(Experiment):
    name = "lazy-sgd"
    paper = WANG_2022
    figures_reproduced = "Section 5.1 (Figures 2, 3) and Appendix A (Figures 5, 6, 7)"
    summary = ("SGD in the lazy regime on MNIST 0 vs 1, then the exact smallest single "
               "gradient step that flips each test prediction: ||delta||, ||grad f||, eta vs d")
    parameters = dict(
        **mnist_training(0.1, 5, "epochs of lazy SGD", n_train=0, n_test=500),
        d=Param([25, 100, 196, 400, 784], "input dimensions (downsampled MNIST, d = side^2)"),
        m=Param([1000], "hidden widths m", min=1),
        c0=Param([10.0, 40.0], "initial scales C0 of Definition 2.1", gt=0),
        grid=Param("full",
                   "full (every m x C0) or figures (the paper's two slices: all m at the first "
                   "C0, all C0 at the first m)", choices=("figures", "full")),
        normalize=Param([False, True],
                        "input preprocessing: False (raw pixels) and/or True (normalised inputs)"),
        bias=Param("paper",
                   "bias terms: paper (with raw pixels, without normalised inputs, as Appendix "
                   "A), true or false", choices=BIAS_CHOICES),
        max_eta=Param(50.0, gt=0),
    )
    profiles = {
        "smoke": dict(d=[25, 100], m=[200], c0=[10.0], grid="figures", max_epochs=20,
                      n_train=1000, n_test=100),
        "quick": dict(),
        "paper": dict(d=PAPER_D, m=[1000, 10000, 100000], c0=[10.0, 20.0, 30.0, 40.0],
                      grid="figures", seeds=5, max_epochs=20, n_test=0),
    }
    record = TypedDict("Record", {"d": int, "m": int, "c0": float, "normalize": bool, "bias": bool,
                                  "seed": int, "index": int, "y": int, "f_x": float,
                                  "correct": bool, "grad_norm": float, "eta": float,
                                  "eta_boundary": float, "flipped": bool,
                                  "perturbation_norm": float, "x_norm": float, "test_acc": float,
                                  "train_acc": float, "steps": int, "epochs": float,
                                  "stop_reason": str, "max_dev_ratio": float,
                                  "train_seconds": float})

    # ------------------------------------------------------------------ configuration
    def validate(self, p: dict[str, Any]) -> None:
        validate_dims(p["d"])

    def cells(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        if p["grid"] == "full":
            mc = list(itertools.product(p["m"], p["c0"]))
        else:   # Figures 2/5: every m at c0[0]; Figures 3/6: every C0 at the largest m
            mc = [(m, p["c0"][0]) for m in p["m"]]
            mc += [(max(p["m"]), c) for c in p["c0"][1:]]
        out = []
        for norm, d, (m, c0) in itertools.product(p["normalize"], p["d"], mc):
            out.append(dict(normalize=bool(norm), d=int(d), m=int(m), c0=float(c0)))
        return out

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(c, seed=s) for c in self.cells(p) for s in range(p["seeds"])]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Multiply-adds: SGD steps (at most max_epochs epochs, ~3 (d + 150) m per example),
        paid once per (preprocessing, d, m, seed) since the largest C0's run serves the other
        C0 from the model cache (:meth:`trained_model`); and the attack, ~8 (d + 500) m per
        test input. The d-free parts (per hidden unit: the step's bookkeeping, the kink sweep)
        are measured on the quick grid: training 3.0 s at d = 25 and 15.7 s at d = 784, the
        attack 0.12 s and 0.29 s."""
        from randadv.framework.unit_cost import UnitCost

        n_train, n_test = sample_counts(p)
        train = 3.0 * (unit["d"] + 150) * unit["m"] * n_train * p["max_epochs"]
        attack = 8.0 * (unit["d"] + 500) * unit["m"] * n_test
        return UnitCost(attack, train,
                        key=(unit["normalize"], unit["d"], unit["m"], unit["seed"]))

    def unit_memory(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> int | None:
        """W, W_0, the gradient and a candidate step (float32), the float64 attack copy and
        its 512-row kink-sweep blocks."""
        dm = unit["d"] * unit["m"]
        return int(16 * dm + 16 * dm + 512 * unit["m"] * 8 * 6 + 2e8)

    # ------------------------------------------------------------------ work
    def train_config(self, unit: Mapping[str, Any], p: Mapping[str, Any], seed: int) -> dict:
        """Everything that determines a trained model (the model cache key)."""
        return train_key("lazy-sgd", p, seed, unit["seed"], "lazy-net", "lazy-order",
                         d=unit["d"], m=unit["m"], c0=unit["c0"], normalize=unit["normalize"],
                         bias=_bias(p, unit["normalize"]))

    def shared_work_cached(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                           ctx: UnitContext) -> bool:
        """The models of every C0 sharing the unit's training run are cached (one missing:
        the run trains again, :meth:`trained_model`)."""
        return all(model_cached(p, ctx, self.train_config(dict(unit, c0=c0), p, ctx.seed))
                   for c0 in self.c0_siblings(unit, p))

    def c0_siblings(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> list[float]:
        """The C0 values of the grid's cells that share this unit's (preprocessing, d, m):
        one training run with the largest serves them all (:func:`train_lazy_sgd_c0s`)."""
        return sorted({c["c0"] for c in self.cells(p) if c["normalize"] == unit["normalize"]
                       and c["d"] == unit["d"] and c["m"] == unit["m"]})

    def trained_model(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                      ctx: UnitContext) -> tuple[LazyTwoLayerNet, dict]:
        """Train (or load from the cache) the unit's model; returns (model, result dict).

        Where the grid has several C0 at this unit's (preprocessing, d, m) and models are
        cached, the largest C0's run is trained once and the model of every smaller C0 is
        its snapshot at that ball's exit (bit-identical to a run of its own), all cached."""
        tc = self.train_config(unit, p, ctx.seed)
        cache = ModelCache(model_root(p, ctx))
        siblings = self.c0_siblings(unit, p)
        cfg = LazyTrainConfig(c0=unit["c0"], lr=p["lr"], batch_size=p["batch_size"],
                              max_epochs=p["max_epochs"], seed=tc["order_seed"])

        def fit(net: LazyTwoLayerNet, x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor,
                yt: torch.Tensor) -> TrainResult | tuple[LazyTwoLayerNet, TrainResult]:
            if cache.root is None or len(siblings) < 2:
                return train_lazy_sgd(net, x, y, cfg, xt, yt)
            shared = train_lazy_sgd_c0s(net, x, y, cfg, siblings, xt, yt)
            for c0, (model, res) in shared.items():     # the unit's own: get_or_train's put
                tc_c0 = self.train_config(dict(unit, c0=c0), p, ctx.seed)
                if c0 != unit["c0"] and cache.get(tc_c0) is None:
                    cache.put(model, tc_c0, res.to_dict())
            return shared[unit["c0"]]

        return trained_model(p, ctx, tc, unit["d"], unit["normalize"],
                             lambda: LazyTwoLayerNet(unit["d"], unit["m"], tc["net_seed"],
                                                     bias=tc["bias"], device=ctx.device),
                             fit, cache)

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        net, res = self.trained_model(unit, p, ctx)
        xt, yt = mnist01(p, "test", unit["d"], unit["normalize"], ctx.seed, p["n_test"])
        r = exact_flip_steps(net, xt, ctx.device, p["max_eta"], 512)
        x_norm = xt.double().norm(dim=1)
        base = dict(d=unit["d"], m=unit["m"], c0=unit["c0"], normalize=unit["normalize"],
                    bias=net.has_bias, seed=unit["seed"], **training_fields(res, *MODEL_COLUMNS))
        return [dict(base, index=i, y=int(yt[i]), correct=bool(float(r.f_x[i]) * yt[i] > 0),
                     x_norm=float(x_norm[i]), **flip_fields(r, i)) for i in range(len(yt))]

    # ------------------------------------------------------------------ results
    def model_table(self, df: pd.DataFrame) -> pd.DataFrame:
        """One row per trained model."""
        return df.groupby(["normalize", "bias", "d", "m", "c0", "seed"], sort=True).first(
            )[list(MODEL_COLUMNS)].reset_index()

    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        rows = []
        models = self.model_table(df)
        for (norm, d, m, c0), g in df.groupby(["normalize", "d", "m", "c0"], sort=True):
            fl = g[g.flipped]
            mo = models[(models.normalize == norm) & (models.d == d) & (models.m == m)
                        & (models.c0 == c0)]
            rows.append(dict(
                normalize=norm, d=d, m=m, c0=c0, models=len(mo), n=len(g),
                test_error=1 - mo.test_acc.mean(), test_error_max=1 - mo.test_acc.min(),
                left_ball=left_ball(mo), steps=mo.steps.mean(), flipped=len(fl) / len(g),
                **mean_std("delta", fl.perturbation_norm / fl.x_norm),
                delta_abs_mean=fl.perturbation_norm.mean(),
                **mean_std("grad_norm", g.grad_norm), **mean_std("eta", fl.eta.abs()),
                abs_f_mean=g.f_x.abs().mean(), x_norm_mean=g.x_norm.mean()))
        return pd.DataFrame(rows)

    def _slices(self, t: pd.DataFrame, p: Mapping[str, Any]):
        """(name, curve column, fixed description, sub-table) of Figures 2/5 and 3/6."""
        c_fix, m_fix = p["c0"][0], max(p["m"])
        yield "m", "m", f"C0 = {c_fix:g}", t[t.c0 == c_fix]
        yield "c0", "C0", f"m = {m_fix:g}", t[t.m == m_fix]

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_lazy import histograms_figure, rates_figure

        t = self.summary_table(df, p)
        out = []
        for norm, tn in t.groupby("normalize"):
            tag = "unit" if norm else "raw"
            data = "||x|| = 1, no bias" if norm else "raw pixels"
            for curve, label, fixed, sub in self._slices(tn, p):
                if sub.d.nunique() < 2 or (curve == "c0" and sub.c0.nunique() < 2):
                    continue
                fig = {("m", False): 2, ("c0", False): 3, ("m", True): 5,
                       ("c0", True): 6}[(curve, bool(norm))]
                path = folder / f"rates_{tag}_by_{curve}.png"
                rates_figure(sub, path, curve, label,
                             title=f"{data}, {fixed} (Figure {fig} of the paper)")
                out.append((f"Smallest ||delta||/||x|| (left), ||grad f(x)|| (middle), smallest "
                            f"|eta| (right) vs d, {data}, {fixed}, one curve per {label}; "
                            f"dashed: the theory's rates d^-1/2, d^1/2, d^-1 (Figure {fig})",
                            path))
        d_max, m_max, c_min = df.d.max(), df.m.max(), df.c0.min()
        for norm, g in df[(df.d == d_max) & (df.m == m_max) & (df.c0 == c_min)].groupby(
                "normalize"):
            tag = "unit" if norm else "raw"
            path = folder / f"histograms_{tag}.png"
            what = f"d = {d_max}, m = {m_max}, C0 = {c_min:g}, " + \
                ("||x|| = 1" if norm else "raw pixels")
            histograms_figure(g, path, title=f"{what} (Figure 7 of the paper)")
            out.append((f"Histograms over test examples of the smallest ||delta||, ||grad f||, "
                        f"|eta|, {what} (Figure 7)", path))
        return out

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        models = self.model_table(df)
        n_bad = int((models.test_acc < 0.99).sum())
        claims = [C.count(
            "Section 5.1: \"each of the trained models achieves a test error of less than 1%\"",
            len(models) - n_bad, len(models),
            "test error over {total} models: mean {mean:.2%}, max {max:.2%} (d={w.d}, m={w.m}, "
            "C0={w.c0:g}, normalize={w.normalize}); {failed} models at >= 1%",
            "every model's test error < 1%",
            scale="m = 1e3 ... 1e5, full MNIST 0-vs-1 (Section 5.1)",
            reached=self.reaches_paper(p, "m", "max_epochs"), mean=1 - models.test_acc.mean(),
            max=1 - models.test_acc.min(), w=models.loc[models.test_acc.idxmin()]), C.at_most(
            "Section 5.1: training stops when the iterates exit the lazy regime, so every "
            "model lies in B_{2,inf}(W_0, C0/sqrt(m))", models.max_dev_ratio.max(), 1.0 + 1e-9,
            "max ||w_s - w_s0|| / (C0/sqrt m) over models: {value:.4f}; {left} stopped at the "
            "ball's edge, the rest at max_epochs", "every ratio <= 1", scale=ANY_SIZE,
            left=left_ball(models)), C.at_least(
            "Theorem 3.1: a single gradient step flips the prediction of every input",
            df.flipped.mean(), 0.99,
            "{value:.2%} of {n} test examples flipped with |eta| <= {max_eta:g}", ">= 99% flipped",
            scale="m >> d (Theorem 3.1: m up to 1e5 in Section 5.1)",
            reached=self.reaches_paper(p, "m"), n=len(df), max_eta=p["max_eta"])]
        t = self.summary_table(df, p)
        rates = (("delta_mean", -0.5, "||delta||/||x||"), ("grad_norm_mean", 0.5, "||grad f||"),
                 ("eta_mean", -1.0, "|eta|"))
        fig = dict(scale="Figures 2-3 / 5-6: d = 25 ... 784, m = 1e3 ... 1e5",
                   reached=self.reaches_paper(p, "m", "d"))
        for norm in (True, False):
            tn = t[t.normalize == norm]
            if tn.d.nunique() < 3:
                continue
            for col, theory, label in rates if norm else rates[:1]:
                slopes = {(m, c0): loglog_slope(g.d, g[col])
                          for (m, c0), g in tn.groupby(["m", "c0"]) if g.d.nunique() >= 3}
                if not slopes:
                    continue
                claims.append(C.every(
                    f"Figures {'5-6' if norm else '2-3'}: {label} scales like d^{theory:g} "
                    f"({DATA[norm]}{SETTING * norm})",
                    [abs(s - theory) <= 0.2 for s in slopes.values()],
                    "fitted log-log exponents: {text}",
                    "every fitted exponent within 0.2 of {theory:g}", **fig, theory=theory,
                    text=", ".join(f"m={m:g}, C0={c:g}: {s:.3f}" for (m, c), s in slopes.items())))
            if not norm:
                fits = {col: ", ".join(f"{loglog_slope(g.d, g[col]):.3f}"
                                       for _, g in tn.groupby(["m", "c0"]))
                        for col in ("grad_norm_mean", "eta_mean")}
                claims.append(C.reported(
                    "Figure 2 (raw pixels): ||grad f|| grows like sqrt(d) and eta decays like "
                    "1/d (informational: with ||x|| ~ sqrt(d), positive homogeneity predicts "
                    "||grad f|| ~ d^0.5 and eta ~ d^-0.5 instead; see Notes)",
                    "fitted exponents of ||grad f||: {grad_norm_mean}; of |eta|: {eta_mean}",
                    "not decided: the theorem assumes ||x|| = 1",
                    scale="Figure 2: d = 25 ... 784, m = 1e3 ... 1e5", **fits))
        m_max = max(p["m"])
        for norm, tn in t[t.m == m_max].groupby("normalize"):
            if tn.c0.nunique() < 2:
                continue
            dd = tn[tn.d == tn.d.max()].sort_values("c0")
            claims.append(C.trend(
                "Figure 3/6: as C0 grows, the perturbation needed to flip the label grows "
                f"({DATA[norm]}, m = {m_max:g}, d = {dd.d.max()})",
                np.all(np.diff(dd.delta_mean.to_numpy()) > 0), "mean ||delta||/||x|| by C0: {c0s}",
                "strictly increasing in C0 (a model that never reached the ball's edge is the "
                "same for every larger C0)", scale="Figures 3 / 6: C0 = 10 ... 40 at m = 1e5",
                reached=self.reaches_paper(p, "m", "c0"),
                c0s=C.listing(dd, "{c0:g}: {delta_mean:.4g} (left ball {left_ball})")))
        d_max, c_min = df.d.max(), df.c0.min()
        g = df[(df.d == d_max) & (df.m == m_max) & (df.c0 == c_min) & df.flipped]
        if len(g) and d_max == 784:
            claims.append(C.reported(
                "Appendix A, Figure 7 (d = 784, m = 1e5, C0 = 10): \"delta concentrates around "
                f"0.045\" (here m = {m_max:g})", "{text}",
                "informational: the paper does not say which preprocessing Figure 7 uses",
                scale="d = 784, m = 1e5, C0 = 10", text="; ".join(
                    f"{DATA[n]}: median ||delta|| {np.median(h.perturbation_norm):.4g}"
                    for n, h in g.groupby("normalize"))))
        return claims
