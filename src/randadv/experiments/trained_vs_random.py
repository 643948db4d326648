"""``trained-vs-random``: De Palma, Kiani, Lloyd, "Adversarial Robustness Guarantees for Random
Deep Neural Networks" (ICML 2021), Section 4.1 (Figures 3-4).

Per unit (one network seed, random or trained): the simplified residual network
(:class:`randadv.nets.zoo.RandomResNet`) at its random initialisation, or the same network
trained on the binary task (MNIST parity by default; Adam, lr 1e-4, batch 32), attacked with the
closest-adversarial attack in l1, l2 and linf at random images (uniform pixels), training images
and test images. Records: the distance of the closest adversarial example found (an upper bound
of the true distance, verified by a forward pass).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import torch

from randadv.attacks.all_norms import closest_adversarial_all_norms
from randadv.data import BinaryTask, load_binary_cifar10, load_binary_mnist
from randadv.experiments._lazy_common import model_root
from randadv.experiments._papers import DE_PALMA_2021
from randadv.framework import Claim, Experiment, Param, UnitContext, require
from randadv.framework import claims as C
from randadv.nets.seeding import derive_seed, generator
from randadv.nets.zoo import build_architecture
from randadv.protocol.norms import NORMS, lp_norm
from randadv.stats import percentile_fit
from randadv.train.standard import StandardTrainConfig, train_standard
from randadv.train.store import config_key

INPUT_KINDS = ("random", "train", "test")
CIFAR_GROUPS = BinaryTask.groups((0, 2, 4, 6, 8), (1, 3, 5, 7, 9), "vehicle-animal")


class TrainedVsRandom(Experiment):
    name = "trained-vs-random"
    paper = DE_PALMA_2021
    figures_reproduced = "Section 4.1 (Figures 3-4)"
    summary = ("closest-adversarial distances (l1, l2, linf) of random and trained residual "
               "nets at random, training and test images (MNIST parity; CIFAR-10 with "
               "--data-dir)")
    parameters = dict(
        data_dir=Param(""),
        dataset=Param("mnist", "mnist (parity) or cifar10 (the paper's class split)",
                      choices=("mnist", "cifar10")),
        image_size=Param(28, "image side after downsampling (MNIST up to 28, CIFAR-10 up to 32)"),
        widths=Param([8, 16, 32], "channel widths of the residual stages", min=1),
        blocks_per_stage=Param(1, "residual blocks per stage", min=1),
        nets=Param(2, min=1),
        epochs=Param(2, "training epochs", min=1),
        n_train=Param(4000, min=0),
        lr=Param(1e-3, gt=0),
        batch_size=Param(32, min=1),
        points=Param(20, "points attacked per kind (random inputs, training images, test images)",
                     min=1),
        norms=Param(["l1", "l2", "linf"], choices=NORMS),
        attack_steps=Param(10, min=1),
        n_starts=Param(1, "restarts of the attack per point", min=1),
        model_dir=Param(""),
    )
    profiles = {
        "smoke": dict(image_size=14, widths=[4, 8], nets=1, epochs=1, n_train=256, points=4,
                      norms=["l2", "linf"], attack_steps=5),
        "quick": dict(),
        "paper": dict(widths=[32, 64, 128], blocks_per_stage=3, nets=5, epochs=15, n_train=0,
                      lr=1e-4, points=200, attack_steps=20, n_starts=3),
    }
    record = TypedDict("Record", {"net": int, "state": str, "inputs": str, "norm": str,
                                  "index": int, "distance": float, "success": bool,
                                  "own_norm": bool, "x_norm": float, "f_x": float, "y": int,
                                  "correct": bool, "train_acc": float, "test_acc": float,
                                  "train_seconds": float})


    def validate(self, p: dict[str, Any]) -> None:
        side = 28 if p["dataset"] == "mnist" else 32
        require(4 <= p["image_size"] <= side, f"image_size must be in 4..{side}")

    def units(self, p: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(net=n, state=s) for n in range(p["nets"]) for s in ("random", "trained")]

    def unit_cost(self, unit: Mapping[str, Any], p: Mapping[str, Any]) -> float:
        """Relative: attacks (3 kinds x norms x points) plus, for trained nets, the training
        passes (epochs x n_train images, ~ 3 forward passes per image)."""
        attack = 3 * len(p["norms"]) * p["points"] * p["attack_steps"] * 6 * p["n_starts"]
        train = 3 * p["epochs"] * (p["n_train"] or 60000) if unit["state"] == "trained" else 0
        return float(attack + train) * p["image_size"] ** 2 * sum(p["widths"]) * \
            p["blocks_per_stage"]

    # ------------------------------------------------------------------ work
    def _data(self, p: Mapping[str, Any], split: str) -> tuple[torch.Tensor, torch.Tensor]:
        root = p["data_dir"] or None
        if p["dataset"] == "mnist":
            return load_binary_mnist(root, split, size=p["image_size"],
                                     task=BinaryTask.parity())
        return load_binary_cifar10(root, split, task=CIFAR_GROUPS, size=p["image_size"])

    def _net(self, p: Mapping[str, Any], seed: int, device: torch.device):
        channels = 1 if p["dataset"] == "mnist" else 3
        return build_architecture("resnet", p["image_size"], seed, channels=channels,
                                  widths=tuple(p["widths"]),
                                  blocks_per_stage=p["blocks_per_stage"], device=device)

    def run_unit(self, unit: Mapping[str, Any], p: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        net_seed = derive_seed(ctx.seed, "resnet", unit["net"])
        net = self._net(p, net_seed, ctx.device)
        x_tr, y_tr = self._data(p, "train")
        x_te, y_te = self._data(p, "test")
        if p["n_train"] and p["n_train"] < x_tr.shape[0]:
            idx = torch.randperm(x_tr.shape[0], generator=generator(ctx.seed, "subset",
                                                                   p["n_train"]))
            x_tr, y_tr = x_tr[idx[:p["n_train"]]], y_tr[idx[:p["n_train"]]]
        train_acc = test_acc = seconds = float("nan")
        if unit["state"] == "trained":
            cfg = StandardTrainConfig(epochs=p["epochs"], lr=p["lr"], batch_size=p["batch_size"],
                                      seed=derive_seed(ctx.seed, "order", unit["net"]))
            root = model_root(p, ctx)
            tc = dict(kind="trained-vs-random", net_seed=net_seed, dataset=p["dataset"],
                      image_size=p["image_size"], widths=list(p["widths"]),
                      blocks=p["blocks_per_stage"], n_train=p["n_train"], cfg=vars(cfg))
            ck = root / config_key(tc) if root is not None else None
            res = train_standard(net, x_tr.to(ctx.device), y_tr.to(ctx.device), cfg, ck,
                                 x_te, y_te)
            train_acc, test_acc, seconds = res.train_acc, res.test_acc, res.seconds
        net.eval()
        for prm in net.parameters():
            prm.requires_grad_(False)
        k = p["points"]
        pick = {}
        for kind, (xs, ys) in (("train", (x_tr, y_tr)), ("test", (x_te, y_te))):
            idx = torch.randperm(xs.shape[0], generator=generator(ctx.seed, "points", kind))[:k]
            pick[kind] = (xs[idx], ys[idx].to(torch.int64))
        g = generator(ctx.seed, "random-images")
        pick["random"] = (torch.rand(k, x_tr.shape[1], generator=g),
                          torch.zeros(k, dtype=torch.int64))
        out = []
        for kind in INPUT_KINDS:
            xs, ys = pick[kind]
            xs = xs.to(ctx.device)
            # the distance in norm p: the closest verified example found by any norm's attack
            best = closest_adversarial_all_norms(
                net, xs, p["norms"],
                {norm: derive_seed(ctx.seed, "attack", unit["net"], kind, norm)
                 for norm in p["norms"]},
                n_starts=p["n_starts"], steps=p["attack_steps"])
            x_cpu = xs.cpu()
            for norm, r in best.items():
                dist, own = r.distance, r.own_norm
                xn = lp_norm(x_cpu.double(), norm)
                for i in range(xs.shape[0]):
                    f = float(r.f_x[i])
                    yi = int(ys[i])
                    found = bool(r.success[i])
                    out.append(dict(net=unit["net"], state=unit["state"], inputs=kind,
                                    norm=norm, index=i, distance=float(dist[i]),
                                    success=found, own_norm=bool(own[i]),
                                    x_norm=float(xn[i]), f_x=f,
                                    y=yi, correct=bool(yi != 0 and f * yi > 0),
                                    train_acc=float(train_acc), test_acc=float(test_acc),
                                    train_seconds=float(seconds)))
        return out

    # ------------------------------------------------------------------ results
    def summary_table(self, df: pd.DataFrame, p: Mapping[str, Any]) -> pd.DataFrame:
        rows = []
        for (norm, kind, state), g in df.groupby(["norm", "inputs", "state"], sort=True):
            # a point with no adversarial example found in the box counts as distance +inf
            dist = g.distance.where(g.success, np.inf).to_numpy(float)
            a, b, r2 = percentile_fit(dist)
            rows.append(dict(norm=norm, inputs=kind, state=state, n=len(g),
                             success=float(g.success.mean()), median=float(np.median(dist)),
                             p05=float(np.quantile(dist, 0.05, method="inverted_cdf")),
                             p95=float(np.quantile(dist, 0.95, method="inverted_cdf")),
                             median_rel=float(np.median(dist / g.x_norm.to_numpy(float))),
                             fit_intercept=a, fit_slope=b, fit_r2=r2,
                             train_acc=g.train_acc.mean(), test_acc=g.test_acc.mean()))
        return pd.DataFrame(rows)

    def draw_figures(self, df: pd.DataFrame, p: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        from randadv.report.figures_lazy import median_bars_figure, percentile_figure

        out = []
        for norm, g in df.groupby("norm"):
            path = folder / f"percentiles_{norm}.png"
            percentile_figure(g, path, title=f"{norm}, trained nets (Figure 3)")
            out.append((f"Closest-adversarial {norm} distance by percentile for the trained "
                        f"nets at random, training and test images, with the linear fit over "
                        f"percentiles 0-0.25 (Figure 3)", path))
        t = self.summary_table(df, p)
        path = folder / "median_random_vs_trained.png"
        median_bars_figure(t, path, title=f"{p['dataset']} (Figure 4)")
        out.append(("Median closest-adversarial distance, random vs trained nets, per input "
                    "kind and norm; error bars 5th-95th percentiles (Figure 4)", path))
        return out

    def check_claims(self, df: pd.DataFrame, p: Mapping[str, Any]) -> list[Claim]:
        t = self.summary_table(df, p)
        claims: list[Claim] = []
        paper_nets = dict(scale="Section 4.1: the paper's ResNet (widths 32-64-128, 3 blocks a "
                          "stage) trained to > 98% (15 epochs on the whole training set)",
                          reached=self.reaches_paper(p, "widths", "blocks_per_stage", "epochs")
                          and int(p.get("n_train", 0)) == 0)
        tr = df[df.state == "trained"]
        if len(tr):
            acc = tr.groupby("net").train_acc.first()
            claims.append(C.every(
                "Section 4.1: the networks reach > 98% training accuracy", acc > 0.98,
                "training accuracy per trained net: {train}; test accuracy: {test}",
                "every trained net > 98% on its training set",
                train=", ".join(f"{a:.3f}" for a in acc),
                test=", ".join(f"{a:.3f}" for a in tr.groupby("net").test_acc.first()),
                **paper_nets))
        for norm, g in t.groupby("norm"):
            ratios = []
            for kind, h in g.groupby("inputs"):
                if set(h.state) == {"random", "trained"}:
                    r = float(h[h.state == "trained"]["median"].iloc[0] /
                              h[h.state == "random"]["median"].iloc[0])
                    ratios.append((kind, r))
            if ratios:
                finite = [r for _, r in ratios if np.isfinite(r) and r > 0]
                claims.append(C.every(
                    f"Section 4.1 / Figure 4: training does not change the order of magnitude "
                    f"of the adversarial distance ({norm})", [0.1 <= r <= 10 for r in finite],
                    "median trained / random: {ratios}{note}",
                    "every finite ratio within a factor 10 (medians count a point with no "
                    "adversarial example in [0, 1]^n as +inf)",
                    ratios=", ".join(f"{k}: {r:.3g}" for k, r in ratios),
                    note="" if len(finite) == len(ratios) else " (0/inf/nan: more than half the "
                    "points of one net have no adversarial example found in the box)",
                    **paper_nets))
            rnd = g[(g.inputs == "random") & (g.state == "trained")]
            if len(rnd) and np.isfinite(rnd.fit_r2.iloc[0]):
                claims.append(C.at_least(
                    f"Figure 3: for random images the distance grows linearly with the "
                    f"percentile over percentiles 0-0.25 ({norm}, trained nets)",
                    float(rnd.fit_r2.iloc[0]), 0.9,
                    "linear fit R^2 = {value:.3f} (slope {slope:.4g})", "R^2 >= {bound:g}",
                    slope=float(rnd.fit_slope.iloc[0]), **paper_nets))
        return claims
