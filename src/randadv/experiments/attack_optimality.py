"""``attack-optimality``: how close randadv's closest-adversarial attack comes to the true minimal
adversarial distance, on networks small enough for an exact solve; and the exact distances
against the lower bound of De Palma, Kiani, Lloyd (ICML 2021), Corollary 1 / Remark 5.

Per unit (one architecture, one network seed, one input law): ``points`` inputs, and for each
input and norm (l1, l2, linf), on a :class:`randadv.arch.SmallNetSpec` network:

* the exact distance to the decision boundary, :func:`randadv.exact.min_distance` (MILP of Tjeng,
  Xiao, Tedrake 2019: HiGHS for l1/linf, SCIP for l2), with its status (``optimal``,
  ``time_limit``: a valid dual lower bound and the best verified point, ``infeasible``: no sign
  change in the input box) and its verified witness;
* the attack's distance, :func:`randadv.attacks.closest_adversarial`, for each ``n_starts``;
* the Corollary 1 radius per unit delta (eq. (16), carried to l_p by Remark 5, eq. (23)).

Every adversarial point is re-checked here by float64 forward passes of the model
(:func:`randadv.protocol.adversarial.recheck_example`: sign change, input box, distance). The
check "attack >= exact" compares the attack's verified distance with the solver's lower bound
minus :func:`randadv.exact.tolerance.solver_tolerance`, derived from the solver's feasibility
tolerance; it is computed from the stored records (:func:`violations`), so it can be tested on
records made up to fail.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import torch

from randadv.arch import SmallNetSpec
from randadv.attacks.closest import closest_adversarial
from randadv.errors import ConfigError, InvalidInputError, RandadvError
from randadv.experiments._papers import DE_PALMA_2021
from randadv.framework import ANY_SIZE, Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets.seeding import derive_seed, generator
from randadv.protocol.adversarial import recheck_example
from randadv.protocol.norms import NORMS, Norm

INPUT_KINDS = ("uniform", "gaussian")

FOUND_TOL = 1e-6    # ratio <= 1 + FOUND_TOL: the attack found the optimum
DELTA_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


# ---------------------------------------------------------------------- checks
def _lp(v: np.ndarray, norm: str) -> float:
    return float(np.linalg.norm(v.ravel(), Norm(norm).p))


def parse_arch(spec: str, bias_std: float = 0.0) -> SmallNetSpec:
    """:meth:`randadv.arch.SmallNetSpec.parse`, a malformed string a :class:`ConfigError`."""
    try:
        return SmallNetSpec.parse(spec, bias_std)
    except InvalidInputError as err:
        raise ConfigError(str(err)) from None


def violations(df: pd.DataFrame) -> pd.Series:
    """Records where the attack's verified distance is below what the exact solve proves
    (``exact_lower - tol``), or where the attack succeeded although the solver proved that no
    adversarial point exists (status ``infeasible``)."""
    ok = df.attack_success.astype(bool)
    lower = df.exact_lower.to_numpy(float)
    below = ok & np.isfinite(lower) & (df.attack_distance < lower - df.tol)
    contradiction = ok & (df.exact_status == "infeasible")
    return below | contradiction


def fmt_gap(v: float) -> str:
    """A gap ``attack / exact - 1`` for the report: within ``FOUND_TOL`` it is 0 (the exact
    witness is pushed across the boundary by ~1e-7 relative, so a found optimum reads -1e-7)."""
    if v != v:
        return "nan"
    return "0" if abs(v) <= FOUND_TOL else f"{v:.3g}"


def ratio_stats(g: pd.DataFrame) -> dict[str, Any]:
    """Of a group of records: optimal solves, attacks compared with them, the attack's success
    on inputs with an adversarial point, the found-optimum fraction and the median, 95th
    percentile and max of attack / exact - 1 (optimal solves), median seconds of each."""
    opt = g.exact_status == "optimal"
    exists = np.isfinite(g.exact_distance.to_numpy(float))
    ratio = g.ratio[opt & g.attack_success].to_numpy(float)
    some = len(ratio) > 0
    return dict(optimal=int(opt.sum()), compared=len(ratio),
                success=float(g.attack_success[exists].mean()) if exists.any() else math.nan,
                found=float((ratio <= 1 + FOUND_TOL).mean()) if some else math.nan,
                median=float(np.median(ratio) - 1) if some else math.nan,
                p95=float(np.quantile(ratio, 0.95) - 1) if some else math.nan,
                max=float(ratio.max() - 1) if some else math.nan,
                exact_s=float(g.exact_seconds.median()), attack_s=float(g.attack_seconds.median()))


def scip_available() -> bool:
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------- the experiment


class AttackOptimality(Experiment):
    name = "attack-optimality"
    paper = DE_PALMA_2021
    figures_reproduced = ("the distances behind Figures 1-2 (Section 4) checked against exact "
                          "solves; Corollary 1 / Remark 5 lower bound")
    summary = ("closest-adversarial attack vs exact MILP distance (l1, l2, linf) on small random "
               "ReLU nets: ratio distribution, attack >= exact check, Corollary 1 radius")
    parameters = dict(
        archs=Param(["fc:10:16", "fc:12:12-12", "conv:1x4x4:2:p2"],
                    "small architectures solved exactly: fc:D:W1-W2-... (ReLU MLP D -> W1 -> ... "
                    "-> 1) or conv:CxHxW:C1-C2-...[:pK] (3x3 same convolutions, optional K x K "
                    "pooling)"),
        nets=Param(2, min=1),
        points=Param(4, "inputs per network, input kind and norm", min=1),
        inputs=Param(["uniform", "gaussian"],
                     "input kinds: uniform (in the box [0, 1]^n) and/or gaussian",
                     choices=INPUT_KINDS),
        norms=Param(["l1", "l2", "linf"], choices=NORMS),
        n_starts=Param([1, 3],
                       "restart counts of the attack compared with the exact distance (one record"
                       " per value)", min=1),
        attack_steps=Param(20, "steps of each attack run of closest_adversarial", min=1),
        time_limit=Param(10.0,
                         "seconds per exact MILP/MIQCP solve (past it: a dual lower bound and the"
                         " best point)", gt=0),
        bias_std=Param(0.0, "standard deviation of the random biases (0: no biases)", min=0),
    )
    profiles = {
        "smoke": dict(archs=["fc:6:8"], nets=1, points=3, n_starts=[1], attack_steps=10),
        "quick": dict(),
        "paper": dict(archs=["fc:10:16", "fc:10:32", "fc:16:16-16", "fc:20:32", "fc:20:32-32",
                             "conv:1x4x4:4:p2", "conv:1x6x6:2:p2"],
                      nets=5, points=10, time_limit=120.0),
    }
    record = TypedDict("Record", {"arch": str, "family": str, "n": int, "hidden": int,
                                  "pixel_ratio": float, "net": int, "inputs": str, "point": int,
                                  "norm": str, "n_starts": int, "x_norm": float, "x_norm2": float,
                                  "f_x": float, "exact_distance": float, "exact_lower": float,
                                  "exact_status": str, "exact_verified": bool, "exact_note": str,
                                  "n_binaries": int, "exact_seconds": float,
                                  "attack_distance": float, "attack_success": bool,
                                  "attack_verified": bool, "attack_f": float,
                                  "attack_seconds": float, "exact_region": bool, "ratio": float,
                                  "tol": float, "radius_unit": float})


    def validate(self, p: dict[str, Any]) -> None:
        for spec in p["archs"]:
            a = parse_arch(spec)
            require(a.n <= 1024, f"{spec}: input dimension {a.n} too large for exact solves")
            require(a.hidden_neurons <= 1024,
                    f"{spec}: {a.hidden_neurons} hidden neurons, too many for exact solves")

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(arch=a, net=i, inputs=k, norm=nm) for a in p["archs"]
                for i in range(p["nets"]) for k in p["inputs"] for nm in p["norms"]]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Rough seconds: the exact solve dominates; its time grows about exponentially with
        the hidden ReLUs h (measured medians: ~0.1-0.3 s at h = 16, ~0.5-5 s at h = 32, l2
        (SCIP) at the 60-120 s limit for most inputs at h = 64), capped by the time limit;
        plus ~0.1 s per attack."""
        a = parse_arch(unit["arch"])
        scale = {"l1": 1.0, "linf": 0.3, "l2": 3.0}[unit["norm"]]
        solve = min(0.05 * scale * math.exp(a.hidden_neurons / 12) * (1 + a.n / 16),
                    p["time_limit"])
        return p["points"] * (solve + 0.1 * sum(p["n_starts"]))

    # ------------------------------------------------------------------ work
    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        from randadv.exact import ScipNotInstalledError, min_distance, to_affine_layers
        from randadv.exact.tolerance import solver_tolerance

        arch = parse_arch(unit["arch"], p["bias_std"])
        model = arch.build(derive_seed(ctx.seed, "net", unit["arch"], unit["net"]))
        pixel_ratio, shape = arch.pixel_ratio, arch.model_input_shape
        layers = to_affine_layers(model, shape)
        kind = unit["inputs"]
        g = generator(ctx.seed, "points", unit["arch"], unit["net"], kind)
        size = (p["points"], *arch.input_shape)
        if kind == "uniform":
            xs = torch.rand(size, generator=g, dtype=torch.float64)
            bounds: tuple | None = (0.0, 1.0)
        else:
            xs = torch.randn(size, generator=g, dtype=torch.float64)
            bounds = None
        with torch.no_grad():
            fxs = model(xs).reshape(-1).double()
        base = dict(arch=unit["arch"], family=arch.family, n=arch.n,
                    hidden=arch.hidden_neurons, pixel_ratio=float(pixel_ratio),
                    net=unit["net"], inputs=kind)
        recs: list[dict[str, Any]] = []
        norm = unit["norm"]
        if norm == "l2" and not scip_available():
            return recs   # reported by check_claims
        for i in range(p["points"]):
            x = xs[i]
            xf = x.numpy().reshape(-1)
            x_norm2 = _lp(xf, "l2")
            t0 = time.perf_counter()
            note = ""
            try:
                e = min_distance(model, x, norm, bounds=bounds, time_limit=p["time_limit"],
                                 input_shape=shape, strict=False,
                                 seed=derive_seed(ctx.seed, "exact", unit["arch"],
                                                  unit["net"], kind, i, norm))
                status, dist, lower = e.status, float(e.distance), float(e.lower_bound)
                nbin = int(e.n_binaries)
                witness = e.x_adv
                ex_ok = witness is None or (e.verified and recheck_example(
                    model, x, witness.to(torch.float64), bounds, norm, dist,
                    allow_zero=True))
            except ScipNotInstalledError:
                return []   # reported by check_claims
            except Exception as err:  # noqa: BLE001 - see below
                # randadv's own errors, and pyscipopt's bare Exception ("SCIP: error in LP
                # solver!"): a failed solve is recorded (status "error") and reported
                if not isinstance(err, RandadvError) and type(err) is not Exception:
                    raise
                status, dist, lower, nbin, witness, ex_ok = ("error", math.nan, math.nan, 0,
                                                             None, True)
                note = f"{type(err).__name__}: {err}"[:200]
            t_exact = time.perf_counter() - t0
            y = witness.numpy().reshape(-1) if witness is not None else xf
            tol = solver_tolerance(layers, y, norm, dist if math.isfinite(dist) else 0.0)
            r_unit = 2.0 * float(arch.lp_radius(Norm(norm).p, 0.5, x_norm2))
            for s in p["n_starts"]:
                t0 = time.perf_counter()
                r = closest_adversarial(
                    model, x.unsqueeze(0), norm, bounds=bounds,
                    seed=derive_seed(ctx.seed, "attack", unit["arch"], unit["net"], kind,
                                     i, norm, s),
                    n_starts=s, steps=p["attack_steps"],
                    input_shape=shape)
                t_attack = time.perf_counter() - t0
                ok = bool(r.success[0])
                d_att = float(r.distance[0]) if ok else math.inf
                x_adv = r.x_adv[0].to(torch.float64)
                verified = (not ok) or recheck_example(model, x, x_adv, bounds, norm, d_att)
                with torch.no_grad():
                    f_att = float(model(x_adv.unsqueeze(0)).reshape(-1)[0])
                ratio = d_att / dist if (ok and status == "optimal" and dist > 0
                                         and math.isfinite(dist)) else math.nan
                recs.append(dict(
                    base, point=i, norm=norm, n_starts=int(s),
                    x_norm=_lp(xf, norm), x_norm2=x_norm2, f_x=float(fxs[i]),
                    exact_distance=dist, exact_lower=lower, exact_status=status,
                    exact_verified=bool(ex_ok), exact_note=note, n_binaries=nbin,
                    exact_seconds=t_exact, attack_distance=d_att, attack_success=ok,
                    attack_verified=bool(verified), attack_f=f_att,
                    attack_seconds=t_attack,
                    exact_region=bool(r.exact_region[0]), ratio=ratio, tol=float(tol),
                    radius_unit=r_unit))
        return recs

    # ------------------------------------------------------------------ results
    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        rows = []
        viol = violations(df)
        for (arch, kind, norm, s), g in df.groupby(["arch", "inputs", "norm", "n_starts"],
                                                   sort=True):
            r = ratio_stats(g)
            rows.append(dict(
                arch=arch, inputs=kind, norm=norm, n_starts=int(s), n=len(g),
                optimal=r["optimal"], time_limit=int((g.exact_status == "time_limit").sum()),
                infeasible=int((g.exact_status == "infeasible").sum()), success=r["success"],
                found_optimum=r["found"], gap_median=r["median"], gap_p95=r["p95"],
                gap_max=r["max"], violations=int(viol[g.index].sum()),
                exact_s_median=r["exact_s"], attack_s_median=r["attack_s"],
                delta_emp_min=float((g.exact_distance / g.radius_unit).min())))
        return pd.DataFrame(rows)

    def gap_table(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per (norm, n_starts), pooled over architectures and inputs: the ratio distribution on
        optimal solves (:func:`ratio_stats`)."""
        return pd.DataFrame([dict(norm=norm, n_starts=int(s), solves=len(g), **ratio_stats(g))
                             for (norm, s), g in df.groupby(["norm", "n_starts"], sort=True)])

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_optimality import (
            attack_vs_exact_figure,
            corollary1_delta_figure,
            ratio_cdf_figure,
        )

        return [
            ("Empirical CDF of attack distance / exact distance - 1 per norm (optimal solves, "
             "pooled over architectures and inputs; symlog axis, linear below 1e-6), one curve "
             "per n_starts; ratio 1 = the attack found the optimum",
             ratio_cdf_figure(df, folder / "ratio_cdf.png")),
            ("Attack distance vs exact distance per norm (log-log), one colour per architecture; "
             "filled: optimal solves, open: time-limited (x = the solver's dual lower bound); "
             "dashed: y = x (no point may lie below it)",
             attack_vs_exact_figure(df, folder / "attack_vs_exact.png")),
            ("Exact distance in units of the Corollary 1 radius, delta_emp = d / r(delta = 1) "
             "(eq. (16), Remark 5 for l2/linf): its empirical CDF must stay below the diagonal "
             "F(delta) = delta (P(d < r(delta)) <= delta); log x-axis",
             corollary1_delta_figure(df, folder / "corollary1_delta.png")),
        ]

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        claims: list[Claim] = []
        if "l2" in p.get("norms", ()) and not (df.norm == "l2").any():
            claims.append(C.reported(
                "l2 exact distances (SCIP MIQCP)",
                "skipped: pyscipopt is not installed (pip install randadv[scip])",
                "no l2 records", scale=ANY_SIZE))
        succ = df[df.attack_success]
        failed = succ[~succ.attack_verified]
        solves = df.drop_duplicates(["arch", "net", "inputs", "point", "norm"])
        fin = solves[np.isfinite(solves.exact_distance.to_numpy(float))]
        err = solves[solves.exact_status == "error"]
        claims += [C.count(
            "randadv's attacks never return an unverified point", len(succ) - len(failed),
            len(succ), "{passed} of {total} successful attacks re-checked by float64 forward "
            "passes (sign change alone and batched with x, input box, distance); {failed} "
            "failed{details}", "every successful attack passes the re-check", scale=ANY_SIZE,
            details="".join(f"; {r.arch} net {r.net} {r.inputs} point {r.point} {r.norm} "
                            f"n_starts {r.n_starts}: f(x) = {r.f_x:.3g}, f(x_adv) = "
                            f"{r.attack_f:.3g}" for r in failed.head(3).itertuples())), C.count(
            "exact solves return verified witnesses", int(fin.exact_verified.sum()), len(fin),
            "{passed} of {total} exact witnesses pass the float64 forward-pass re-check",
            "every witness verified", scale=ANY_SIZE), C.count(
            "exact solves finish (optimal, time limit with a dual bound, or infeasible)",
            len(solves) - len(err), len(solves), "{counts} of {total} solves{errors}",
            "no solver error (time-limited solves are reported, not failures)", scale=ANY_SIZE,
            counts=", ".join(f"{k}: {int(v)}" for k, v in solves.exact_status.value_counts()
                             .items()),
            errors="; errors: " + "; ".join(
                f"{r.arch} net {r.net} {r.inputs} point {r.point} {r.norm}: {r.exact_note}"
                for r in err.head(3).itertuples()) if len(err) else "")]
        viol = violations(df)
        for norm, g in df.groupby("norm", sort=True):
            v = viol[g.index]
            opt, tl = g.exact_status == "optimal", g.exact_status == "time_limit"
            worst = ""
            if v.any():
                h = g[v]
                r = h.iloc[int(np.argmax((h.exact_lower - h.attack_distance).to_numpy(float)))]
                worst = (f"; worst: {r.arch} net {r.net} {r.inputs} point {r.point} "
                         f"n_starts {r.n_starts}: attack {r.attack_distance:.9g} < lower bound "
                         f"{r.exact_lower:.9g} (tol {r.tol:.2g})")
            claims.append(C.every(
                f"attack >= exact, always ({norm}): no verified adversarial point is closer than "
                "the exact minimal distance", ~v,
                "violations: {v_opt} of {n_opt} optimal solves; {v_tl} of {n_tl} time-limited "
                "(against the dual bound); {v_inf} attack successes where the solver proves "
                "none exists ({n_inf} infeasible solves){worst}",
                "attack distance >= solver lower bound - tol (tol from the solvers' feasibility "
                "tolerance 1e-6, see solver_tolerance) in every record, and no success where the "
                "solve is infeasible", scale=ANY_SIZE, v_opt=int(v[opt].sum()),
                n_opt=int((opt & g.attack_success).sum()), v_tl=int(v[tl].sum()),
                n_tl=int((tl & g.attack_success).sum()),
                v_inf=int(v[g.exact_status == "infeasible"].sum()),
                n_inf=int((g.drop_duplicates(["arch", "net", "inputs", "point"]).exact_status
                           == "infeasible").sum()), worst=worst))
        claims += [C.reported(
            f"optimality gap of closest_adversarial ({r.norm}, n_starts = {r.n_starts})",
            "attack / exact - 1 over {r.compared} optimal solves: median {median}, 95th "
            "percentile {p95}, max {max}; optimum found (|gap| <= 1e-6) in {r.found:.0%}; success "
            "{r.success:.1%} of inputs with an adversarial point; median seconds exact "
            "{r.exact_s:.3g} / attack {r.attack_s:.3g}", "measured and reported (no criterion)",
            scale="the nets an exact solver finishes (a measurement, not a claim)", r=r,
            median=fmt_gap(r.median), p95=fmt_gap(r.p95), max=fmt_gap(r.max))
            for r in self.gap_table(df).itertuples()]
        for norm, g in solves.groupby("norm", sort=True):
            de = (g.exact_distance / g.radius_unit).to_numpy(float)
            de = de[~np.isnan(de)]
            if not len(de):
                continue
            below = np.array([(de < dl).mean() for dl in DELTA_GRID])
            worst = max(DELTA_GRID, key=lambda dl: (de < dl).mean() - dl)
            claims.append(C.every(
                f"Corollary 1 / Remark 5 ({norm}): P(d_exact < r(delta)) <= delta, r(delta) = "
                "delta ||x||_2 sqrt(pi) sqrt(pixel ratio) / a_n (eq. (16)) times n^(1/p - 1)",
                C.below_binomial(below, DELTA_GRID, len(de)),
                "smallest d_exact / r(1) = {least:.3g} over {n} inputs; fraction below r(0.5): "
                "{half:.3f}; largest excess at delta = {worst:g}: {at_worst:.3f} vs {worst:g}",
                "empirical P(d < r(delta)) <= delta + 2 binomial SE for delta in {grid} "
                "(infinite-width theorem, narrow nets)",
                scale="wide random networks (Corollary 1 is an infinite-width statement); "
                "the exact solvers reach only narrow ones", reached=False, least=de.min(),
                n=len(de), half=(de < 0.5).mean(), worst=worst, at_worst=(de < worst).mean(),
                grid=", ".join(f"{d:g}" for d in DELTA_GRID)))
        return claims
