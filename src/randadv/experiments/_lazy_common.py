"""Shared by the lazy-training experiments: data loading (memoised), subsampling, the model
cache folder."""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from randadv.attacks import smallest_flip_step
from randadv.attacks.result import FlipStepResult
from randadv.data import load_binary_mnist
from randadv.experiments.base import Param, UnitContext, require
from randadv.nets.seeding import generator

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


def exact_flip_steps(net64: nn.Module, x64: torch.Tensor, max_eta: float, rows: int
                     ) -> FlipStepResult:
    """The exact smallest flipping steps of a trained net (float64) at ``x64``, ``rows``
    inputs at a time (bounded memory of the region walks), on the CPU; inputs with f = 0 get
    eta NaN, recorded as not flipped."""
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(0, x64.shape[0], rows):
            parts.append(smallest_flip_step(net64, x64[i:i + rows], max_eta=max_eta,
                                            exact=True).to("cpu"))
    return FlipStepResult.concat(parts)
