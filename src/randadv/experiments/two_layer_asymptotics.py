"""``two-layer-asymptotics``: the two-layer single step (Bubeck, Cherapanamjeri, Gidel, Tachet
des Combes, NeurIPS 2021, Section 4) at sizes no materialised net reaches.

Per grid cell (activation, d, k): ``pairs`` independent (network, input) pairs drawn from the
exact law of the ray ``eta -> f(x + eta grad f(x))`` (:mod:`randadv.theory.two_layer_law`, O(k)
per pair, any d), ||x|| = sqrt(d); on each, the smallest flipping step (|eta| <= max_eta) by the
same search as ``two-layer-single-step`` (:func:`randadv.attacks.smallest_flip_step_on_ray`).
The records carry the columns of ``two-layer-single-step`` (depth = 1, ``net`` = the pair,
``input`` = 0), so the two experiments' tables can be compared cell by cell.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from randadv.arch import MLPSpec
from randadv.attacks import smallest_flip_step_on_ray
from randadv.experiments._papers import BUBECK_2021
from randadv.experiments._single_step_common import (
    flip_fields,
    mean_std,
    relative_perturbation_claim,
)
from randadv.experiments.two_layer_single_step import TwoLayerSingleStep
from randadv.framework import ANY_SIZE, Claim, Experiment, Param, UnitContext
from randadv.framework import claims as C
from randadv.nets import ACTIVATIONS
from randadv.nets.seeding import derive_seed
from randadv.stats import binomial_se, bonferroni_t, mean_se

MAX_K = 10**9                 # one pair holds ~150 bytes per unit at its peak
BATCH_UNITS = 1 << 22         # pairs sampled and searched together: B k <= this
BYTES_PER_UNIT = 160          # measured peak: 1.5 GB for one k = 1e7 pair (z, c, a + the sweep)
PAPER_D, PAPER_K = 5000, 10**6  # the largest d and k of Bubeck et al.'s Section 4 grid


class TwoLayerAsymptotics(Experiment):
    name = "two-layer-asymptotics"
    paper = f"{BUBECK_2021} (beyond its grid: the exact law of the single step, issue 20)"
    figures_reproduced = ("Section 4, Figures 1-2 extended to d up to 1e8 and k up to 1e7, "
                          "with the infinite-width theory overlaid")
    summary = ("smallest flipping eta, ||grad f||, fraction flipped and ||delta||/||x|| over d "
               "and k far beyond materialisable nets, from the exact law of the ray")
    parameters = dict(
        d=Param([10, 100, 1000, 10**4, 10**6, 10**8],
                "input dimensions d (any size: the sampler never holds W)", min=1),
        k=Param([10, 100, 1000, 10**4, 10**5, 10**6],
                "hidden widths k (the sampler streams k in blocks)", min=1, max=MAX_K),
        activation=Param(["relu", "tanh"], "activations psi (relu, tanh, softplus, ...)",
                         choices=tuple(ACTIVATIONS)),
        pairs=Param(40, "independent (network, input) pairs sampled per grid cell", min=2),
        chunk=Param(40,
                    "pairs sampled together in one batch (memory; results do not depend on it)",
                    min=1),
        max_eta=Param(20.0, gt=0),
        output=Param("rademacher", choices=("rademacher", "gaussian")),
    )
    profiles = {
        "smoke": dict(d=[10, 1000], k=[10, 1000], activation=["relu"], pairs=24, chunk=12),
        "quick": dict(),
        "paper": dict(d=[10, 100, 1000, 10**4, 10**5, 10**6, 10**7, 10**8],
                      k=[10, 100, 1000, 10**4, 10**5, 10**6, 10**7, 10**8], pairs=200, chunk=20),
    }
    record = TwoLayerSingleStep.record

    def cells(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(activation=a, d=int(d), k=int(k))
                for a, d, k in itertools.product(p["activation"], p["d"], p["k"])]

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        n_chunks = -(-p["pairs"] // p["chunk"])
        return [dict(cell, chunk=c) for cell in self.cells(p) for c in range(n_chunks)]

    def _pair_range(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> range:
        lo = unit["chunk"] * p["chunk"]
        return range(lo, min(p["pairs"], lo + p["chunk"]))

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Unit evaluations: ~3 draws + the search per unit (bracket + Newton ~5x the sweep)."""
        per_unit = 4.0 if ACTIVATIONS[unit["activation"]].piecewise_linear else 12.0
        return len(self._pair_range(unit, p)) * unit["k"] * per_unit + 1e4

    def unit_memory(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> int:
        n = len(self._pair_range(unit, p))
        return BYTES_PER_UNIT * max(unit["k"], min(n * unit["k"], BATCH_UNITS)) + 200 * 1024**2

    @staticmethod
    def spec(d: int, k: int, activation: str, p: Mapping[str, Any]) -> MLPSpec:
        """The two-layer net of a cell: eq. (1) with the run's output law."""
        return MLPSpec((int(d), int(k)), activation, p["output"])

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        d, k, act = unit["d"], unit["k"], unit["activation"]
        seed = derive_seed(ctx.seed, "two-layer-asymptotics", d, k)
        pairs = self._pair_range(unit, p)
        batch = max(1, BATCH_UNITS // k)
        x_norm = math.sqrt(d)
        spec = self.spec(d, k, act, p)
        out = []
        for lo in range(pairs.start, pairs.stop, batch):
            n = min(batch, pairs.stop - lo)
            ray = spec.two_layer_ray(n, seed, first_pair=lo, device=ctx.device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # all-dead ReLU: eta NaN
                r = smallest_flip_step_on_ray(ray, max_eta=p["max_eta"]).to("cpu")
            del ray
            out += [dict(d=d, k=k, depth=1, activation=act, net=lo + i, input=0,
                         x_norm=x_norm, **flip_fields(r, i)) for i in range(n)]
        return out

    # ------------------------------------------------------------------ results
    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        rows = []
        for (act, d, k), g in df.groupby(["activation", "d", "k"], sort=True):
            fl = g[g.flipped]
            n, nf = len(g), len(fl)
            spec = self.spec(d, k, act, p)
            th = spec.single_step_prediction()
            m4 = spec.fourth_moments()
            eta = fl.eta.abs()
            gsq, fsq = g.grad_norm ** 2, g.f_x ** 2
            rows.append(dict(
                depth=1, activation=act, d=d, k=k, n=n, flipped=nf / n,
                flipped_se=float(binomial_se(nf / n, n)),
                flip_theory=th.flip_fraction(p["max_eta"]),
                **mean_std("eta", eta), eta_se=mean_se(eta), eta_theory=th.eta_mean,
                **mean_std("grad_norm", g.grad_norm), grad_norm_theory=th.grad_norm,
                grad_sq_mean=gsq.mean(), grad_sq_se=math.sqrt(m4.grad_sq_var / n),
                grad_sq_theory=th.grad_norm_sq,
                f_sq_mean=fsq.mean(), f_sq_se=math.sqrt(m4.f_sq_var / n),
                f_sq_theory=th.f_var,
                pert_over_x=(fl.perturbation_norm / fl.x_norm).mean(),
                **mean_std("pert", fl.perturbation_norm),
                pert_theory=th.perturbation_mean))
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_asymptotics import asymptotics_figure, window_figure

        table = self.summary_table(df, p)
        out = []
        for act, t in table.groupby("activation", sort=True):
            path = folder / f"asymptotics_{act}.png"
            asymptotics_figure(t, path, max_eta=p["max_eta"],
                               title=f"{act}: exact law of the single step")
            out.append((f"{act}: fraction flipped with |eta| <= {p['max_eta']:g}, mean smallest "
                        f"|eta| (flipped), mean ||grad f|| and mean ||eta grad f|| vs k, one "
                        f"colour per d, +-2 SE bands; dashed: infinite-width theory at that d "
                        f"(single_step_prediction)", path))
            path = folder / f"window_{act}.png"
            window_figure(t, path, title=f"{act}: mean |eta| / linearised theory vs k/d")
            out.append((f"{act}: mean smallest |eta| over the linearised infinite-width value "
                        f"E|f| / E||grad f||^2, against k/d, one colour per d, +-2 SE bands",
                        path))
        return out

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        claims: list[Claim] = []
        beyond = (f"d up to {int(t.d.max()):g}, k up to {int(t.k.max()):g} (the paper's grid "
                  f"stops at d = {PAPER_D}, k = {PAPER_K:g})")
        relu = t[(t.activation == "relu") & (t.d >= 50) & (t.k >= 50)]
        if len(relu):
            claims.append(C.every(
                "Section 4: \"with L = 1 and values of d and k larger than 50, 100% of samples "
                "are switched\" (ReLU, |eta| < 20), at every size", relu.flipped == 1.0,
                "{frac:.2%} of {n} pairs flipped over {cells} cells, {beyond}; lowest cell "
                "d={w.d:g}, k={w.k:g}: {w.flipped:.2%}",
                "every pair of every cell d, k >= 50 flipped",
                scale=f"d >= 50, k >= 50 up to d = {PAPER_D}, k = {PAPER_K:g} and beyond",
                reached=bool(t.d.max() >= PAPER_D and t.k.max() >= PAPER_K),
                frac=(relu.flipped * relu.n).sum() / relu.n.sum(), n=int(relu.n.sum()),
                beyond=beyond, w=relu.loc[relu.flipped.idxmin()]))
        for act, g in t.groupby("activation", sort=True):
            for col, label, source in (
                    ("grad_sq", "E||grad f(x)||^2 = ((d - 1) E psi'(X)^2 + E X^2 psi'(X)^2) / d",
                     "eq. (3) and Lemma 3's decomposition"),
                    ("f_sq", "E f(x)^2 = E psi(X)^2", "Section 1.2")):
                z = ((g[f"{col}_mean"] - g[f"{col}_theory"]).abs() / g[f"{col}_se"]).to_numpy()
                claims.append(C.at_most(
                    f"{source}: {label} at every d and k ({act}; exact for ||x|| = sqrt(d))",
                    float(np.nanmax(z)), bonferroni_t(len(z), math.inf, alpha=1e-3),
                    "largest deviation {value:.2f} standard errors over {n} cells, {beyond}",
                    "every cell within {bound:.2f} null standard errors sqrt(Var / n), Var from "
                    "the exact fourth moments (fourth_moments; i.i.d. pairs, normal "
                    "approximation, family-wise level 1e-3)", scale=ANY_SIZE, n=len(z),
                    beyond=beyond))
            big = g[np.minimum(g.d, g.k) >= 10**4]
            if len(big):
                z = ((big.eta_mean - big.eta_theory).abs() / big.eta_se).to_numpy()
                dev = (big.eta_mean / big.eta_theory - 1).to_numpy()
                claims.append(C.at_most(
                    f"Section 4 / Lemma 1: the smallest eta is approximately constant in d and k "
                    f"and tends to the linearised value E|f| / E||grad f||^2 = "
                    f"{float(big.eta_theory.iloc[-1]):.3f} when d and k both grow ({act})",
                    float(np.nanmax(z)), bonferroni_t(len(z), math.inf, alpha=1e-3),
                    "cells with min(d, k) >= 1e4: mean |eta| / theory - 1 from {lo:+.1%} to "
                    "{hi:+.1%}, largest {value:.2f} standard errors, over {n} cells",
                    "every cell with min(d, k) >= 1e4 within {bound:.2f} standard errors "
                    "(family-wise 1e-3; the nonlinear bias, O(k^-1/2 + d^-3/4), is below the SE "
                    "there)", scale="d, k >= 1e4", reached=len(big) >= 2, lo=dev.min(),
                    hi=dev.max(), n=len(z)))
        fl = t[(t.activation == "relu") & (t.flipped > 0)]
        if fl.d.nunique() >= 3:
            claims.append(relative_perturbation_claim(
                fl, "ReLU", f" over d = {int(fl.d.min()):g}..{int(fl.d.max()):g}",
                f"d up to {PAPER_D} and beyond", bool(fl.d.max() >= PAPER_D)))
        return claims
