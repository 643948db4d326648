"""Shared by the lazy-training experiments: data loading (memoised), subsampling, the model
cache (its folder, its key, the one train-or-load path), the exact attack of a trained net and
the per-model columns of their tables."""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from randadv.attacks import smallest_flip_step
from randadv.attacks.result import FlipStepResult
from randadv.data import load_binary_mnist
from randadv.framework import Param, UnitContext, require
from randadv.nets.seeding import derive_seed, generator
from randadv.train.lazy import TrainResult
from randadv.train.store import ModelCache

MNIST_SIDE = 28
MNIST01_SIZES = {"train": 12665, "test": 2115}     # zeros and ones in the MNIST files


def sample_counts(p: dict[str, Any] | Any) -> tuple[int, int]:
    """(n_train, n_test) a unit uses: the ``n_train`` / ``n_test`` params, 0 meaning all of
    MNIST 0 vs 1 (for the cost models, which run before any data is read)."""
    return (p["n_train"] or MNIST01_SIZES["train"], p["n_test"] or MNIST01_SIZES["test"])


def mnist_training(lr: float, max_epochs: int, epochs_help: str, n_train: int, n_test: int
                   ) -> dict[str, Param]:
    """The parameters the lazy-training experiments share (a model trained on MNIST 0 vs 1):
    data and model folders, training seeds, learning rate, batch size, epochs, sample counts."""
    return dict(data_dir=Param(""), model_dir=Param(""), seeds=Param(1, min=1),
                lr=Param(lr, gt=0), batch_size=Param(64, min=1),
                max_epochs=Param(max_epochs, epochs_help, min=1),
                n_train=Param(n_train, min=0), n_test=Param(n_test, min=0))


def side_of(d: int) -> int:
    """s with s^2 = d (the images are downsampled to s x s)."""
    s = math.isqrt(int(d))
    return s


def validate_dims(ds: list[int]) -> None:
    bad = [d for d in ds if d < 1 or side_of(d) ** 2 != d or side_of(d) > MNIST_SIDE]
    require(not bad, f"d must be squares s^2 with 1 <= s <= {MNIST_SIDE} (downsampled MNIST), "
                     f"got {bad}")


@functools.lru_cache(maxsize=32)
def _load(data_dir: str, split: str, side: int, normalize: bool
          ) -> tuple[torch.Tensor, torch.Tensor]:
    return load_binary_mnist(data_dir or None, split, 0, 1, size=side, normalize=normalize)


def mnist01(p: dict[str, Any] | Any, split: str, d: int, normalize: bool, seed: int,
            n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST 0 (y = -1) vs 1 (y = +1) downsampled to d = s^2 pixels, optionally with
    ||x|| = 1; ``n > 0`` keeps a random subset of n samples (the same subset for every d and
    cell: drawn from ``generator(seed, "subset", split, n)``)."""
    x, y = _load(str(p.get("data_dir", "")), split, side_of(d), bool(normalize))
    if 0 < n < x.shape[0]:
        idx = torch.randperm(x.shape[0], generator=generator(seed, "subset", split, n))[:n]
        idx = idx.sort().values
        x, y = x[idx], y[idx]
    return x, y


def model_root(p: dict[str, Any] | Any, ctx: UnitContext) -> Path | None:
    """Where trained models are cached: the ``model_dir`` param, else ``<run folder>/models``
    when the runner tells the unit its output folder, else nowhere (no cache)."""
    if p.get("model_dir"):
        return Path(p["model_dir"])
    out = getattr(ctx, "out", None)
    return Path(out) / "models" if out else None


def exact_flip_steps(net: nn.Module, x: torch.Tensor, device: torch.device, max_eta: float,
                     rows: int) -> FlipStepResult:
    """The exact smallest flipping steps of a trained net at the inputs ``x``, in float64 (a
    copy of the net, the inputs moved to ``device``), ``rows`` inputs at a time (bounded memory
    of the region walks), returned on the CPU; inputs with f = 0 get eta NaN, recorded as not
    flipped."""
    net64 = copy.deepcopy(net).to(torch.float64).eval()
    x64 = x.to(device, torch.float64)
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(0, x64.shape[0], rows):
            parts.append(smallest_flip_step(net64, x64[i:i + rows], max_eta=max_eta,
                                            exact=True).to("cpu"))
    return FlipStepResult.concat(parts)


def train_key(kind: str, p: dict[str, Any] | Any, seed: int, unit_seed: int, net: str,
              order: str, **cell: Any) -> dict[str, Any]:
    """Everything that determines a trained model (the :class:`ModelCache` key): the ``kind``,
    the ``cell``'s values, the seeds of the initial weights and of the sample order
    (``derive_seed(seed, net | order, unit_seed)``), the training parameters and the data."""
    return dict(kind=kind, **cell, net_seed=derive_seed(seed, net, unit_seed),
                order_seed=derive_seed(seed, order, unit_seed), lr=p["lr"],
                batch_size=p["batch_size"], max_epochs=p["max_epochs"], n_train=p["n_train"],
                data_seed=seed, data_dir=p["data_dir"])


def model_cached(p: dict[str, Any] | Any, ctx: UnitContext, key: dict[str, Any]) -> bool:
    """Whether :func:`trained_model` would load the model of ``key`` from the cache of
    :func:`model_root` instead of training it."""
    return ModelCache(model_root(p, ctx)).has(key)


def trained_model(p: dict[str, Any] | Any, ctx: UnitContext, key: dict[str, Any], d: int,
                  normalize: bool, build: Callable[[], nn.Module],
                  fit: Callable[..., TrainResult | tuple[nn.Module, TrainResult]],
                  cache: ModelCache | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A unit's trained model and its training result (a dict): from the model cache (``cache``,
    else the one of :func:`model_root`) under ``key``, else ``fit(build(), x, y, x_test,
    y_test)`` on MNIST 0 vs 1 at d pixels (the training set on ``ctx.device``), cached. ``fit``
    returns the :class:`TrainResult`, or ``(model, result)`` where the model kept is not the
    one built."""
    cache = cache if cache is not None else ModelCache(model_root(p, ctx))

    def train() -> tuple[nn.Module, dict[str, Any]]:
        x, y = mnist01(p, "train", d, normalize, ctx.seed, p["n_train"])
        xt, yt = mnist01(p, "test", d, normalize, ctx.seed, p["n_test"])
        net = build()
        out = fit(net, x.to(ctx.device), y.to(ctx.device), xt, yt)
        model, res = out if isinstance(out, tuple) else (net, out)
        return model, res.to_dict()

    return cache.get_or_train(key, ctx.device, train)


def training_fields(res: dict[str, Any], *names: str) -> dict[str, Any]:
    """The record fields ``names`` of a training result (``TrainResult.to_dict()``): test_acc,
    train_acc, steps, epochs, stop_reason, train_seconds (its ``seconds``) and max_dev_ratio
    (max_deviation over the lazy ball's radius)."""
    fields = dict(test_acc=float(res["test_acc"]), train_acc=float(res["train_acc"]),
                  steps=int(res["steps"]), epochs=float(res["epochs"]),
                  stop_reason=str(res["stop_reason"]), train_seconds=float(res["seconds"]),
                  max_dev_ratio=float(res["max_deviation"]) / float(res["radius"]))
    return {k: fields[k] for k in names}


def left_ball(models: pd.DataFrame) -> str:
    """"k/n": how many of the n models (rows) stopped at the lazy ball's edge."""
    return f"{int((models.stop_reason == 'left_ball').sum())}/{len(models)}"
