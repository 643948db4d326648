"""Seeded random layers of De Palma, Kiani, Lloyd (ICML 2021), Section 2.

The paper's layer types, each a ``torch.nn.Module`` acting on images (B, C, H, W):

* :class:`SeededConv2d` -- convolution, eqs. (1)-(2) (the nonlinearity of eq. (2) is a separate
  :class:`Nonlinearity` module placed before it); periodic padding (the paper's pixel set
  ``Z_h1 x Z_h2``), zero padding (Keras/TensorFlow ``"same"``) or none, any patch size, any stride;
* :class:`Nonlinearity` -- the elementwise activation tau (ReLU by default, any
  :mod:`randadv.nets.activations` name);
* :class:`ResidualBlock` -- skipped connection, eq. (3): ``post(main(x) + shortcut(x))``;
* :class:`SumPool2d` / :class:`AvgPool2d` -- pooling over disjoint windows, eq. (4) (the paper sums;
  Keras' ``AveragePooling2D``, used by the reference experiments, averages: same thing up to a
  positive factor);
* :class:`SeededLinear` -- flatten + fully connected layer, eq. (5).

Random initialisation (Section 2, last paragraph): weights i.i.d. N(0, sigma_W^2 / fan_in), biases
i.i.d. N(0, sigma_b^2), both per layer. ``fan_in`` is ``C_in * k_h * k_w`` (``fan_in="patch"``,
He / Keras ``VarianceScaling(mode="fan_in")``, the default) or ``C_in`` (``fan_in="channels"``,
literally the paper's ``sigma_W^2 / n_C^(l-1)``). Corollary 1 does not depend on these variances
(Remark 3).

Seeding: every tensor is drawn in float32 on the CPU from ``generator(*keys, "W")`` /
``generator(*keys, "b")`` (:mod:`randadv.nets.seeding`), then cast and moved: a float64 layer holds
exactly the float32 layer's values, on any device, whatever the batch size.

Weights are ``nn.Parameter`` with ``requires_grad=False`` by default (random networks are never
trained by accident; attacks differentiate w.r.t. the input only). ``set_trainable`` /
``RandomImageNet.trainable()`` switch them on for training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.activations import Activation, TensorFn, get_activation
from randadv.nets.seeding import generator

PADDINGS = ("periodic", "zeros", "valid")
FAN_IN_MODES = ("patch", "channels")
DTYPES = (torch.float32, torch.float64)


def _check_dtype(dtype: torch.dtype) -> None:
    if dtype not in DTYPES:
        raise InvalidInputError(f"dtype must be torch.float32 or torch.float64, got {dtype}")


def _check_variance(value: float, name: str, positive: bool) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise InvalidInputError(f"{name} must be finite and {'> 0' if positive else '>= 0'}, "
                                f"got {value}")
    return value


def _pair(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    t = (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))
    if len(t) != 2 or t[0] <= 0 or t[1] <= 0:
        raise InvalidInputError(f"{name} must be a positive int or pair, got {v!r}")
    return t


def seeded_normal(shape: tuple[int, ...], std: float, keys: tuple, *,
                  dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """i.i.d. N(0, std^2) of ``shape``, drawn in float32 on the CPU from ``generator(*keys)``
    and cast to ``dtype`` (so float64 holds the float32 values exactly), then moved."""
    t = torch.empty(shape, dtype=torch.float32)
    if t.numel():
        t.normal_(0.0, 1.0, generator=generator(*keys))
    return (t * std).to(device=device, dtype=dtype)


def _seeded_parameters(layer: nn.Module, weight_shape: tuple[int, ...], fan: int, bias: bool,
                       dtype: torch.dtype, device: torch.device | str | None,
                       requires_grad: bool) -> None:
    """Set ``layer.weight`` ~ N(0, sigma_w2 / fan) of ``weight_shape`` (seed keys
    ``(*layer.keys, "W")``) and ``layer.bias`` ~ N(0, sigma_b2), one per output (the weight's
    first axis; keys ``(*layer.keys, "b")``), or no bias when ``bias`` is False and sigma_b2 = 0;
    ``layer`` already holds ``keys``, ``sigma_w2`` and ``sigma_b2``."""
    w = seeded_normal(weight_shape, math.sqrt(layer.sigma_w2 / fan), (*layer.keys, "W"),
                      dtype=dtype, device=device)
    layer.weight = nn.Parameter(w, requires_grad=requires_grad)
    if bias or layer.sigma_b2 > 0:
        b = seeded_normal((weight_shape[0],), math.sqrt(layer.sigma_b2), (*layer.keys, "b"),
                          dtype=dtype, device=device)
        layer.bias = nn.Parameter(b, requires_grad=requires_grad)
    else:
        layer.register_parameter("bias", None)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow/Keras ``padding="same"`` amounts ``(before, after)`` along one axis.

    Output size ``ceil(size / stride)``; the extra padding goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SeededConv2d(nn.Module):
    """Random convolution, eqs. (1)-(2): ``phi_{i,a} = b_i + sum_{j,b} W_{ij,b} x_{j,a+b}``.

    Arguments:
        in_channels, out_channels: ``n_C^(l-1)``, ``n_C^(l)``.
        kernel_size: patch size ``P^(l)`` (int or (kh, kw)).
        keys: seed keys of the layer, e.g. ``(seed, "resnet", "stage2.block0.conv1")``.
        stride: stride (int or pair).
        padding: ``"periodic"`` (circular, the paper's periodic pixel set), ``"zeros"``
            (TF/Keras ``"same"``: output ``ceil(H / stride)``, extra zero row/column after) or
            ``"valid"`` (no padding). Periodic padding uses the same amounts as ``"zeros"``.
        sigma_w2: weight variance factor: weights ~ N(0, sigma_w2 / fan_in) (2 = He normal).
        sigma_b2: bias variance (0: zero biases).
        bias: whether the layer has a bias (a zero-initialised parameter when ``sigma_b2 == 0``).
        fan_in: ``"patch"`` (C_in * kh * kw) or ``"channels"`` (C_in, the paper's notation).
        dtype, device: of the parameters.
        requires_grad: whether the parameters are trainable.

    Paper:
        De Palma et al. 2021, Section 2, eqs. (1), (2) (weights N(0, sigma_W^2 / n_C)).

    Example:
        >>> import torch
        >>> from randadv.nets import SeededConv2d
        >>> conv = SeededConv2d(1, 3, 3, (0, "doc", "conv"), padding="periodic")
        >>> again = SeededConv2d(1, 3, 3, (0, "doc", "conv"), padding="periodic")
        >>> conv(torch.ones(2, 1, 5, 5)).shape, torch.equal(conv.weight, again.weight)
        (torch.Size([2, 3, 5, 5]), True)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 keys: tuple, *, stride: int | tuple[int, int] = 1, padding: str = "zeros",
                 sigma_w2: float = 2.0, sigma_b2: float = 0.0, bias: bool = True,
                 fan_in: str = "patch", dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, requires_grad: bool = False) -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise InvalidInputError(f"channels must be positive, got {in_channels} -> "
                                    f"{out_channels}")
        if padding not in PADDINGS:
            raise InvalidInputError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if fan_in not in FAN_IN_MODES:
            raise InvalidInputError(f"fan_in must be one of {FAN_IN_MODES}, got {fan_in!r}")
        _check_dtype(dtype)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = padding
        self.sigma_w2 = _check_variance(sigma_w2, "sigma_w2", positive=True)
        self.sigma_b2 = _check_variance(sigma_b2, "sigma_b2", positive=False)
        self.keys = tuple(keys)
        kh, kw = self.kernel_size
        fan = self.in_channels * (kh * kw if fan_in == "patch" else 1)
        self.fan_in = fan
        _seeded_parameters(self, (self.out_channels, self.in_channels, kh, kw), fan, bias,
                           dtype, device, requires_grad)

    def pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        """``(left, right, top, bottom)`` padding for an ``h x w`` input (F.pad order)."""
        if self.padding == "valid":
            return 0, 0, 0, 0
        top, bottom = same_padding(h, self.kernel_size[0], self.stride[0])
        left, right = same_padding(w, self.kernel_size[1], self.stride[1])
        return left, right, top, bottom

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """Spatial size of the output for an ``h x w`` input."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if self.padding == "valid":
            if h < kh or w < kw:
                raise InvalidInputError(f"input {h}x{w} is smaller than the {kh}x{kw} patch "
                                        "of a 'valid' convolution")
            return (h - kh) // sh + 1, (w - kw) // sw + 1
        return -(-h // sh), -(-w // sw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.pads(x.shape[-2], x.shape[-1])
        inside = (0, 0)
        if any(pads):
            if self.padding == "periodic":
                l_, r_, t_, b_ = pads
                if max(t_, b_) > x.shape[-2] or max(l_, r_) > x.shape[-1]:
                    raise InvalidInputError(f"periodic padding {pads} larger than the input "
                                            f"{tuple(x.shape[-2:])}")
                x = F.pad(x, pads, mode="circular")
            elif pads[0] == pads[1] and pads[2] == pads[3]:
                # symmetric zero padding inside the convolution: no padded copy
                inside = (pads[2], pads[0])
            else:
                x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=inside)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}->{self.out_channels}, kernel={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, sigma_w2={self.sigma_w2:g}, "
                f"sigma_b2={self.sigma_b2:g}, fan_in={self.fan_in}")


class SeededLinear(nn.Module):
    """Flatten + fully connected layer, eq. (5) (without the nonlinearity, a separate module).

    Input (B, ...) is flattened to (B, in_features); weights ~ N(0, sigma_w2 / in_features),
    biases ~ N(0, sigma_b2). Output (B, out_features).

    Paper:
        De Palma et al. 2021, Section 2, eq. (5).

    Arguments:
        in_features, out_features: sizes; keys: seed keys of the layer; sigma_w2, sigma_b2:
        weight and bias variance factors; bias: whether there is a bias; dtype, device: of the
        parameters; requires_grad: whether they are trainable.

    Example:
        >>> import torch
        >>> from randadv.nets import SeededLinear
        >>> SeededLinear(12, 2, (0, "doc", "dense"))(torch.ones(5, 3, 2, 2)).shape
        torch.Size([5, 2])
    """

    def __init__(self, in_features: int, out_features: int, keys: tuple, *,
                 sigma_w2: float = 2.0, sigma_b2: float = 0.0, bias: bool = True,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 requires_grad: bool = False) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise InvalidInputError(f"features must be positive, got {in_features} -> "
                                    f"{out_features}")
        _check_dtype(dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.sigma_w2 = _check_variance(sigma_w2, "sigma_w2", positive=True)
        self.sigma_b2 = _check_variance(sigma_b2, "sigma_b2", positive=False)
        self.keys = tuple(keys)
        _seeded_parameters(self, (self.out_features, self.in_features), self.in_features, bias,
                           dtype, device, requires_grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"{self.in_features}->{self.out_features}, sigma_w2={self.sigma_w2:g}, "
                f"sigma_b2={self.sigma_b2:g}")


class Nonlinearity(nn.Module):
    """Elementwise activation tau (Section 2, "nonlinear layer"); ReLU by default.

    Paper:
        De Palma et al. 2021, Section 2, eq. (2).

    Arguments:
        activation: tau (name, :class:`Activation` or callable).

    Example:
        >>> import torch
        >>> from randadv.nets import Nonlinearity
        >>> Nonlinearity()(torch.tensor([-1.0, 3.0])).tolist()
        [0.0, 3.0]
    """

    def __init__(self, activation: str | Activation | TensorFn = "relu") -> None:
        super().__init__()
        self.activation = get_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x)

    def extra_repr(self) -> str:
        return self.activation.name


class _Pool2d(nn.Module):
    """Pooling over disjoint ``k x k`` windows (eq. (4)); trailing rows/columns that do not fill
    a window are dropped (Keras ``AveragePooling2D`` with ``padding="valid"``)."""

    scale_by_area = False

    def __init__(self, kernel_size: int | tuple[int, int] = 2) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        kh, kw = self.kernel_size
        if h < kh or w < kw:
            raise InvalidInputError(f"input {h}x{w} is smaller than the {kh}x{kw} pooling window")
        return h // kh, w // kw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(x, self.kernel_size, self.kernel_size)
        if self.scale_by_area:
            y = y * (self.kernel_size[0] * self.kernel_size[1])
        return y

    def extra_repr(self) -> str:
        return f"kernel={self.kernel_size}"


class SumPool2d(_Pool2d):
    """Sum pooling, eq. (4): ``phi_{i,alpha} = sum_{beta in alpha} phi_{i,beta}``.

    Paper:
        De Palma et al. 2021, Section 2, eq. (4).

    Arguments:
        kernel_size: window (and stride) size.

    Example:
        >>> import torch
        >>> from randadv.nets import SumPool2d
        >>> SumPool2d(2)(torch.ones(1, 1, 4, 4)).tolist()
        [[[[4.0, 4.0], [4.0, 4.0]]]]
    """

    scale_by_area = True


class AvgPool2d(_Pool2d):
    """Average pooling (Keras ``AveragePooling2D``): eq. (4) divided by the window size.

    Paper:
        De Palma et al. 2021, Section 2, eq. (4).

    Arguments:
        kernel_size: window (and stride) size.

    Example:
        >>> import torch
        >>> from randadv.nets import AvgPool2d
        >>> AvgPool2d(2)(torch.ones(1, 1, 4, 4)).tolist()
        [[[[1.0, 1.0], [1.0, 1.0]]]]
    """


class ResidualBlock(nn.Module):
    """Skipped connection, eq. (3): ``post(main(x) + shortcut(x))``.

    ``shortcut`` is the identity when None (the paper's eq. (3)) or a projection (e.g. a 1x1
    strided :class:`SeededConv2d`, as in ResNet v1 when the shape changes); ``post`` is the
    activation after the addition (ResNet v1) or None.

    Paper:
        De Palma et al. 2021, Section 2, eq. (3).

    Arguments:
        main: the residual branch; shortcut: None (identity) or a projection; post: the module
        after the addition, or None.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.nets import ResidualBlock
        >>> block = ResidualBlock(nn.Identity())   # x + x
        >>> block(torch.tensor([1.0, -2.0])).tolist()
        [2.0, -4.0]
    """

    def __init__(self, main: nn.Module, shortcut: nn.Module | None = None,
                 post: nn.Module | None = None) -> None:
        super().__init__()
        self.main = main
        self.shortcut = shortcut
        self.post = post

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.post is None else self.post(y)


def set_trainable(module: nn.Module, flag: bool = True) -> nn.Module:
    """Set ``requires_grad`` of every parameter of ``module``; returns ``module``.

    Paper:
        none (utility: trainable or frozen weights for the trained-vs-random experiments).

    Arguments:
        module: any module; flag: the new ``requires_grad``.

    Returns:
        ``module`` itself.

    Example:
        >>> from torch import nn
        >>> from randadv.nets import set_trainable
        >>> m = set_trainable(nn.Linear(2, 2), False)
        >>> [p.requires_grad for p in m.parameters()]
        [False, False]
    """
    for p in module.parameters():
        p.requires_grad_(flag)
    return module
