"""Two-layer ReLU networks trained in the lazy regime.

"Adversarial Robustness is at Odds with Lazy Training" (NeurIPS 2022), Section 2.1:

    f(x; a, W) = m^-1/2 sum_{s=1}^m a_s relu(w_s . x)                                  (Sec. 2.1)

Definition 2.1 (lazy regime): a_s ~ unif{-1, +1} (fixed, never trained), w_{s,0} ~ N(0, I_d)
(unit variance, *not* 1/d), and W in B_{2,inf}(W_0, C_0 / sqrt(m)), i.e.
max_s ||w_s - w_{s,0}|| <= C_0 / sqrt(m).

Section 5.1 trains W with plain SGD on the logistic loss l(y f(x)) = log(1 + exp(-y f(x))),
learning rate 0.1, and stops as soon as an iterate would leave the lazy ball; the last iterate
inside the ball is returned (:func:`train_lazy_sgd`). The paper does not state the batch size;
:data:`DEFAULT_BATCH_SIZE` is our choice (documented in the experiment's report).

Variants: first-layer biases b_s (Figures 2-3 of the paper use them, Figures 5-6 do not), then
the ball constrains the augmented vector (w_s, b_s); a bias is initialised like PyTorch's
``nn.Linear`` (U(-1/sqrt(d), 1/sqrt(d))), since the paper specifies only w_{s,0}.

The model *is* an ``nn.Sequential(Linear(d, m), ReLU(), Linear(m, 1))`` whose last layer holds
the fixed a / sqrt(m), so :func:`randadv.attacks.as_piecewise_linear` reads it and
:func:`randadv.attacks.smallest_flip_step` computes its smallest flipping step exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.seeding import generator, rademacher

DEFAULT_LR = 0.1            # Section 5.1
DEFAULT_BATCH_SIZE = 64     # not given by the paper (our choice)


class LazyTwoLayerNet(nn.Sequential):
    """f(x) = m^-1/2 sum_s a_s relu(w_s . x [+ b_s]), Definition 2.1; forward: (B, d) -> (B,).

    ``self[0]`` is the trainable first layer (weight W of shape (m, d), rows w_s), ``self[2]``
    the fixed output layer (weight a / sqrt(m), ``requires_grad=False``). The initialisation
    W_0 (and b_0) is kept in buffers ``w0`` (``b0``) so the lazy ball can be checked.

    Arguments:
        d: input dimension.
        m: width (number of hidden units).
        seed: W_0, a and b_0 come from generators seeded by ``(seed, "lazy", ...)``.
        bias: first-layer biases (trainable, inside the ball with w_s).
        dtype, device: of the parameters.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Definition 2.1.

    Example:
        >>> import torch
        >>> from randadv.train import LazyTwoLayerNet
        >>> net = LazyTwoLayerNet(10, 64, seed=0)
        >>> net(torch.randn(3, 10)).shape, net.max_deviation(), net[2].weight.requires_grad
        (torch.Size([3]), 0.0, False)
    """

    def __init__(self, d: int, m: int, seed: int = 0, *, bias: bool = False,
                 dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        for name, v in (("d", d), ("m", m)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"{name} must be a positive int, got {v!r}")
        super().__init__(nn.Linear(d, m, bias=bias), nn.ReLU(), nn.Linear(m, 1, bias=False))
        self.d, self.m, self.seed, self.has_bias = d, m, int(seed), bool(bias)
        w0 = torch.randn(m, d, generator=generator(seed, "lazy", "W0"), dtype=torch.float32)
        a = rademacher(m, seed, "lazy", "a")
        with torch.no_grad():
            self[0].weight.copy_(w0)
            self[2].weight.copy_(a[None, :] / math.sqrt(m))
            if bias:
                bound = 1.0 / math.sqrt(d)
                b0 = (torch.rand(m, generator=generator(seed, "lazy", "b0")) * 2 - 1) * bound
                self[0].bias.copy_(b0)
        self[2].weight.requires_grad_(False)
        self.register_buffer("w0", self[0].weight.detach().clone())
        self.register_buffer("b0", self[0].bias.detach().clone() if bias else None)
        self.to(dtype=dtype, device=device)

    # -- the paper's objects ---------------------------------------------------------------
    @property
    def a(self) -> torch.Tensor:
        """The fixed signs a_s in {-1, +1}."""
        return torch.sign(self[2].weight[0].detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, 0]

    @torch.no_grad()
    def deviation(self) -> torch.Tensor:
        """||w_s - w_{s,0}|| per hidden unit (with the bias: ||(w_s, b_s) - (w_s0, b_s0)||)."""
        return self.lazy_groups()[0].row_sq_deviation().sqrt()

    def max_deviation(self) -> float:
        """||W - W_0||_{2,inf} = max_s ||w_s - w_{s,0}|| (Section 2 notation)."""
        return max_deviation(self)

    def config(self) -> dict:
        return dict(d=self.d, m=self.m, seed=self.seed, bias=self.has_bias)

    def lazy_groups(self) -> list[LazyGroup]:
        """The trained weights, row by row, with their initialisation (see :class:`LazyGroup`)."""
        layer = self[0]
        if self.has_bias:
            return [LazyGroup([layer.weight, layer.bias], [self.w0, self.b0], 1.0)]
        return [LazyGroup([layer.weight], [self.w0], 1.0)]


class LazyGroup:
    """Trained parameters whose rows (one per hidden unit; a bias is one more column) must stay
    within the lazy ball around their initialisation.

    ``scale`` converts the stored (effective) weights to the raw parameters of the NTK
    parameterisation, theta = scale * W: the ball and the SGD step are in raw units, so the
    effective step is ``lr / scale**2 * grad_W`` (scale 1 for the first layer of Definition 2.1;
    sqrt(fan_in) for a hidden layer whose forward multiplies by 1/sqrt(fan_in)).
    """

    def __init__(self, params: list[torch.Tensor], inits: list[torch.Tensor],
                 scale: float) -> None:
        self.params, self.inits, self.scale = params, inits, float(scale)

    @torch.no_grad()
    def row_sq_deviation(self, values: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Squared raw deviation of every row, for ``values`` (default: the parameters)."""
        vals = self.params if values is None else values
        sq = None
        for v, v0 in zip(vals, self.inits, strict=True):
            dv = (v - v0).square()
            dv = dv.sum(dim=1) if dv.dim() == 2 else dv
            sq = dv if sq is None else sq + dv
        return sq * self.scale ** 2


