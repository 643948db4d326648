"""``segment-crossing``: De Palma, Kiani, Lloyd (ICML 2021), Theorem 1 (second part) and
Corollary 1, eqs. (18)-(19): along a fixed unit direction v, the segment ``x + t v``,
``0 <= t <= r``, meets no classification boundary with probability ``>= 1 - delta`` for
``r <= pi ||x||_2 delta / (2 M + pi)``, ``M = sqrt(|I^(0)| / |I^(L_f)|)`` (Theorem 2). Since
``||x||_2 = Theta(sqrt n)``, "a finite fraction of the l2 distance to the origin can be traveled
without encountering any classification boundary" (Section 1).

Per unit (one family, one input size, one network seed): ``points`` inputs x (uniform in
[0, 1]^n as in the paper, or N(0, I)), ``directions`` random unit directions v per input
(normalised Gaussians), and the first crossing ``t*`` of ``x + t v`` with the boundary,
``0 < t <= t_cap ||x||_2`` (:func:`randadv.attacks.first_boundary_crossing`: the exact region
walk for ReLU MLPs, plain ReLU ``nn.Sequential`` s and residual nets small enough to densify,
the bracketed search for larger residual nets;
every crossing is verified by a forward pass just past it).

Beyond the paper: in the infinite-width limit a bias-free ReLU net is a Gaussian process with
``K(x, y) = ||x|| ||y|| c^L(cos angle(x, y))`` (the iterated arc-cosine map,
:func:`randadv.theory.correlation.relu_correlation_iterates`), so the sign of f at the end of the
segment differs from sign f(x) with probability ``arccos(c^L(cos theta_T)) / pi``: the fraction of
directions that never cross is bounded away from 0 at every n, which is why the median of t* is
+inf and the experiment reports a lower quantile and the median over crossing directions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import torch

from randadv.arch import ImageNetSpec, MLPSpec
from randadv.attacks.segment import first_boundary_crossing
from randadv.experiments._papers import DE_PALMA_2021
from randadv.framework import ANY_SIZE, Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets.seeding import derive_seed, generator
from randadv.stats import loglog_slope, mean_se

INPUT_KINDS = ("uniform", "gaussian")
ZOO = ("fc", "resnet")
DELTA_GRID = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
FC_HIDDEN = 100          # randadv.nets.RandomFCNet: n -> 100 -> 100 -> 1
# the exact walk's fixed cost per region crossed, in multiply-adds (about 3 us here)
REGION_STEP_COST = 1e4


def family_depth(family: str) -> int | None:
    """Hidden ReLU layers of a family whose NNGP kernel is the iterated arc-cosine map (bias-free
    fully connected nets): ``mlpL`` -> L, ``fc`` -> 2; None for residual nets."""
    m = re.fullmatch(r"mlp(\d+)", family)
    if m:
        return int(m.group(1))
    return 2 if family == "fc" else None


def check_family(family: str) -> None:
    require(family in ZOO or (re.fullmatch(r"mlp(\d+)", family) is not None
                              and int(family[3:]) >= 1),
            f"unknown family {family!r}: expected mlpL (L >= 1 hidden layers), fc or resnet")


def quantile_inf(values: np.ndarray, q: float) -> float:
    """The q-quantile (inverted CDF) of values where +inf stands for "no crossing"."""
    v = np.sort(np.asarray(values, float))
    if not len(v):
        return math.nan
    return float(v[max(0, math.ceil(q * len(v)) - 1)])


def _q(values: np.ndarray, level: float) -> float:
    """Quantile without interpolation (the values may hold +inf)."""
    return float(np.quantile(np.asarray(values, float), level, method="inverted_cdf"))


def _cond_median(values: np.ndarray) -> float:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else math.nan


def corollary1_cells(g: pd.DataFrame) -> pd.DataFrame:
    """Per n and delta in ``DELTA_GRID``: the fraction of directions whose first crossing is
    within r(delta) = delta * radius_unit (Corollary 1, eq. (18)), its standard error over
    networks (per-network fractions), and ``z = (fraction - delta) / SE``."""
    rows = []
    for n, h in g.groupby("n", sort=True):
        rel = np.where(h.crossed, h.t_rel.to_numpy(float), np.inf)
        unit = h.radius_unit_rel.to_numpy(float)
        for dl in DELTA_GRID:
            below = pd.Series(rel <= dl * unit, index=h.index)
            per = below.groupby(h.net).mean()
            se = float(per.std(ddof=1) / math.sqrt(len(per))) if len(per) > 1 else 0.0
            frac = float(below.mean())
            rows.append(dict(n=int(n), delta=dl, frac=frac, se=se,
                             z=(frac - dl) / max(se, 1e-12)))
    return pd.DataFrame(rows)


def _slopes(per: dict, ns: np.ndarray, stats: dict, pick: dict) -> dict[str, float]:
    """Log-log slopes vs n of each statistic over the networks ``pick[n]`` (indices into
    ``per[n]``, a list of (t*, t*/||x||) arrays per network)."""
    cat = {n: (np.concatenate([per[n][i][0] for i in pick[n]]),
               np.concatenate([per[n][i][1] for i in pick[n]])) for n in ns}
    x = ns.astype(float)
    return {s: loglog_slope(x, np.array([fn(*cat[n]) for n in ns])) for s, fn in stats.items()}


class SegmentCrossing(Experiment):
    name = "segment-crossing"
    paper = DE_PALMA_2021
    figures_reproduced = "Theorem 1 (second part), Corollary 1 eqs. (18)-(19) (no figure)"
    summary = ("first boundary crossing t* of x + t v along random unit directions vs input "
               "dimension n: t*/||x|| flat in n, P(t* < r(delta)) <= delta")
    parameters = dict(
        families=Param(["mlp1", "mlp2", "fc"],
                       "network families: mlpL (L hidden layers: mlp1, mlp2, mlp4) and the zoo's "
                       "fc, lenet, conv4, resnet"),
        dims=Param([16, 64, 256, 1024, 4096], "input dimensions n of the MLP families"),
        image_sizes=Param([4, 8, 16, 32], "image sides of the zoo families"),
        channels=Param(3, "image channels of the conv families", min=1),
        width=Param(256, "hidden width of the MLP families", min=1),
        resnet_widths=Param([8, 16, 32], "channel widths of the resnet family's stages", min=1),
        resnet_blocks=Param(1, "residual blocks per stage of the resnet family", min=1),
        nets=Param(16, min=2, why="bootstrap over nets"),
        points=Param(8, "inputs per network", min=1),
        directions=Param(8, "random directions per point", min=1),
        inputs=Param("uniform", "input distribution: uniform (box) or gaussian",
                     choices=INPUT_KINDS),
        t_cap=Param(10.0, "farthest crossing searched, in units of ||x||", gt=0),
        q=Param(0.1, "quantile level of the reported crossing distances", gt=0, lt=1),
        n_grid=Param(512,
                     "grid points on [0, t_cap ||x||] per direction (the exact search starts from"
                     " them)", min=16),
        bootstrap=Param(200, "bootstrap resamples for the confidence intervals", min=10),
    )
    profiles = {
        "smoke": dict(families=["mlp1", "fc"], dims=[16, 64, 256], image_sizes=[4, 8], width=64,
                      nets=3, points=4, directions=4, n_grid=256, bootstrap=50),
        "quick": dict(),
        "paper": dict(families=["mlp1", "mlp2", "mlp4", "fc", "resnet"],
                      dims=[16, 64, 256, 1024, 4096, 16384], image_sizes=[12, 16, 20, 24, 28, 32],
                      width=512, resnet_widths=[32, 64, 128], resnet_blocks=3, nets=50, points=10,
                      directions=10, bootstrap=500),
    }
    record = TypedDict("Record", {"family": str, "inputs": str, "n": int, "size": int, "net": int,
                                  "point": int, "direction": int, "x_norm2": float, "f_x": float,
                                  "t": float, "t_rel": float, "crossed": bool, "unverified": bool,
                                  "t_cap_rel": float, "end_flipped": bool, "nngp_end_flip": float,
                                  "radius_unit": float, "radius_unit_rel": float,
                                  "pixel_ratio": float, "exact": bool})


    def validate(self, p: dict[str, Any]) -> None:
        for fam in p["families"]:
            check_family(fam)
        if any(f.startswith("mlp") for f in p["families"]):
            require(len(p["dims"]) >= 1 and all(d >= 2 for d in p["dims"]),
                    f"dims must be integers >= 2, got {p['dims']}")
        if any(f in ZOO for f in p["families"]):
            require(len(p["image_sizes"]) >= 1 and all(s >= 2 for s in p["image_sizes"]),
                    f"image_sizes must be integers >= 2, got {p['image_sizes']}")

    def _sizes(self, family: str, p: Mapping[str, Any]) -> list[int]:
        return list(p["image_sizes"]) if family in ZOO else list(p["dims"])

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(family=f, size=s, net=i) for f in p["families"] for s in self._sizes(f, p)
                for i in range(p["nets"])]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Relative, in multiply-adds: per direction, the first layer once at the ray's origin
        and direction (2 n w), then per region the exact walk crosses (~ depth x width / 8) the
        hidden-to-hidden layers and a fixed cost of :data:`REGION_STEP_COST`; the bracketed
        search (resnet) n_grid forward passes, each stage on its strided image size. Fitted
        on the paper profile's mlp1 / mlp2 / mlp4 / fc units (1,200, measured 2026-12-06):
        the measured / modelled time of its 24 cells spans 1.4x within a family (the cost
        model's family factors take the rest), where the earlier model, which charged the
        first layer at every region, spanned 55x (mlp4's units take 8-12 s at every
        n = 16 ... 16384)."""
        rays = p["points"] * p["directions"]
        fam, s = unit["family"], unit["size"]
        if fam == "resnet":
            # stage i runs on (s / 2^i)^2 pixels (its first block has stride 2)
            w = p["resnet_widths"]
            fwd = 9 * 2 * p["resnet_blocks"] * sum(c * c * (s / 2 ** i) ** 2
                                                   for i, c in enumerate(w))
            return float(rays * fwd * p["n_grid"])
        if fam == "fc":
            n, widths = p["channels"] * s * s, [FC_HIDDEN, FC_HIDDEN]
        else:
            n, widths = s, [p["width"]] * int(fam[3:])
        hidden = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=False))
        regions = 1 + len(widths) * widths[0] / 8
        return float(rays * (2 * n * widths[0] + regions * (hidden + REGION_STEP_COST)))

    # ------------------------------------------------------------------ work
    @staticmethod
    def spec(unit: Mapping[str, Any], p: Mapping[str, Any]) -> MLPSpec | ImageNetSpec:
        """The network of a unit's family and size: ``mlpL`` NN-DEF with He-scaled hidden
        layers on R^n, ``fc`` / ``resnet`` the zoo's nets on C x s x s images."""
        fam, s = unit["family"], int(unit["size"])
        if fam == "fc":
            return ImageNetSpec("fc", s, p["channels"])
        if fam == "resnet":
            return ImageNetSpec("resnet", s, p["channels"],
                                options=dict(widths=tuple(p["resnet_widths"]),
                                             blocks_per_stage=p["resnet_blocks"]))
        return MLPSpec.nn_def([s] + [p["width"]] * int(fam[3:]), hidden_gain=2.0)

    def _model(self, spec: MLPSpec | ImageNetSpec, seed: int, device: torch.device):
        """(model, input shape): fc as its plain ``nn.Sequential`` in float64, resnet in
        float32, mlpL in float64."""
        if isinstance(spec, MLPSpec):
            return spec.build(seed, dtype=torch.float64, device=device), (spec.n,)
        if spec.name == "fc":
            return spec.plain(seed, dtype=torch.float64, device=device), spec.input_shape
        return spec.build(seed, dtype=torch.float32, device=device), spec.input_shape

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        fam, size, k = unit["family"], unit["size"], unit["net"]
        spec = self.spec(unit, p)
        model, shape = self._model(spec, derive_seed(ctx.seed, "net", fam, size, k), ctx.device)
        pixel_ratio = spec.pixel_ratio
        dtype = torch.float32 if fam == "resnet" else torch.float64
        n = math.prod(shape)
        m, nd = p["points"], p["directions"]
        g = generator(ctx.seed, "inputs", fam, size, k, p["inputs"])
        if p["inputs"] == "uniform":
            x = torch.rand((m, *shape), generator=g, dtype=torch.float64)
        else:
            x = torch.randn((m, *shape), generator=g, dtype=torch.float64)
        v = torch.randn((m * nd, *shape), generator=g, dtype=torch.float64)
        v = v / v.reshape(m * nd, -1).norm(dim=1).view(-1, *([1] * len(shape)))
        xs = x.repeat_interleave(nd, dim=0)
        x_norm = xs.reshape(m * nd, -1).norm(dim=1)
        cap = p["t_cap"] * x_norm
        xs_d, v_d = xs.to(ctx.device, dtype), v.to(ctx.device, dtype)
        r = first_boundary_crossing(model, xs_d, v_d, float(cap.max()), n_grid=p["n_grid"])
        t = r.t.double().cpu()
        found = torch.isfinite(t) & (t <= cap)
        crossed = found & r.crossed.cpu()
        ends = xs + cap.view(-1, *([1] * len(shape))) * v
        with torch.no_grad():
            f_end = model(ends.to(ctx.device, dtype)).reshape(-1).double().cpu()
        f_x = r.f_x.double().cpu()
        end_flipped = torch.sign(f_end) != torch.sign(f_x)
        if family_depth(fam) is not None:
            xf, ef = xs.reshape(m * nd, -1), ends.reshape(m * nd, -1)
            cos = ((xf * ef).sum(1) / (x_norm * ef.norm(dim=1))).clamp(-1, 1).numpy()
            nngp = np.arccos(np.clip(spec.output_correlation(cos), -1, 1)) / math.pi
        else:
            nngp = np.full(m * nd, math.nan)
        unit_rel = 2.0 * float(spec.corollary1_segment_radius(0.5, 1.0))
        recs = []
        for j in range(m * nd):
            xn = float(x_norm[j])
            tj = float(t[j]) if bool(crossed[j]) else math.nan
            recs.append(dict(family=fam, inputs=p["inputs"], n=n, size=size, net=k,
                             point=j // nd, direction=j % nd, x_norm2=xn, f_x=float(f_x[j]),
                             t=tj, t_rel=tj / xn, crossed=bool(crossed[j]),
                             unverified=bool(found[j] and not crossed[j]),
                             t_cap_rel=float(p["t_cap"]), end_flipped=bool(end_flipped[j]),
                             nngp_end_flip=float(nngp[j]), radius_unit=unit_rel * xn,
                             radius_unit_rel=unit_rel, pixel_ratio=float(pixel_ratio),
                             exact=bool(r.exact)))
        return recs

    # ------------------------------------------------------------------ results
    @staticmethod
    def _t_inf(g: pd.DataFrame, rel: bool = False) -> np.ndarray:
        col = g.t_rel if rel else g.t
        return np.where(g.crossed, col.to_numpy(float), np.inf)

    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        q = float(p.get("q", 0.1))
        n_boot = int(p.get("bootstrap", 200))
        rows = []
        for (fam, kind, n), g in df.groupby(["family", "inputs", "n"], sort=True):
            t_all, rel_all = self._t_inf(g), self._t_inf(g, rel=True)
            boot_t, boot_rel = self._bootstrap(g, q, n_boot, (fam, kind, n))
            per_net_end = g.end_flipped.groupby(g.net).mean()
            rows.append(dict(
                family=fam, inputs=kind, n=int(n), nets=g.net.nunique(), rays=len(g),
                x_norm_median=float(g.x_norm2.median()),
                crossed_frac=float(g.crossed.mean()),
                t_q=quantile_inf(t_all, q),
                t_q_lo=_q(boot_t, 0.05), t_q_hi=_q(boot_t, 0.95),
                t_cond_median=_cond_median(t_all),
                rel_q=quantile_inf(rel_all, q),
                rel_q_lo=_q(boot_rel, 0.05),
                rel_q_hi=_q(boot_rel, 0.95),
                rel_cond_median=_cond_median(rel_all),
                radius_unit_rel=float(g.radius_unit_rel.iloc[0]),
                radius_q=float(q * g.radius_unit.median()),
                below_r_q=float((rel_all <= q * g.radius_unit_rel.to_numpy(float)).mean()),
                end_flip=float(g.end_flipped.mean()),
                end_flip_se=float(mean_se(per_net_end)),
                nngp_end_flip=float(g.nngp_end_flip.mean()),
                unverified=int(g.unverified.sum()), exact=bool(g.exact.all())))
        return pd.DataFrame(rows)

    @staticmethod
    def _bootstrap(g: pd.DataFrame, q: float, n_boot: int, key: tuple
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap over networks (resampled with replacement) of the q-quantile of t* and of
        t*/||x||."""
        rng = np.random.default_rng(derive_seed("segment-bootstrap", *key) % 2**32)
        nets = np.sort(g.net.unique())
        by = {k: (SegmentCrossing._t_inf(h), SegmentCrossing._t_inf(h, rel=True))
              for k, h in g.groupby("net")}
        bt, br = np.empty(n_boot), np.empty(n_boot)
        for b in range(n_boot):
            pick = rng.choice(nets, size=len(nets), replace=True)
            bt[b] = quantile_inf(np.concatenate([by[k][0] for k in pick]), q)
            br[b] = quantile_inf(np.concatenate([by[k][1] for k in pick]), q)
        return bt, br

    def exponents(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        """Per (family, inputs): log-log slopes vs n of the q-quantile of t* (``t_q``), of the
        median of t* over crossing directions (``t_cond``) and of the q-quantile of t*/||x||
        (``rel_q``); standard errors from a bootstrap over networks (resampled within each n;
        the networks of different n are independent)."""
        q = float(p.get("q", 0.1))
        n_boot = int(p.get("bootstrap", 200))
        stats = {"t_q": lambda t, r: quantile_inf(t, q), "t_cond": lambda t, r: _cond_median(t),
                 "rel_q": lambda t, r: quantile_inf(r, q)}
        rows = []
        for (fam, kind), g in df.groupby(["family", "inputs"], sort=True):
            ns = np.sort(g.n.unique())
            if len(ns) < 2:
                continue
            per = {n: [(self._t_inf(h), self._t_inf(h, rel=True))
                       for _, h in g[g.n == n].groupby("net")] for n in ns}
            est = _slopes(per, ns, stats, {n: range(len(per[n])) for n in ns})
            rng = np.random.default_rng(derive_seed("segment-exponent", fam, kind) % 2**32)
            boots = [_slopes(per, ns, stats,
                             {n: rng.integers(0, len(per[n]), len(per[n])) for n in ns})
                     for _ in range(n_boot)]
            row = dict(family=fam, inputs=kind, n_min=int(ns[0]), n_max=int(ns[-1]),
                       cells=len(ns))
            for s in stats:
                arr = np.array([b[s] for b in boots], float)
                arr = arr[np.isfinite(arr)]
                row[f"slope_{s}"] = est[s]
                row[f"se_{s}"] = float(arr.std(ddof=1)) if len(arr) > 1 else math.nan
                row[f"boot_ok_{s}"] = len(arr) / n_boot
            rows.append(row)
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_optimality import segment_cdf_figure, segment_crossing_figure

        t = self.summary_table(df, p)
        q = float(p["q"])
        return [
            (f"First boundary crossing t* along random unit directions vs n. Left: the "
             f"{q:g}-quantile of t* (no crossing within {p['t_cap']:g} ||x|| = +inf; band: "
             "bootstrap 5-95% over nets), the median over crossing directions (squares) and "
             f"Corollary 1's r(delta = {q:g}) = pi ||x|| delta / (2M + pi) (dashed, eq. (18): "
             f"the {q:g}-quantile may not lie below it); dash-dot: slope 1/2. Middle: the same "
             "relative to ||x||_2. Right: the fraction of directions crossing within the cap",
             segment_crossing_figure(t, folder / "segment_crossing.png", q=q, delta=q)),
            ("Empirical CDF of t*/||x||_2 per family, one colour per n (directions without a "
             f"crossing within {p['t_cap']:g} ||x|| stay below 1 at the right edge); dashed: "
             "the Corollary 1 bound P(t* <= s ||x||) <= s (2M + pi) / pi",
             segment_cdf_figure(df, folder / "segment_cdf.png")),
        ]

    def fit_standard_errors(self, df: pd.DataFrame, p: Mapping[str, Any]) -> dict[str, float]:
        """Bootstrap SEs of the t* exponents of Theorem 1."""
        out = {}
        for r in self.exponents(df, p).itertuples():
            out[f"{r.family} {r.inputs} t_q"] = float(r.se_t_q)
            out[f"{r.family} {r.inputs} t_cond"] = float(r.se_t_cond)
        return out

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        q = float(p.get("q", 0.1))
        crossed = int(df.crossed.sum())
        claims: list[Claim] = [C.count(
            "every reported crossing is a verified sign change (forward pass just past t*)",
            crossed, crossed + int(df.unverified.sum()),
            "{passed} verified crossings; {failed} crossings found by the walk failed the "
            "forward-pass check", "no unverified crossing", scale=ANY_SIZE)]
        paper = self.profiles["paper"]

        def paper_n(family: str) -> int:
            if family in ZOO:
                return int(paper["channels"]) * max(paper["image_sizes"]) ** 2
            return max(paper["dims"])
        for r in self.exponents(df, p).itertuples():
            for stat, label in (("t_q", f"the {q:g}-quantile of t*"),
                                ("t_cond", "the median of t* over crossing directions")):
                claims.append(C.exponent(
                    f"Theorem 1 / Corollary 1: t* = Theta(sqrt n) = Theta(||x||_2): the "
                    f"exponent of {label} vs n is 1/2 ({r.family}, {r.inputs} inputs, "
                    f"n = {r.n_min}..{r.n_max})",
                    getattr(r, f"slope_{stat}"), getattr(r, f"se_{stat}"), 0.5,
                    "fitted exponent {slope:.3f} (bootstrap SE {se:.3f}, {ok:.0%} of resamples "
                    "finite); exponent of the {q:g}-quantile of t*/||x||: {rel:.3f} (SE "
                    "{rel_se:.3f})",
                    "|exponent - 1/2| <= 2 SE + {allow:.3f} (an O(n^-1/2) correction at the "
                    "smallest n, e.g. the component of v along x, spread over the log range)",
                    allow=(1 / math.sqrt(r.n_min)) / math.log(r.n_max / r.n_min),
                    scale=f"n -> infinity (the paper profile's n up to {paper_n(r.family)})",
                    reached=r.n_max >= paper_n(r.family), ok=getattr(r, f"boot_ok_{stat}"),
                    q=q, rel=r.slope_rel_q, rel_se=r.se_rel_q))
        t = self.summary_table(df, p)
        for (fam, kind), g in df.groupby(["family", "inputs"], sort=True):
            cells = corollary1_cells(g)
            pooled = {dl: float(h.frac.mean()) for dl, h in cells.groupby("delta")}
            worst = cells.loc[cells.z.idxmax()]
            claims.append(C.every(
                f"Corollary 1, eqs. (18)-(19): P(t* <= r(delta)) <= delta, r(delta) = "
                f"pi ||x||_2 delta / (2M + pi) ({fam}, {kind} inputs, every n)",
                cells.frac <= cells.delta + 2 * cells.se,
                "r(1) = {r1:.3f} ||x||; fraction crossing within r(delta), mean over n: "
                "{pooled}; closest to the bound: n = {n}, delta = {w.delta:g}: {w.frac:.4f} "
                "(SE {w.se:.4f})",
                "in every n: fraction <= delta + 2 SE (SE over networks; the directions of one "
                "net are correlated) for delta in {grid}",
                scale="every n (Corollary 1 is a bound at each size)",
                r1=float(g.radius_unit_rel.iloc[0]), n=int(worst.n), w=worst,
                pooled=", ".join(f"delta={d:g}: {pooled[d]:.4f}"
                                 for d in (0.001, 0.01, 0.1, 0.5, 0.9)),
                grid=", ".join(f"{d:g}" for d in DELTA_GRID)))
            tt = t[(t.family == fam) & (t.inputs == kind)].sort_values("n")
            claims.append(C.reported(
                f"fraction of directions with no crossing within {p.get('t_cap', 10):g} ||x||_2 "
                f"({fam}, {kind} inputs)", "{by_n}",
                "reported (the median of t* is +inf wherever this exceeds 1/2)",
                scale="every n (reported)",
                by_n=C.listing(tt.assign(none=1 - tt.crossed_frac), "n={n}: {none:.2f}")))
            depth = family_depth(fam)
            if depth is not None:
                width = FC_HIDDEN if fam == "fc" else int(p.get("width", 256))
                per = g.end_flipped.groupby(g.net.astype(str) + ":" + g.n.astype(str)).mean()
                se = float(mean_se(per))
                claims.append(C.within(
                    f"beyond the paper: sign f(x + t_cap ||x|| v) != sign f(x) with the NNGP "
                    f"probability arccos(c^L(cos theta)) / pi ({fam}, L = {depth}, {kind} inputs)",
                    float(g.end_flipped.mean()), float(g.nngp_end_flip.mean()),
                    2 * se + depth / width,
                    "measured {value:.3f} (SE {se:.3f} over (net, n) cells) vs NNGP "
                    "{target:.3f}; by n: {by_n}",
                    "|measured - NNGP| <= 2 SE + L/width = {allow:.3f} (finite-width "
                    "correction)",
                    scale="beyond the paper: infinite width (any n; L/width allowance)",
                    se=se, allow=depth / width,
                    by_n=C.listing(tt, "{n}: {end_flip:.2f}")))
        return claims
