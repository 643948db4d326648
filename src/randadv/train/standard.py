"""Standard training of a scalar-output network on a binary task, with checkpoints.

De Palma, Kiani, Lloyd, "Adversarial Robustness Guarantees for Random Deep Neural Networks"
(ICML 2021), Section 4.1: the residual network is trained on the binary tasks (MNIST parity,
CIFAR-10 vehicle/animal groups) with Adam, learning rate 1e-4, batch size 32, for 15 (MNIST) or
25 (CIFAR-10) epochs, to > 98% training accuracy. The loss here is the logistic loss
l(y f(x)) of the scalar output f (y in {-1, +1}), i.e. binary cross-entropy on the logit f.

After every epoch ``checkpoint.pt`` (model and optimizer state, epoch, history) is written
atomically into ``checkpoint_dir``; a later call with the same folder resumes after the last
finished epoch. The data order of epoch e comes from ``generator(seed, "order", e)``, so a
resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from randadv.errors import InvalidInputError, StoreError
from randadv.train.lazy import (
    TrainResult,
    epoch_order,
    evaluate,
    logistic_loss,
    scalar_forward,
)
from randadv.train.store import _atomic_write, load_tensors_only

DEFAULT_LR = 1e-4
DEFAULT_BATCH_SIZE = 32


@dataclass
class StandardTrainConfig:
    """Adam (lr 1e-4), batch size 32, ``epochs`` epochs (15 MNIST / 25 CIFAR-10 in the paper).

    Paper:
        De Palma et al. 2021, Section 4.1 (the trained networks of Figures 3, 4).

    Attributes:
        epochs: training epochs; lr: Adam's learning rate; batch_size: the mini-batch size;
        seed: the data order's seed.

    Example:
        >>> from randadv.train import StandardTrainConfig
        >>> StandardTrainConfig().lr, StandardTrainConfig().batch_size
        (0.0001, 32)
    """

    epochs: int = 15
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InvalidInputError(f"epochs and batch_size must be >= 1, got {self.epochs}, "
                                    f"{self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InvalidInputError(f"lr must be > 0, got {self.lr!r}")


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or not x.is_floating_point():
        raise InvalidInputError("x must be a floating-point tensor of shape (N, ...)")
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],):
        raise InvalidInputError(f"y must have shape ({x.shape[0]},)")
    if not bool(((y == 1) | (y == -1)).all()):
        raise InvalidInputError("labels y must be in {-1, +1}")


def train_standard(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   cfg: StandardTrainConfig, checkpoint_dir: str | os.PathLike[str] | None = None,
                   x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                   log: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``model`` (in place; every parameter is trained) with Adam on the logistic loss.

    ``checkpoint_dir``: resume from / write ``checkpoint.pt`` there (a checkpoint written with
    another configuration raises :class:`randadv.errors.StoreError`).

    Paper:
        De Palma et al. 2021, Section 4.1 (Adam, the trained networks of Figures 3, 4).

    Arguments:
        model: trained in place; x, y: training inputs and labels in {-1, +1}; cfg:
        :class:`StandardTrainConfig`; checkpoint_dir: as above (None: no checkpoints);
        x_test, y_test: optional test set; log: optional progress callback.

    Returns:
        :class:`TrainResult`.

    Example:
        >>> import torch
        >>> from randadv.nets import RandomFCNet, set_trainable
        >>> from randadv.train import StandardTrainConfig, train_standard
        >>> net = set_trainable(RandomFCNet(4, channels=1, hidden=(8,)))
        >>> x = net.sample_inputs(32, "x"); y = torch.where(x[:, 0, 0, 0] > 0.5, 1.0, -1.0)
        >>> r = train_standard(net, x, y, StandardTrainConfig(epochs=2, lr=1e-2))
        >>> r.epochs, 0.0 <= r.train_acc <= 1.0
        (2.0, True)
    """
    _check(x, y)
    t0 = time.perf_counter()
    for prm in model.parameters():
        prm.requires_grad_(True)
    params = [prm for prm in model.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    dev = params[0].device
    dtype = params[0].dtype
    x, y = x.to(dev, dtype), y.to(dev, dtype)
    start, history, steps = 0, [], 0
    ckpt = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir is not None else None
    cfg_dict = asdict(cfg)
    if ckpt is not None and ckpt.is_file():
        state = load_tensors_only(ckpt, dev)
        if state.get("config") != cfg_dict or state.get("n") != x.shape[0]:
            raise StoreError(f"{ckpt} was written by another training configuration "
                             f"({state.get('config')}, n={state.get('n')})")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, history, steps = state["epoch"], state["history"], state["steps"]
    n = x.shape[0]
    model.train()
    for epoch in range(start, cfg.epochs):
        order = epoch_order(n, cfg.seed, epoch).to(dev)
        for i in range(0, n, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = logistic_loss(y[idx] * scalar_forward(model, x[idx])).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        tl, ta = evaluate(model, x, y, batch=512)
        history.append(dict(epoch=epoch + 1, steps=steps, train_loss=tl, train_acc=ta))
        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            state = dict(config=cfg_dict, n=n, epoch=epoch + 1, steps=steps, history=history,
                         model=model.state_dict(), optimizer=opt.state_dict())
            _atomic_write(ckpt, lambda p, s=state: torch.save(s, p))
        if log:
            log(f"epoch {epoch + 1}: loss {tl:.4g}, train acc {ta:.4f}")
    model.eval()
    for prm in params:
        prm.requires_grad_(False)
    train_loss, train_acc = evaluate(model, x, y, batch=512)
    test_acc = float("nan")
    if x_test is not None and y_test is not None:
        _check(x_test, y_test)
        test_acc = evaluate(model, x_test.to(dev, dtype), y_test.to(dev, dtype), batch=512)[1]
    result = TrainResult(steps=steps, epochs=float(cfg.epochs), stop_reason="epochs",
                         max_deviation=float("nan"), radius=float("nan"), train_loss=train_loss,
                         train_acc=train_acc, test_acc=test_acc,
                         seconds=time.perf_counter() - t0, history=history)
    if ckpt is not None:
        _atomic_write(ckpt.parent / "result.json",
                      lambda p: p.write_text(json.dumps(result.to_dict(), default=float)))
    return result