def max_deviation(model: nn.Module) -> float:
    """max over trained rows of the raw deviation from initialisation (||W - W_0||_{2,inf} of
    Section 2, over every lazy group of ``model``)."""
    return math.sqrt(max(float(g.row_sq_deviation().max()) for g in model.lazy_groups()))


def lazy_radius(c0: float, m: int) -> float:
    """The radius C_0 / sqrt(m) of the lazy ball (Definition 2.1).

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Definition 2.1.

    Arguments:
        c0: C_0; m: the width.

    Returns:
        ``C_0 / sqrt(m)``.

    Example:
        >>> from randadv.train import lazy_radius
        >>> lazy_radius(10.0, 100)
        1.0
    """
    return float(c0) / math.sqrt(m)


def logistic_loss(margin: torch.Tensor) -> torch.Tensor:
    """l(y f(x)) = log(1 + exp(-y f(x))), elementwise on margins y f(x).

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 5.1 and Algorithm 1 (the logistic loss l).

    Arguments:
        margin: y f(x), any shape.

    Returns:
        The losses, elementwise.

    Example:
        >>> import torch
        >>> from randadv.train import logistic_loss
        >>> round(logistic_loss(torch.tensor([0.0])).item(), 6)   # log 2
        0.693147
    """
    return F.softplus(-margin)


