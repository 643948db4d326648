"""``closest-adversarial``: De Palma, Kiani, Lloyd, "Adversarial Robustness Guarantees for Random
Deep Neural Networks" (ICML 2021), Section 4, Figures 1 and 2; Corollary 1 and Remark 5.

Per unit (one architecture, one input side s, one network seed): a random network of
:mod:`randadv.nets.zoo` (``fc``, ``lenet``, ``conv4``, ``resnet``) for 3 x s x s images
(n = 3 s^2), ``points`` images with i.i.d. pixels uniform in [0, 1], each attacked with the
closest-adversarial attack in l1, l2 and linf inside the box [0, 1]^n. The distance in norm p is the
smallest l_p distance over every verified adversarial example found for the point (any norm's
attack): an upper bound of the true minimal distance.

Theory (Remark 5): with Theta(1) pixels the l_p distance to the closest boundary scales at least as
n^{1/p - 1/2} (l1: sqrt(n), l2: 1, linf: 1/sqrt(n)) up to logarithms, and the relative distance
||delta||_p / ||x||_p as 1/sqrt(n) in every norm; the paper's Figures 1-2 show the medians follow
these scalings. Corollary 1, eq. (16) with eq. (23), gives the radius r_p(delta) within which,
with probability >= 1 - delta over the network, no boundary lies
(:func:`randadv.theory.robustness_bounds.lp_radius`): the delta-quantile of the distance is at
least r_p(delta).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from randadv.arch import ImageNetSpec
from randadv.attacks.all_norms import closest_adversarial_all_norms
from randadv.errors import ConfigError
from randadv.experiments._papers import DE_PALMA_2021
from randadv.framework import ANY_SIZE, Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets.conv import uniform_images
from randadv.nets.seeding import derive_seed
from randadv.nets.zoo import ARCHITECTURES
from randadv.protocol.norms import NORMS, Norm, lp_norm
from randadv.stats import bootstrap_median_slopes, loglog_fit
from randadv.theory.robustness_bounds import (
    dudley_denominator_exponent,
    lp_radius,
    remark5_exponent,
)

BANDS = (0.05, 0.45, 0.55, 0.95)       # Figure 1: 5th-95th and the paper's +-5 percentiles
BOOTSTRAP = 400                        # bootstrap replicates (over networks) of a fitted slope
# cost model (fitted to unit timings on the 2-core machine): relative time of each norm's attack
# (FMN in every norm), the per-layer Python overhead of one batched step and the per-input-entry
# work of the attacks' vector operations, both in multiply-add equivalents
NORM_WEIGHT = {"l1": 1.0, "l2": 1.0, "linf": 1.0}
LAYER_OVERHEAD = 3e6
ENTRY_WORK = 2.7e3
FIGURE_OF = {"distance": "Figure 1: median l_p distance",
             "relative": "Figure 2: median relative distance ||delta||_p / ||x||_p"}


def parse_size_caps(items: list[str]) -> dict[str, int]:
    """``["resnet:36", ...]`` -> ``{"resnet": 36}`` (largest side s run for that architecture)."""
    caps: dict[str, int] = {}
    for item in items:
        if item in ("", "none"):
            continue
        name, sep, value = item.partition(":")
        require(bool(sep) and name in ARCHITECTURES,
                f"size_caps entries must be ARCH:S with ARCH among {', '.join(ARCHITECTURES)}, "
                f"got {item!r}")
        try:
            caps[name] = int(value)
        except ValueError:
            raise ConfigError(f"size_caps {item!r}: S must be an integer") from None
    return caps


def _quantile(values: np.ndarray, q: float) -> float:
    """Quantile with +inf allowed (no interpolation between values)."""
    return float(np.quantile(values, q, method="inverted_cdf"))


class ClosestAdversarial(Experiment):
    name = "closest-adversarial"
    paper = DE_PALMA_2021
    figures_reproduced = "Section 4, Figures 1-2; Corollary 1, Remark 5"
    summary = ("closest-adversarial l1, l2, linf distances of random fc / LeNet / conv / residual "
               "nets at uniform random images vs n = 3 s^2: medians and percentile bands, fits "
               "c n^{1/p - 1/2}, relative distances ~ n^{-1/2}, Corollary 1's radius")
    parameters = dict(
        architectures=Param(["fc", "resnet"],
                            "networks of De Palma et al.: fc, lenet, conv4, resnet",
                            choices=ARCHITECTURES, unique=True),
        sizes=Param([12, 20, 28, 36, 44, 52, 60], "image sides s (the x axis: n = channels x s^2)",
                    min=4, max=512, unique=True),
        size_caps=Param(["resnet:36"],
                        "largest image side per architecture, ARCH:S (none: no cap)"),
        nets=Param(6, min=1),
        points=Param(2, "uniform images in [0, 1]^n attacked per network", min=1),
        norms=Param(["l1", "l2", "linf"], choices=NORMS, unique=True),
        attack_steps=Param(30, min=1),
        n_starts=Param(1, "restarts of the attack per point", min=1),
        delta=Param(0.05,
                    "probability delta of Corollary 1's radius r_p(delta) drawn as the lower "
                    "bound", gt=0, lt=1),
        channels=Param(3, "image channels (input n = channels x size^2)", min=1),
    )
    profiles = {
        "smoke": dict(architectures=["fc"], sizes=[8, 12], size_caps=["none"], nets=2),
        "quick": dict(),
        "paper": dict(architectures=["resnet", "fc", "lenet", "conv4"],
                      sizes=list(range(12, 61, 4)), size_caps=["none"], nets=200, points=10,
                      attack_steps=50, n_starts=3),
    }
    record = TypedDict("Record", {"architecture": str, "s": int, "n": int, "net": int, "index": int,
                                  "norm": str, "distance": float, "rel_distance": float,
                                  "x_norm": float, "x_norm2": float, "success": bool,
                                  "attack_success": bool, "own_norm": bool, "recheck": bool,
                                  "f_x": float, "f_adv": float, "pixel_ratio": float})


    # ------------------------------------------------------------------ configuration
    def validate(self, p: dict[str, Any]) -> None:
        archs, sizes = p["architectures"], p["sizes"]
        caps = parse_size_caps(p["size_caps"])
        require(all(v >= 1 for v in caps.values()), f"size_caps must be >= 1: {caps}")
        require(all(any(s <= caps.get(a, s) for s in sizes) for a in archs),
                f"size_caps {caps} leave an architecture with no size of {sizes}")

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        caps = parse_size_caps(p["size_caps"])
        return [dict(architecture=a, s=s, net=k) for a in p["architectures"]
                for s in p["sizes"] if s <= caps.get(a, s) for k in range(p["nets"])]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Multiply-add equivalents: gradient steps (FMN: max(attack_steps, 30) per start, plus
        2 projection rounds) x norm weights x (per-layer overhead of a batched step + points x
        (forward MACs + work per input entry))."""
        spec = ImageNetSpec(unit["architecture"], unit["s"], p["channels"])
        macs, _, _, layers = spec.forward_profile()
        n = p["channels"] * unit["s"] ** 2
        steps = max(p["attack_steps"], 30) * p["n_starts"] + 2
        norms = sum(NORM_WEIGHT[v] for v in p["norms"])
        return steps * norms * (LAYER_OVERHEAD * layers
                                + p["points"] * (macs + ENTRY_WORK * n))

    def unit_memory(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> int | None:
        """float32 activations of points x starts images kept for the backward pass (x 6 for
        the attacks' copies) + the weights + 100 MiB of working memory."""
        spec = ImageNetSpec(unit["architecture"], unit["s"], p["channels"])
        _, acts, weights, _ = spec.forward_profile()
        return int(4 * (6 * acts * p["points"] * p["n_starts"] + weights) + 100 * 2**20)

    # ------------------------------------------------------------------ work
    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        arch, s, k = unit["architecture"], int(unit["s"]), int(unit["net"])
        keys = (ctx.seed, self.name, arch, s, k)
        spec = ImageNetSpec(arch, s, p["channels"])
        net = spec.build(derive_seed(*keys, "net"), device=ctx.device)
        x = uniform_images(p["points"], s, *keys, "points", channels=p["channels"],
                           device=ctx.device)
        best = closest_adversarial_all_norms(net, x, p["norms"],
                                {v: derive_seed(*keys, "attack", v) for v in p["norms"]},
                                n_starts=p["n_starts"], steps=p["attack_steps"],
                                bounds=(0.0, 1.0))
        x_cpu = x.cpu()
        xn2 = lp_norm(x_cpu.double(), "l2")
        out = []
        for norm, r in best.items():
            xn = lp_norm(x_cpu.double(), norm)
            for i in range(x.shape[0]):
                d = float(r.distance[i])
                out.append(dict(architecture=arch, s=s, n=net.n, net=k, index=i, norm=norm,
                                distance=d, rel_distance=d / float(xn[i]),
                                x_norm=float(xn[i]), x_norm2=float(xn2[i]),
                                success=bool(r.success[i]),
                                attack_success=bool(r.attack_success[i]),
                                own_norm=bool(r.own_norm[i]), recheck=bool(r.recheck[i]),
                                f_x=float(r.f_x[i]), f_adv=float(r.f_adv[i]),
                                pixel_ratio=float(spec.pixel_ratio)))
        return out

    # ------------------------------------------------------------------ results
    @staticmethod
    def _dist(g: pd.DataFrame, column: str = "distance") -> np.ndarray:
        """Distances with +inf where no adversarial example was found."""
        return g[column].where(g.success, np.inf).to_numpy(float)

    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        """One row per (architecture, n, norm): samples, success rates, median and percentile
        bands of the distance and the relative distance, Corollary 1's radii."""
        delta = float(p.get("delta", 0.05))
        rows = []
        for (arch, n, norm), g in df.groupby(["architecture", "n", "norm"], sort=True):
            d, rel = self._dist(g), self._dist(g, "rel_distance")
            pe = Norm(norm).p
            # Corollary 1 + eq. (23) per point (its own ||x||_2), at delta and at 1/2
            r_delta = lp_radius(pe, n, delta, g.pixel_ratio.to_numpy(), g.x_norm2.to_numpy())
            r_half = lp_radius(pe, n, 0.5, g.pixel_ratio.to_numpy(), g.x_norm2.to_numpy())
            row = dict(architecture=arch, s=int(g.s.iloc[0]), n=int(n), norm=norm,
                       samples=len(g), nets=g.net.nunique(), success=float(g.success.mean()),
                       attack_success=float(g.attack_success.mean()),
                       own_norm=float(g.own_norm.mean()), recheck=float(g.recheck.mean()),
                       median=_quantile(d, 0.5), median_rel=_quantile(rel, 0.5),
                       x_norm=float(g.x_norm.median()))
            for q in BANDS:
                row[f"p{round(100 * q):02d}"] = _quantile(d, q)
                row[f"p{round(100 * q):02d}_rel"] = _quantile(rel, q)
            row.update(radius_half=float(np.median(r_half)),
                       radius_half_rel=float(np.median(r_half / g.x_norm.to_numpy())),
                       radius_delta=float(np.median(r_delta)),
                       below_delta=float(np.mean(d < r_delta)),
                       below_half=float(np.mean(d < r_half)),
                       min_ratio=float(np.min(d / r_delta)))
            rows.append(row)
        return pd.DataFrame(rows)

    def fit_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        """Per (architecture, norm, distance kind): the fitted exponent b of median ~ n^b with
        its bootstrap standard error, Remark 5's exponent e and the constant c of c n^e fitted
        with e fixed (geometric mean of median / n^e)."""
        rows = []
        for (arch, norm), g in df.groupby(["architecture", "norm"], sort=True):
            for kind, col in (("distance", "distance"), ("relative", "rel_distance")):
                e = remark5_exponent(Norm(norm).p, relative=kind == "relative")
                cells = []
                for n, h in g.groupby("n", sort=True):
                    v = h.sort_values(["net", "index"])
                    per_net = v.groupby("net").size()
                    if per_net.nunique() != 1:      # unequal points per net: skip bootstrap
                        cells = []
                        break
                    cells.append((float(n), self._dist(v, col).reshape(len(per_net), -1)))
                ns = np.array(sorted(g.n.unique()), float)
                med = np.array([_quantile(self._dist(h, col), 0.5)
                                for _, h in g.groupby("n", sort=True)])
                b, a = loglog_fit(ns, med)
                slopes = bootstrap_median_slopes(
                    cells, BOOTSTRAP, seed=derive_seed(arch, norm, kind) % 2**32) \
                    if cells and min(c[1].shape[0] for c in cells) >= 2 else np.array([])
                se = float(np.std(slopes, ddof=1)) if len(slopes) >= 10 else float("nan")
                ok = np.isfinite(med) & (med > 0)
                c = float(np.exp(np.mean(np.log(med[ok]) - e * np.log(ns[ok])))) \
                    if ok.any() else float("nan")
                rows.append(dict(architecture=arch, norm=norm, kind=kind, sizes=len(ns),
                                 n_min=int(ns.min()), n_max=int(ns.max()), slope=b,
                                 slope_se=se, theory=e, c=c,
                                 # log factor of eq. (16): d ln a_n / d ln n over the range
                                 log_factor=dudley_denominator_exponent(ns.min(), ns.max())))
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_closest import distance_scaling_figure

        t = self.summary_table(df, p)
        f = self.fit_table(df, p)
        return [
            ("Figure 1: median closest-adversarial l_p distance vs n = 3 s^2 (one line per "
             "architecture; light band: 5th-95th percentiles, dark band: 45th-55th as the "
             "paper's error bars), dashed: c n^{1/p - 1/2} (Remark 5, c fitted), dotted: "
             "Corollary 1 + eq. (23) radius r_p(1/2), a lower bound of the median",
             distance_scaling_figure(t, f, folder / "figure1_distance.png", relative=False)),
            ("Figure 2: median relative distance ||delta||_p / ||x||_p vs n (top) and "
             "sqrt(n) ||delta||_p / ||x||_p (bottom, flat if ~ n^{-1/2}); dashed: c n^{-1/2} "
             "fitted; dotted: r_p(1/2) / ||x||_p",
             distance_scaling_figure(t, f, folder / "figure2_relative.png", relative=True)),
        ]

    def fit_standard_errors(self, df: pd.DataFrame, p: Mapping[str, Any]) -> dict[str, float]:
        """Bootstrap SEs of the Figure 1-2 exponents (issue 16's target: <= 0.05)."""
        return {f"{r.norm} {r.architecture} {r.kind}": float(r.slope_se)
                for r in self.fit_table(df, p).itertuples()}

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        delta = float(p.get("delta", 0.05))
        paper = self.profiles["paper"]
        n_paper = int(paper["channels"]) * max(paper["sizes"]) ** 2
        claims = [C.exponent(
            f"Remark 5 / {FIGURE_OF[r.kind]} ~ n^({r.theory:+.1f}) ({r.norm}, {r.architecture})",
            r.slope, r.slope_se, r.theory,
            "fitted exponent {slope:+.3f} +- {se:.3f} (bootstrap SE over networks; {z:+.1f} SE "
            "from {theory:+.1f}) over n = {r.n_min}..{r.n_max} ({r.sizes} sizes); c = {r.c:.4g}; "
            "eq. (16)'s log factor alone would shift the exponent by -{r.log_factor:.2f}",
            "|fitted - Remark 5| <= 2 bootstrap SE (a pure power law; needs >= 3 sizes and >= 2 "
            "nets per cell)", decided=r.sizes >= 3, r=r,
            scale=f"n = {int(paper['channels']) * min(paper['sizes']) ** 2} ... {n_paper} "
                  f"(s = {min(paper['sizes'])} ... {max(paper['sizes'])}), Figures 1-2",
            reached=r.n_max >= n_paper) for r in self.fit_table(df, p).itertuples()]
        for (arch, norm), g in t.groupby(["architecture", "norm"], sort=True):
            total = g.samples.sum()
            found = g.success.mul(g.samples).sum()
            claims.append(C.every(
                f"Section 4: every random input has an adversarial example in [0, 1]^n "
                f"({norm}, {arch})", g.success == 1,
                "verified example found for {found:.0f} of {total} points ({frac:.1%}); by the "
                "{norm} attack itself: {own_attack:.1%}; its own example was the closest for "
                "{own:.1%}",
                "every point has a verified example (found by any of the norms' attacks)",
                scale="every n (Section 4: random inputs of any size)", found=found,
                total=total, frac=found / total, norm=norm,
                own_attack=g.attack_success.mul(g.samples).sum() / total,
                own=g.own_norm.mul(g.samples).sum() / total))
        for arch, g in t.groupby("architecture", sort=True):
            claims.append(C.count(
                f"Measurement check (not a claim of the paper): every reported example is "
                f"adversarial in a second, independent forward pass ({arch})",
                g.recheck.mul(g.samples).sum(), g.success.mul(g.samples).sum(),
                "{passed:.0f} of {total:.0f} examples confirmed; an example fails when it lies "
                "within float32 rounding of the boundary and the second pass (a different batch) "
                "rounds the other way", "all confirmed", scale=ANY_SIZE))
        for (arch, norm), g in t.groupby(["architecture", "norm"], sort=True):
            ratio = g["median"] / g.radius_half
            claims.append(C.every(
                f"Corollary 1 + eq. (23): P(distance < r_p(delta)) <= delta; the median is at "
                f"least r_p(1/2) ({norm}, {arch})",
                C.below_binomial(g.below_delta, delta, g.nets.clip(lower=1))
                & (g.below_half <= 0.5),
                "fraction of points below r_p({delta:g}): max {below:.3f} over {cells} sizes; "
                "below r_p(1/2): max {half:.3f}; smallest distance / r_p({delta:g}) = "
                "{least:.3g}; median / r_p(1/2) between {lo:.3g} and {hi:.3g} (the bound is far "
                "from tight)", "every size: fraction below r_p(delta) <= delta + 2 "
                "sqrt(delta(1-delta)/nets) and fraction below r_p(1/2) <= 1/2",
                scale="every n (Corollary 1 holds at any size for the paper's random nets)",
                delta=delta, below=g.below_delta.max(), half=g.below_half.max(),
                least=g.min_ratio.min(), lo=ratio.min(), hi=ratio.max()))
        return claims
