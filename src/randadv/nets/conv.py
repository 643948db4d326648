"""Random image networks with a scalar output (De Palma, Kiani, Lloyd, ICML 2021, Section 2).

* :class:`RandomImageNet` -- a stack of the seeded layers of :mod:`randadv.nets.layers` ending in
  flatten + fully connected layers; ``forward`` maps images (B, C, H, W) -- or single images
  (C, H, W), or flat vectors (B, n) with ``n = C H W`` -- to ``phi(x)`` of shape (B,) (the
  classifier is ``sign phi(x)``, Section 2 "Output layer"), or (B, K) when built with
  ``num_outputs = K > 1`` (for training on multi-class data).
* :class:`ConvNetBuilder` -- builds such a stack layer by layer, tracking shapes, naming layers
  and deriving each layer's seed keys ``(seed, architecture, layer name)``.
* :class:`LogitDifference` / :class:`TwoLogitModel` -- a two-logit model is the same classifier as
  the single logit ``z_1 - z_0``, and a scalar model ``f`` the same as the logits ``(0, f)``.
* :func:`uniform_images` -- seeded inputs with i.i.d. pixels uniform in [low, high] (Section 4).

The concrete architectures of the paper's experiments are in :mod:`randadv.nets.zoo`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.activations import Activation, TensorFn
from randadv.nets.layers import (
    AvgPool2d,
    Nonlinearity,
    ResidualBlock,
    SeededConv2d,
    SeededLinear,
    SumPool2d,
    _check_dtype,
    set_trainable,
)
from randadv.nets.seeding import generator


def _image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        h = w = image_size
    else:
        h, w = (int(v) for v in image_size)
    if h <= 0 or w <= 0:
        raise InvalidInputError(f"image_size must be positive, got {image_size!r}")
    return h, w


def uniform_images(num: int, image_size: int | Sequence[int], *keys: object, channels: int = 3,
                   low: float = 0.0, high: float = 1.0, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """``num`` images (num, channels, H, W) with i.i.d. pixels uniform in [low, high].

    The paper's inputs (Section 4: "pixel values chosen randomly from the standard uniform
    distribution"). Drawn in float64 on the CPU from ``generator(*keys)`` and rounded to
    ``dtype``: the same keys give the same images in any dtype and on any device; the first
    ``m`` of ``num`` images are the images drawn with ``num = m``.

    Paper:
        De Palma et al. 2021, Section 4 (random inputs with uniform pixels).

    Arguments:
        num: number of images; image_size: H (square) or (H, W); keys: seed keys;
        channels: C; low, high: the interval; dtype, device: of the result.

    Returns:
        A (num, channels, H, W) tensor.

    Example:
        >>> import torch
        >>> from randadv.nets import uniform_images
        >>> x = uniform_images(4, 8, "inputs", 0, channels=1)
        >>> x.shape, bool((x >= 0).all() and (x <= 1).all())
        (torch.Size([4, 1, 8, 8]), True)
        >>> torch.equal(uniform_images(2, 8, "inputs", 0, channels=1), x[:2])
        True
    """
    h, w = _image_size(image_size)
    if num < 0 or channels <= 0:
        raise InvalidInputError(f"need num >= 0 and channels > 0, got {num}, {channels}")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InvalidInputError(f"need finite low < high, got [{low}, {high}]")
    _check_dtype(dtype)
    u = torch.rand(num, channels, h, w, generator=generator(*keys), dtype=torch.float64)
    return (low + (high - low) * u).to(device=device, dtype=dtype)


class RandomImageNet(nn.Module):
    """A random image network ``phi: R^{C x H x W} -> R`` (Section 2), built by
    :class:`ConvNetBuilder`.

    Attributes:
        input_shape: (C, H, W); ``n = C H W`` is the input dimension.
        flatten_shape: (C_f, H_f, W_f) of the layer flattened by the first fully connected layer
            (layer ``L_f`` of eq. (5)).
        pixel_ratio: ``|I^(L_f)| / |I^(0)| = H_f W_f / (H W)``, the architecture's entry in
            Theorem 2 (eq. (14): ``M = pixel_ratio ** -1/2``) and Corollary 1.
        num_outputs: 1 (forward returns (B,)) or K (forward returns (B, K)).
        layers: the ``nn.Sequential`` of named layers; ``config``: the constructor arguments.

    Paper:
        De Palma et al. 2021, Section 2, eqs. (1)-(5).

    Arguments:
        layers, input_shape, flatten_shape, num_outputs, config: the attributes above.
        name: the architecture's name; seed: its seed; dtype: of its parameters.

    Example:
        >>> from randadv.nets import RandomLeNet
        >>> net = RandomLeNet(8, channels=1, width=4, dense=(8,))
        >>> net.n, net.pixel_ratio, net(net.sample_inputs(2, "x")).shape
        (64, 0.0625, torch.Size([2]))
    """

    def __init__(self, layers: nn.Sequential, input_shape: tuple[int, int, int],
                 flatten_shape: tuple[int, int, int], num_outputs: int, *, name: str,
                 seed: int, dtype: torch.dtype, config: dict | None = None) -> None:
        super().__init__()
        self.layers = layers
        self.input_shape = tuple(int(v) for v in input_shape)
        self.flatten_shape = tuple(int(v) for v in flatten_shape)
        self.num_outputs = int(num_outputs)
        self.name = name
        self.seed = int(seed)
        self.dtype = dtype
        self.config = dict(config or {})

    # ------------------------------------------------------------------ structure
    @property
    def n(self) -> int:
        """Input dimension ``n = n_C^(0) |I^(0)|``."""
        c, h, w = self.input_shape
        return c * h * w

    @property
    def channels(self) -> int:
        return self.input_shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        return self.input_shape[1], self.input_shape[2]

    @property
    def pixel_ratio(self) -> float:
        """``|I^(L_f)| / |I^(0)|`` (Theorem 2, eq. (14))."""
        return (self.flatten_shape[1] * self.flatten_shape[2]) / (self.input_shape[1]
                                                                 * self.input_shape[2])

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def trainable(self, flag: bool = True) -> RandomImageNet:
        """Make every weight and bias trainable (``requires_grad=flag``); returns ``self``."""
        set_trainable(self, flag)
        return self

    # ------------------------------------------------------------------ inputs
    def prepare_input(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """``(x as (B, C, H, W) in the net's dtype, was_single_image)``.

        Accepts (B, C, H, W), a single image (C, H, W), or flat vectors (B, n); raises
        :class:`InvalidInputError` otherwise."""
        c, h, w = self.input_shape
        if not isinstance(x, torch.Tensor):
            raise InvalidInputError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise InvalidInputError(f"input must be a floating-point tensor, got dtype {x.dtype}")
        expected = (f"expected images (B, {c}, {h}, {w}), one image ({c}, {h}, {w}) or flat "
                    f"vectors (B, {self.n})")
        single = False
        if x.dim() == 3:
            single, x = True, x.unsqueeze(0)
        elif x.dim() == 2:
            if x.shape[1] != self.n:
                raise InvalidInputError(f"{self.name}: flat input has dimension {x.shape[1]}, "
                                        f"the network's n is {self.n}; {expected}")
            x = x.reshape(x.shape[0], c, h, w)
        if x.dim() != 4:
            raise InvalidInputError(f"{self.name}: input of shape {tuple(x.shape)}; {expected}")
        if x.shape[1] != c:
            raise InvalidInputError(f"{self.name}: input has {x.shape[1]} channels, the network "
                                    f"expects {c}; {expected}, got {tuple(x.shape)}")
        if tuple(x.shape[2:]) != (h, w):
            raise InvalidInputError(f"{self.name}: input images are {x.shape[2]}x{x.shape[3]}, "
                                    f"the network was built for {h}x{w}; {expected}")
        if x.dtype != self.dtype:
            x = x.to(self.dtype)
        return x, single

    def sample_inputs(self, num: int, *keys: object, low: float = 0.0,
                      high: float = 1.0) -> torch.Tensor:
        """:func:`uniform_images` of this network's shape, dtype and device."""
        c, h, w = self.input_shape
        return uniform_images(num, (h, w), *keys, channels=c, low=low, high=high,
                              dtype=self.dtype, device=self.device)

    # ------------------------------------------------------------------ evaluation
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``phi(x)``: (B, C, H, W) or (B, n) -> (B,); (C, H, W) -> (); (B, K) if K outputs."""
        x, single = self.prepare_input(x)
        out = self.layers(x)
        if self.num_outputs == 1:
            out = out.squeeze(-1)
        return out[0] if single else out

    def extra_repr(self) -> str:
        return (f"name={self.name}, seed={self.seed}, input_shape={self.input_shape}, "
                f"flatten_shape={self.flatten_shape}, pixel_ratio={self.pixel_ratio:.4g}")


class ConvNetBuilder:
    """Builds a :class:`RandomImageNet` layer by layer (Section 2's layer types).

    Every layer gets a unique name and the seed keys ``(seed, architecture, name)``; the shape
    (C, H, W) of the current layer is tracked. ``padding``, ``sigma_w2``, ``sigma_b2``, ``bias``,
    ``fan_in`` set the defaults of every weight layer; each call may override them.

    Paper:
        De Palma et al. 2021, Section 2, eqs. (1)-(5) (any combination of the layer types).

    Arguments:
        architecture: the network's name (part of every layer's seed keys).
        input_shape: (C, H, W); seed: the network's seed.
        padding, sigma_w2, sigma_b2, bias, fan_in: defaults of every weight layer (as in
            :class:`randadv.nets.SeededConv2d`).
        dtype, device, requires_grad: of the parameters; activation: the default of ``act()``.

    Example:
        >>> from randadv.nets import ConvNetBuilder
        >>> b = ConvNetBuilder("custom", (3, 16, 16), seed=0)
        >>> b = b.conv(8, 3).act().sum_pool(2).conv(8, 3, padding="periodic").act()
        >>> net = b.build(num_outputs=1)          # flatten + linear output
        >>> net.pixel_ratio, net(net.sample_inputs(2, "x")).shape
        (0.25, torch.Size([2]))
    """

    def __init__(self, architecture: str, input_shape: tuple[int, int, int], seed: int = 0, *,
                 padding: str = "zeros", sigma_w2: float = 2.0, sigma_b2: float = 0.0,
                 bias: bool = True, fan_in: str = "patch", dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, requires_grad: bool = False,
                 activation: str | Activation | TensorFn = "relu") -> None:
        c, h, w = (int(v) for v in input_shape)
        if c <= 0:
            raise InvalidInputError(f"channels must be positive, got {c}")
        _image_size((h, w))
        _check_dtype(dtype)
        self.architecture = architecture
        self.input_shape = (c, h, w)
        self.shape: tuple[int, ...] = (c, h, w)
        self.seed = int(seed)
        self.defaults = dict(sigma_w2=sigma_w2, sigma_b2=sigma_b2, bias=bias, dtype=dtype,
                             device=device, requires_grad=requires_grad)
        self.padding, self.fan_in, self.activation = padding, fan_in, activation
        self.dtype = dtype
        self.modules: OrderedDict[str, nn.Module] = OrderedDict()
        self.flatten_shape: tuple[int, int, int] | None = None
        self._count: dict[str, int] = {}

    # ------------------------------------------------------------------ helpers
    def _name(self, kind: str, name: str | None) -> str:
        if name is None:
            i = self._count.get(kind, 0)
            self._count[kind] = i + 1
            name = f"{kind}{i}"
        if name in self.modules:
            raise InvalidInputError(f"duplicate layer name {name!r}")
        return name

    def keys(self, name: str) -> tuple:
        """Seed keys of the layer ``name``."""
        return (self.seed, self.architecture, name)

    def _spatial(self) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise InvalidInputError("convolution/pooling after a fully connected layer")
        return self.shape  # type: ignore[return-value]

    def make_conv(self, in_channels: int, out_channels: int, kernel_size: int, name: str, *,
                  stride: int = 1, padding: str | None = None, **overrides) -> SeededConv2d:
        """A :class:`SeededConv2d` with this builder's defaults and keys (not added)."""
        kw = {"fan_in": self.fan_in, **self.defaults, **overrides}
        return SeededConv2d(in_channels, out_channels, kernel_size, self.keys(name),
                            stride=stride, padding=padding or self.padding, **kw)

    # ------------------------------------------------------------------ layers
    def conv(self, out_channels: int, kernel_size: int = 3, *, stride: int = 1,
             padding: str | None = None, name: str | None = None, **overrides) -> ConvNetBuilder:
        """Convolution, eqs. (1)-(2)."""
        c, h, w = self._spatial()
        name = self._name("conv", name)
        layer = self.make_conv(c, out_channels, kernel_size, name, stride=stride,
                               padding=padding, **overrides)
        self.modules[name] = layer
        self.shape = (out_channels, *layer.output_size(h, w))
        return self

    def act(self, activation: str | Activation | TensorFn | None = None,
            name: str | None = None) -> ConvNetBuilder:
        """Nonlinear layer tau (Section 2)."""
        self.modules[self._name("act", name)] = Nonlinearity(activation or self.activation)
        return self

    def _pool(self, cls: type, kernel_size: int, name: str | None) -> ConvNetBuilder:
        c, h, w = self._spatial()
        layer = cls(kernel_size)
        self.modules[self._name("pool", name)] = layer
        self.shape = (c, *layer.output_size(h, w))
        return self

    def sum_pool(self, kernel_size: int = 2, name: str | None = None) -> ConvNetBuilder:
        """Sum pooling, eq. (4)."""
        return self._pool(SumPool2d, kernel_size, name)

    def avg_pool(self, kernel_size: int = 2, name: str | None = None) -> ConvNetBuilder:
        """Average pooling (eq. (4) / window size)."""
        return self._pool(AvgPool2d, kernel_size, name)

    def resnet_block(self, out_channels: int, *, stride: int = 1, kernel_size: int = 3,
                     name: str | None = None, **overrides) -> ConvNetBuilder:
        """ResNet v1 block without batch norm (He et al. 2016; eq. (3) skip connection):
        ``relu(conv(relu(conv_s(x))) + shortcut(x))``; the shortcut is the identity, or a 1x1
        convolution with the same stride when the shape changes (projection shortcut)."""
        c, h, w = self._spatial()
        name = self._name("block", name)
        conv1 = self.make_conv(c, out_channels, kernel_size, f"{name}.conv1", stride=stride,
                               **overrides)
        conv2 = self.make_conv(out_channels, out_channels, kernel_size, f"{name}.conv2",
                               **overrides)
        main = nn.Sequential(OrderedDict(conv1=conv1, act=Nonlinearity(self.activation),
                                         conv2=conv2))
        shortcut = None
        if stride != 1 or out_channels != c:
            shortcut = self.make_conv(c, out_channels, 1, f"{name}.shortcut", stride=stride,
                                      **overrides)
        self.modules[name] = ResidualBlock(main, shortcut, Nonlinearity(self.activation))
        self.shape = (out_channels, *conv1.output_size(h, w))
        return self

    def dense(self, out_features: int, name: str | None = None, **overrides) -> ConvNetBuilder:
        """Flatten (first time) + fully connected layer, eq. (5)."""
        if self.flatten_shape is None:
            self.flatten_shape = self._spatial()
        name = self._name("dense", name)
        in_features = math.prod(self.shape)
        self.modules[name] = SeededLinear(in_features, out_features, self.keys(name),
                                          **{**self.defaults, **overrides})
        self.shape = (int(out_features),)
        return self

    def finish(self, num_outputs: int = 1, *, name: str = "output", **overrides) -> dict:
        """Append the linear output layer (``num_outputs`` units); return the keyword arguments
        of :class:`RandomImageNet` (for subclasses: ``super().__init__(**b.finish(1))``)."""
        if num_outputs < 1:
            raise InvalidInputError(f"num_outputs must be >= 1, got {num_outputs}")
        self.dense(num_outputs, name=name, **overrides)
        return dict(layers=nn.Sequential(self.modules), input_shape=self.input_shape,
                    flatten_shape=self.flatten_shape, num_outputs=num_outputs,
                    name=self.architecture, seed=self.seed, dtype=self.dtype)

    def build(self, num_outputs: int = 1, *, config: dict | None = None,
              **overrides) -> RandomImageNet:
        """Append the linear output layer and return the :class:`RandomImageNet`."""
        return RandomImageNet(**self.finish(num_outputs, **overrides), config=config)


class LogitDifference(nn.Module):
    """A two-logit model as one scalar logit ``z_positive - z_negative`` (same classifier).

    Paper:
        none (utility: a two-logit classifier as the scalar-output model the attacks take).

    Arguments:
        model: a module returning (B, K) logits; positive, negative: the two logits' indices.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.nets import LogitDifference
        >>> m = LogitDifference(nn.Linear(4, 2))
        >>> m(torch.zeros(3, 4)).shape
        torch.Size([3])
    """

    def __init__(self, model: nn.Module, positive: int = 1, negative: int = 0) -> None:
        super().__init__()
        self.model, self.positive, self.negative = model, int(positive), int(negative)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x)
        if z.dim() < 2 or z.shape[-1] <= max(self.positive, self.negative):
            raise InvalidInputError(f"LogitDifference needs logits (B, K) with K > "
                                    f"{max(self.positive, self.negative)}, got {tuple(z.shape)}")
        return z[..., self.positive] - z[..., self.negative]


class TwoLogitModel(nn.Module):
    """A scalar model ``f`` as the two logits ``(0, f)``: class 1 iff f > 0 (for libraries that
    expect classifiers, e.g. foolbox / torchattacks); ``f`` of shape (B,) or (B, 1) gives
    (B, 2).

    Paper:
        none (utility: a scalar-output model as a classifier of two logits).

    Arguments:
        model: the scalar model f.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.nets import TwoLogitModel
        >>> two = TwoLogitModel(nn.Sequential(nn.Linear(4, 1), nn.Flatten(0)))
        >>> z = two(torch.ones(3, 4))
        >>> z.shape, z[:, 0].tolist()
        (torch.Size([3, 2]), [0.0, 0.0, 0.0])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.model(x).reshape(x.shape[0])
        return torch.stack([torch.zeros_like(f), f], dim=-1)
