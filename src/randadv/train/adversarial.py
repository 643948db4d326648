"""Projected adversarial training inside the lazy ball.

"Adversarial Robustness is at Odds with Lazy Training" (NeurIPS 2022), Section 5.2 and
Appendix A, Algorithm 1 (Projected Adversarial Training). For epochs t = 1..T_1:

1. (lines 3-6) PGD-l2 adversarial examples of the whole training set against W_{t-1}:
   T_2 = 100 steps of size alpha = 2.5 R / 100, projected onto B_2(x, R) cap [0, 1]^d;
2. (lines 7-10) ceil(n / bs) SGD steps on mini-batches of the adversarial examples,
   W <- W - beta grad_W sum_{i in batch} l(y_i f(x_i')), beta = 0.01 (the *sum* over the
   batch, as written in line 9);
3. (line 11) projection of every w_s onto B_2(w_{s,0}, V) (the B_{2,inf}(W_0, V) ball).

"We stop when the robust training accuracy is not increasing" (Appendix A): the robust
training accuracy of W_{t-1} is measured on the examples of step 1 (the untrained W_0 is not a
candidate: a constant-sign initial net can look "robust" on an unbalanced set); when it fails
to increase ``patience`` times in a row training stops and the trained weights with the best
robust training accuracy are restored. The paper does not give bs; :data:`DEFAULT_BATCH_SIZE`
is our choice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from randadv.attacks.pgd import pgd_l2
from randadv.errors import InvalidInputError
from randadv.train.lazy import (
    LazyTwoLayerNet,
    TrainResult,
    check_data,
    epoch_order,
    evaluate,
    logistic_loss,
)

DEFAULT_LR = 0.01           # beta, Appendix A
DEFAULT_BATCH_SIZE = 64     # bs: not given by the paper (our choice)
DEFAULT_PGD_STEPS = 100     # T_2, Appendix A


@dataclass
class AdversarialTrainConfig:
    """Algorithm 1's parameters: budget R, ball radius V, beta, bs, T_2, T_1 (= max_epochs).

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Algorithm 1 and Appendix A (alpha = 2.5 R / 100, T_2 = 100, beta = 0.01).

    Attributes:
        radius: the budget R; v: the lazy-ball radius V; lr: beta; batch_size: bs;
        pgd_steps: T_2; max_epochs: T_1; patience: epochs without a better robust accuracy
        before stopping; bounds: the input box of the attack (None: none); seed: data order.

    Example:
        >>> from randadv.train import AdversarialTrainConfig
        >>> cfg = AdversarialTrainConfig(radius=0.5, v=1.0)
        >>> cfg.lr, cfg.pgd_steps
        (0.01, 100)
    """

    radius: float                  # R, the perturbation budget ||delta||
    v: float                       # V, radius of B_{2,inf}(W_0, V)
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE
    pgd_steps: int = DEFAULT_PGD_STEPS
    max_epochs: int = 20
    patience: int = 1
    bounds: tuple[float, float] | None = (0.0, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("radius", "v", "lr"):
            val = getattr(self, name)
            if not (isinstance(val, (int, float)) and math.isfinite(val) and val > 0):
                raise InvalidInputError(f"{name} must be a finite number > 0, got {val!r}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1 or \
                self.pgd_steps < 1:
            raise InvalidInputError("batch_size, max_epochs, patience and pgd_steps must be >= 1")


@torch.no_grad()
def project_to_lazy_ball(model: LazyTwoLayerNet, v: float) -> None:
    """Algorithm 1, line 11: W <- P_{B_{2,inf}(W_0, V)}(W), row by row (with the bias, the
    augmented rows (w_s, b_s) are projected).

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Algorithm 1, line 11.

    Arguments:
        model: the net (its first layer is projected in place); v: the radius V.

    Returns:
        None.

    Example:
        >>> import torch
        >>> from randadv.train import LazyTwoLayerNet, project_to_lazy_ball
        >>> net = LazyTwoLayerNet(5, 16, seed=0)
        >>> with torch.no_grad():
        ...     _ = net[0].weight.add_(1.0)        # every row 1 * sqrt(5) from W_0
        >>> project_to_lazy_ball(net, 0.5)
        >>> round(net.max_deviation(), 6)
        0.5
    """
    layer = model[0]
    dw = layer.weight - model.w0
    sq = dw.square().sum(dim=1)
    db = None
    if model.has_bias:
        db = layer.bias - model.b0
        sq = sq + db.square()
    nrm = sq.sqrt()
    scale = torch.where(nrm > v, v / nrm.clamp_min(torch.finfo(nrm.dtype).tiny),
                        torch.ones_like(nrm))
    layer.weight.copy_(model.w0 + dw * scale[:, None])
    if db is not None:
        layer.bias.copy_(model.b0 + db * scale)


def _state(model: LazyTwoLayerNet) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model[0].parameters()]


def train_adversarial(model: LazyTwoLayerNet, x: torch.Tensor, y: torch.Tensor,
                      cfg: AdversarialTrainConfig, x_test: torch.Tensor | None = None,
                      y_test: torch.Tensor | None = None,
                      log: Callable[[str], None] | None = None) -> TrainResult:
    """Algorithm 1 on ``model`` (in place); returns a :class:`TrainResult` whose ``history``
    lists the robust training accuracy per epoch. ``test_acc`` is the clean test accuracy.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Algorithm 1 and Figure 4.

    Arguments:
        model: the net, trained in place; x, y: training inputs and labels in {-1, +1};
        cfg: :class:`AdversarialTrainConfig`; x_test, y_test: optional test set; log:
        optional progress callback.

    Returns:
        :class:`TrainResult` (``history``: robust training accuracy per epoch).

    Example:
        >>> import torch
        >>> from randadv.train import AdversarialTrainConfig, LazyTwoLayerNet, train_adversarial
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(32, 4, generator=g); y = torch.where(x[:, 0] > 0.5, 1.0, -1.0)
        >>> net = LazyTwoLayerNet(4, 16, seed=0)
        >>> cfg = AdversarialTrainConfig(radius=0.05, v=0.5, pgd_steps=5, max_epochs=2)
        >>> r = train_adversarial(net, x, y, cfg)
        >>> net.max_deviation() <= 0.5 + 1e-6, r.epochs <= 2, r.history[0]["epoch"]   # 0: before
        (True, True, 0)
    """
    check_data(x, y, model.d)
    t0 = time.perf_counter()
    dev = next(model.parameters()).device
    dtype = model[0].weight.dtype
    x, y = x.to(dev, dtype), y.to(dev, dtype)
    layer = model[0]
    params = list(layer.parameters())
    project_to_lazy_ball(model, cfg.v)
    n, steps = x.shape[0], 0
    best_acc, best_state, since_best = -1.0, _state(model), 0
    stop, history = "max_epochs", []
    for epoch in range(cfg.max_epochs + 1):
        # lines 3-6: adversarial examples against W_{t-1}; their accuracy = robust train acc
        adv = pgd_l2(model, x, y, cfg.radius, steps=cfg.pgd_steps, bounds=cfg.bounds,
                     keep="last", seed=cfg.seed)
        rob = adv.robust_accuracy
        history.append(dict(epoch=epoch, steps=steps, robust_train_acc=rob))
        if log:
            log(f"epoch {epoch}: robust train acc {rob:.4f}")
        if epoch > 0:     # W_0 (the untrained initialisation) is not a candidate
            if rob > best_acc:
                best_acc, best_state, since_best = rob, _state(model), 0
            else:
                since_best += 1
                if since_best >= cfg.patience:
                    stop = "robust_acc_plateau"
                    break
        if epoch == cfg.max_epochs:
            break
        # lines 7-10: SGD on the adversarial examples (sum over the mini-batch, line 9)
        xa = adv.x_adv.to(dtype)
        order = epoch_order(n, cfg.seed, epoch).to(dev)
        for i in range(0, n, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = logistic_loss(y[idx] * model(xa[idx])).sum()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.sub_(cfg.lr * g)
            steps += 1
        project_to_lazy_ball(model, cfg.v)                 # line 11
    with torch.no_grad():
        for p, s in zip(params, best_state, strict=True):
            p.copy_(s)
    train_loss, train_acc = evaluate(model, x, y)
    test_acc = float("nan")
    if x_test is not None and y_test is not None:
        check_data(x_test, y_test, model.d)
        test_acc = evaluate(model, x_test.to(dev, dtype), y_test.to(dev, dtype))[1]
    epochs = sum(1 for h in history if h["epoch"] > 0)
    return TrainResult(steps=steps, epochs=float(epochs), stop_reason=stop,
                       max_deviation=model.max_deviation(), radius=cfg.v,
                       train_loss=train_loss, train_acc=train_acc, test_acc=test_acc,
                       seconds=time.perf_counter() - t0, history=history)