@dataclass
class LazyTrainConfig:
    """Section 5.1's SGD: learning rate 0.1 on the logistic loss, stop when leaving the ball.

    ``max_epochs`` caps training when the iterates never leave the ball (the paper does not
    say what happens then). The data order of epoch e comes from ``generator(seed, "order", e)``.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 5.1 and Definition 2.1 (R = C_0 / sqrt(m)).

    Attributes:
        c0: C_0; lr: the learning rate; batch_size: the mini-batch size; max_epochs: as
        above; seed: the data order's seed; max_steps: optional cap on SGD steps.

    Example:
        >>> from randadv.train import LazyTrainConfig
        >>> LazyTrainConfig().lr, LazyTrainConfig(c0=5.0).c0
        (0.1, 5.0)
    """

    c0: float = 10.0
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE
    max_epochs: int = 20
    seed: int = 0
    max_steps: int | None = None   # optional cap on SGD steps (stop_reason "max_steps")

    def __post_init__(self) -> None:
        if self.max_steps is not None and self.max_steps < 0:
            raise InvalidInputError(f"max_steps must be >= 0, got {self.max_steps!r}")
        if not (math.isfinite(self.c0) and self.c0 > 0):
            raise InvalidInputError(f"c0 must be > 0, got {self.c0!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InvalidInputError(f"lr must be > 0, got {self.lr!r}")
        if self.batch_size < 1 or self.max_epochs < 1:
            raise InvalidInputError(f"batch_size and max_epochs must be >= 1, got "
                                    f"{self.batch_size}, {self.max_epochs}")


@dataclass
class TrainResult:
    """What a training run did: steps taken, why it stopped, accuracies, deviations.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 5.1 (training stops when an iterate leaves the lazy ball).

    Attributes:
        steps, epochs: SGD steps and epochs done; stop_reason: e.g. ``"left_ball"``;
        max_deviation: max_s ||w_s - w_{s,0}||; radius: the lazy ball's; train_loss,
        train_acc, test_acc: at the end; seconds: wall time; history: per-epoch records.

    Example:
        >>> import torch
        >>> from randadv.train import LazyTrainConfig, LazyTwoLayerNet, train_lazy_sgd
        >>> x = torch.randn(16, 4); y = torch.sign(x[:, 0])
        >>> r = train_lazy_sgd(LazyTwoLayerNet(4, 32, seed=0), x, y, LazyTrainConfig(max_epochs=1))
        >>> r.max_deviation <= r.radius, sorted(r.to_dict())[:3]
        (True, ['epochs', 'history', 'max_deviation'])
    """

    steps: int
    epochs: float                  # epochs completed (fractional at an early stop)
    stop_reason: str               # "left_ball" | "max_epochs" | robust variants (adversarial)
    max_deviation: float           # max_s ||w_s - w_s0|| of the returned weights
    radius: float                  # the ball radius
    train_loss: float
    train_acc: float
    test_acc: float = float("nan")
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def check_data(x: torch.Tensor, y: torch.Tensor, d: int | None = None) -> None:
    """(N, d) finite float inputs and labels y in {-1, +1}."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise InvalidInputError("x must be a floating-point tensor of shape (N, d)")
    if d is not None and x.shape[1] != d:
        raise InvalidInputError(f"x has {x.shape[1]} features, the model expects {d}")
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],):
        raise InvalidInputError(f"y must have shape ({x.shape[0]},)")
    if not bool(torch.isfinite(x).all()):
        raise InvalidInputError("x contains NaN or inf")
    if not bool(((y == 1) | (y == -1)).all()):
        raise InvalidInputError("labels y must be in {-1, +1}")


def scalar_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` as a (B,) tensor (a (B, 1) output is squeezed; anything else raises)."""
    out = model(x)
    if out.dim() == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (x.shape[0],):
        raise InvalidInputError(f"the model must return one scalar per input, got shape "
                                f"{tuple(out.shape)}")
    return out


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch: int = 8192) -> tuple[float, float]:
    """(mean logistic loss, accuracy of sign f(x) = y) over (x, y).

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 5.1 (logistic loss, accuracy of sign f).

    Arguments:
        model: a scalar-output model; x, y: inputs and labels in {-1, +1}; batch: rows per
        forward pass.

    Returns:
        ``(loss, accuracy)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.train import evaluate
        >>> lin = nn.Sequential(nn.Linear(1, 1, bias=False), nn.Flatten(0))
        >>> with torch.no_grad():
        ...     _ = lin[0].weight.fill_(1.0)
        >>> loss, acc = evaluate(lin, torch.tensor([[2.0], [-1.0]]), torch.tensor([1.0, 1.0]))
        >>> acc
        0.5
    """
    if x.shape[0] == 0:
        return float("nan"), float("nan")
    loss, correct = 0.0, 0
    for i in range(0, x.shape[0], batch):
        margin = y[i:i + batch] * scalar_forward(model, x[i:i + batch])
        loss += float(logistic_loss(margin).sum())
        correct += int((margin > 0).sum())
    return loss / x.shape[0], correct / x.shape[0]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: a permutation from ``generator(seed, "order", epoch)``."""
    return torch.randperm(n, generator=generator(seed, "order", epoch))


def train_lazy_sgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   cfg: LazyTrainConfig, x_test: torch.Tensor | None = None,
                   y_test: torch.Tensor | None = None,
                   log: Callable[[str], None] | None = None) -> TrainResult:
    """Section 5.1: SGD on the logistic loss until an iterate would leave B_{2,inf}(W_0, R).

    R = C_0 / sqrt(m). Each step W <- W - lr * grad_W mean_batch l(y f(x)); a step whose
    max_s ||w_s - w_{s,0}|| exceeds C_0 / sqrt(m) is not taken and training stops
    (``stop_reason="left_ball"``), so the returned weights are the last iterate inside the ball.
    Otherwise training stops after ``cfg.max_epochs`` epochs. Deterministic given the model's
    weights and ``cfg.seed`` (data order from a seeded generator). Trains ``model`` in place;
    any model with ``d``, ``m`` and ``lazy_groups()`` (:class:`LazyTwoLayerNet`,
    :class:`randadv.train.lazy_deep.LazyDeepNet`) works.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 5.1 and Definition 2.1.

    Arguments:
        model: the net, trained in place; x, y: training inputs and labels in {-1, +1}; cfg:
        :class:`LazyTrainConfig`; x_test, y_test: optional test set; log: optional progress
        callback.

    Returns:
        :class:`TrainResult`.

    Example:
        >>> import torch
        >>> from randadv.train import LazyTrainConfig, LazyTwoLayerNet, train_lazy_sgd
        >>> x = torch.randn(64, 4); y = torch.sign(x[:, 0])
        >>> net = LazyTwoLayerNet(4, 32, seed=0)
        >>> r = train_lazy_sgd(net, x, y, LazyTrainConfig(c0=1.0, max_epochs=50))
        >>> r.stop_reason, net.max_deviation() <= r.radius   # a small ball is left early
        ('left_ball', True)
    """
    return _train(model, x, y, cfg, x_test, y_test, log, ())[0]


def train_lazy_sgd_c0s(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       cfg: LazyTrainConfig, c0s: Sequence[float],
                       x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                       log: Callable[[str], None] | None = None
                       ) -> dict[float, tuple[nn.Module, TrainResult]]:
    """Section 5.1's training for every C_0 of ``c0s`` from one SGD run.

    C_0 only sets where :func:`train_lazy_sgd` stops: the initialisation, the data order and
    every step are the same for every C_0. So one run with the largest C_0 passes the exit of
    every smaller ball, and a copy of the model taken there (the last iterate inside that ball)
    is the model :func:`train_lazy_sgd` returns for that C_0, bit for bit, with the same
    steps, epochs, stop reason, history and accuracies (only ``seconds`` is the shared run's
    time at the snapshot). ``model`` ends as the largest C_0's model; ``cfg.c0`` is ignored.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 5.1 and Definition 2.1 (R = C_0 / sqrt(m)); Figures 3 and 6 vary C_0.

    Arguments:
        model: the net, trained in place; x, y: training inputs and labels in {-1, +1}; cfg:
        :class:`LazyTrainConfig` (its ``c0`` is replaced by each of ``c0s``); c0s: the C_0
        values (positive, at least one); x_test, y_test: optional test set; log: optional
        progress callback.

    Returns:
        ``{c0: (model, TrainResult)}`` for every C_0 of ``c0s`` (the largest's model is
        ``model`` itself, the others copies).

    Example:
        >>> import torch
        >>> from randadv.train import LazyTrainConfig, LazyTwoLayerNet, train_lazy_sgd_c0s
        >>> x = torch.randn(64, 4); y = torch.sign(x[:, 0])
        >>> out = train_lazy_sgd_c0s(LazyTwoLayerNet(4, 32, seed=0), x, y,
        ...                          LazyTrainConfig(max_epochs=50), [0.5, 1.0])
        >>> [out[c][1].stop_reason for c in (0.5, 1.0)], out[0.5][1].steps <= out[1.0][1].steps
        (['left_ball', 'left_ball'], True)
    """
    vals = sorted({float(c) for c in c0s})
    if not vals:
        raise InvalidInputError("c0s must hold at least one C0")
    top = dataclasses.replace(cfg, c0=vals[-1])   # checks every C0 > 0 below
    for c in vals[:-1]:
        dataclasses.replace(cfg, c0=c)
    main, snaps = _train(model, x, y, top, x_test, y_test, log, vals[:-1])
    snaps[vals[-1]] = (model, main)
    return snaps


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: LazyTrainConfig,
           x_test: torch.Tensor | None, y_test: torch.Tensor | None,
           log: Callable[[str], None] | None, snap_c0s: Sequence[float]
           ) -> tuple[TrainResult, dict[float, tuple[nn.Module, TrainResult]]]:
    """SGD of :func:`train_lazy_sgd` with ``cfg.c0``; for each C_0 of ``snap_c0s`` (each
    smaller than ``cfg.c0``) a copy of the model and its result where that ball is left."""
    check_data(x, y, model.d)
    t0 = time.perf_counter()
    radius = lazy_radius(cfg.c0, model.m)
    smallest = min([radius] + [lazy_radius(c, model.m) for c in snap_c0s])
    if max_deviation(model) > smallest:
        raise InvalidInputError(f"the model starts outside the lazy ball (radius "
                                f"{smallest:.4g})")
    dev = next(model.parameters()).device
    groups = model.lazy_groups()
    x, y = x.to(dev, groups[0].params[0].dtype), y.to(dev, groups[0].params[0].dtype)
    if x_test is not None and y_test is not None:
        check_data(x_test, y_test, model.d)
    params = [prm for g in groups for prm in g.params]
    n, steps, stop = x.shape[0], 0, "max_epochs"
    per_epoch = math.ceil(n / cfg.batch_size)
    epochs_done = float(cfg.max_epochs)
    history: list[dict] = []
    pending = sorted((lazy_radius(c, model.m), float(c)) for c in snap_c0s)
    snaps: dict[float, tuple[nn.Module, TrainResult]] = {}

    def finish(net: nn.Module, r: float, how: str, ep: float) -> TrainResult:
        train_loss, train_acc = evaluate(net, x, y)
        test_acc = float("nan")
        if x_test is not None and y_test is not None:
            test_acc = evaluate(net, x_test.to(dev, x.dtype), y_test.to(dev, x.dtype))[1]
        return TrainResult(steps=steps, epochs=ep, stop_reason=how,
                           max_deviation=max_deviation(net), radius=r,
                           train_loss=train_loss, train_acc=train_acc, test_acc=test_acc,
                           seconds=time.perf_counter() - t0,
                           history=[dict(h) for h in history])

    for epoch in range(cfg.max_epochs):
        order = epoch_order(n, cfg.seed, epoch).to(dev)
        for k, i in enumerate(range(0, n, cfg.batch_size)):
            if cfg.max_steps is not None and steps >= cfg.max_steps:
                stop, epochs_done = "max_steps", epoch + k / per_epoch
                break
            idx = order[i:i + cfg.batch_size]
            loss = logistic_loss(y[idx] * scalar_forward(model, x[idx])).mean()
            grads = iter(torch.autograd.grad(loss, params))
            with torch.no_grad():
                new = [[prm - cfg.lr / g.scale ** 2 * next(grads) for prm in g.params]
                       for g in groups]
                worst = max(float(g.row_sq_deviation(v).max()) for g, v in zip(groups, new,
                                                                               strict=True))
                while pending and math.sqrt(worst) > pending[0][0]:   # a smaller ball's exit
                    r, c = pending.pop(0)
                    net = copy.deepcopy(model)
                    snaps[c] = (net, finish(net, r, "left_ball", epoch + k / per_epoch))
                if math.sqrt(worst) > radius:      # would leave the lazy ball: stop
                    stop, epochs_done = "left_ball", epoch + k / per_epoch
                    break
                for g, vals in zip(groups, new, strict=True):
                    for prm, v in zip(g.params, vals, strict=True):
                        prm.copy_(v)
            steps += 1
        if stop in ("left_ball", "max_steps"):
            break
        tl, ta = evaluate(model, x, y)
        history.append(dict(epoch=epoch + 1, steps=steps, train_loss=tl, train_acc=ta))
        if log:
            log(f"epoch {epoch + 1}: loss {tl:.4g}, acc {ta:.4f}, "
                f"dev/radius {max_deviation(model) / radius:.3f}")
    result = finish(model, radius, stop, epochs_done)
    for r, c in pending:       # balls never left: their run ends as this one
        net = copy.deepcopy(model)
        snaps[c] = (net, dataclasses.replace(result, radius=r,
                                             history=[dict(h) for h in history]))
    return result, snaps
