"""The random networks of De Palma, Kiani, Lloyd (ICML 2021), Section 4 and its supplementary
experiments, as :class:`randadv.nets.conv.RandomImageNet` s.

Inputs: ``channels`` x s x s images (the paper: 3 channels, s in range(12, 61, 4) for the residual
network, pixels uniform in [0, 1]). Every network maps a batch (B, C, s, s) to ``phi(x)`` of shape
(B,) (the classifier ``sign phi``). The authors' networks (Keras) had two logits; a two-logit head
with i.i.d. Gaussian rows gives the same classifier law as one logit of their difference (a Gaussian
row with twice the variance), and the scale of the output never changes ``sign phi``, so we build
the scalar head directly (:class:`randadv.nets.conv.LogitDifference` wraps a two-logit model).

Weights are untruncated Gaussians N(0, sigma_w2 / fan_in) (Section 2), fan_in = C_in k^2;
``sigma_w2 = 2`` is He normal. (The reference Keras code used ``he_normal`` /
``VarianceScaling(2, "fan_in", "normal")``, which recent Keras versions draw from a truncated normal
of the same variance, and Keras' default Glorot-uniform output layer in the LeNet and 4-layer
nets; these change the weight law slightly, not the construction.)

Convolutions use TensorFlow ``"same"`` zero padding like the reference Keras code
(``padding="periodic"`` gives the paper's periodic pixel set). Biases are zero (``sigma_b2 = 0``)
unless set; with ``bias=True`` they are zero-initialised trainable parameters.

Training: the weights are ``nn.Parameter`` s with ``requires_grad=False``; call ``net.trainable()``
(or pass ``requires_grad=True``) before building an optimiser. ``num_outputs=K`` gives K logits.

Names for :func:`build_architecture` and the CLI: ``"fc"``, ``"lenet"``, ``"conv4"``, ``"resnet"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from randadv.errors import InvalidInputError
from randadv.nets.activations import Activation, TensorFn
from randadv.nets.conv import ConvNetBuilder, RandomImageNet, _image_size

Act = str | Activation | TensorFn


def _builder(name: str, image_size: int | Sequence[int], channels: int, seed: int, *,
             padding: str, sigma_w2: float, sigma_b2: float, bias: bool, dtype: torch.dtype,
             device: torch.device | str | None, requires_grad: bool,
             activation: Act) -> ConvNetBuilder:
    h, w = _image_size(image_size)
    return ConvNetBuilder(name, (channels, h, w), seed, padding=padding, sigma_w2=sigma_w2,
                          sigma_b2=sigma_b2, bias=bias, dtype=dtype, device=device,
                          requires_grad=requires_grad, activation=activation)


def _config(**kw) -> dict:
    """JSON-able constructor arguments (dtype/device as strings)."""
    out = {}
    for k, v in kw.items():
        if isinstance(v, torch.dtype | torch.device):
            v = str(v)
        elif isinstance(v, tuple):
            v = list(v)
        elif callable(v) and not isinstance(v, str):
            v = getattr(v, "name", getattr(v, "__name__", repr(v)))
        out[k] = v
    return out


class RandomFCNet(RandomImageNet):
    """Fully connected network on flattened images: n -> 100 -> 100 -> 1, ReLU.

    As the reference ``FF_img_model`` (hidden_shape [100, 100], He-normal weights, no biases).
    The flattening is at the input (``L_f = 0``), so ``pixel_ratio = 1``.

    Paper:
        De Palma et al. 2021, Section 4 and Figures 1, 2 (the fully connected net).

    Arguments:
        image_size: H (square) or (H, W); channels: C; seed: the network's seed; hidden: the
        hidden widths; activation, sigma_w2, sigma_b2, bias: as in :class:`SeededLinear`;
        num_outputs: 1 or K; dtype, device, requires_grad: of the parameters.

    Example:
        >>> from randadv.nets import RandomFCNet
        >>> net = RandomFCNet(4, channels=1, hidden=(8, 8))
        >>> net.n, net.pixel_ratio, net(net.sample_inputs(3, "x")).shape
        (16, 1.0, torch.Size([3]))
    """

    def __init__(self, image_size: int | Sequence[int], channels: int = 3, seed: int = 0, *,
                 hidden: Sequence[int] = (100, 100), activation: Act = "relu",
                 sigma_w2: float = 2.0, sigma_b2: float = 0.0, bias: bool = False,
                 num_outputs: int = 1, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, requires_grad: bool = False) -> None:
        hidden = tuple(int(k) for k in hidden)
        cfg = _config(image_size=image_size, channels=channels, seed=seed, hidden=hidden,
                      activation=activation, sigma_w2=sigma_w2, sigma_b2=sigma_b2, bias=bias,
                      num_outputs=num_outputs, dtype=dtype)
        b = _builder("fc", image_size, channels, seed, padding="zeros", sigma_w2=sigma_w2,
                     sigma_b2=sigma_b2, bias=bias, dtype=dtype, device=device,
                     requires_grad=requires_grad, activation=activation)
        for k in hidden:
            b.dense(k).act()
        super().__init__(**b.finish(num_outputs), config=cfg)


class RandomLeNet(RandomImageNet):
    """LeNet-style network: [conv3x3(128)-ReLU-conv3x3(128)-ReLU-avgpool2] x 2, flatten,
    dense(512)-ReLU, dense(512)-ReLU, linear output.

    As the reference ``le_net_model`` (He-normal weights, no biases, 2x2 average pooling with
    stride 2 dropping odd rows/columns). ``pixel_ratio = (s // 4)^2 / s^2``.

    Paper:
        De Palma et al. 2021, Section 4 and Figures 1, 2 (the LeNet-style net).

    Arguments:
        image_size: H (square) or (H, W); channels: C; seed: the network's seed; width: conv
        filters; dense: the dense widths; pool: ``"avg"`` or ``"sum"``; padding, activation,
        sigma_w2, sigma_b2, bias: as in :class:`SeededConv2d`; num_outputs: 1 or K; dtype,
        device, requires_grad: of the parameters.

    Example:
        >>> from randadv.nets import RandomLeNet
        >>> RandomLeNet(12, channels=1, width=4, dense=(8,)).pixel_ratio   # (12 // 4)^2 / 12^2
        0.0625
    """

    def __init__(self, image_size: int | Sequence[int], channels: int = 3, seed: int = 0, *,
                 width: int = 128, dense: Sequence[int] = (512, 512), pool: str = "avg",
                 padding: str = "zeros", activation: Act = "relu", sigma_w2: float = 2.0,
                 sigma_b2: float = 0.0, bias: bool = False, num_outputs: int = 1,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 requires_grad: bool = False) -> None:
        if pool not in ("avg", "sum"):
            raise InvalidInputError(f"pool must be 'avg' or 'sum', got {pool!r}")
        dense = tuple(int(k) for k in dense)
        cfg = _config(image_size=image_size, channels=channels, seed=seed, width=width,
                      dense=dense, pool=pool, padding=padding, activation=activation,
                      sigma_w2=sigma_w2, sigma_b2=sigma_b2, bias=bias, num_outputs=num_outputs,
                      dtype=dtype)
        b = _builder("lenet", image_size, channels, seed, padding=padding, sigma_w2=sigma_w2,
                     sigma_b2=sigma_b2, bias=bias, dtype=dtype, device=device,
                     requires_grad=requires_grad, activation=activation)
        for _stage in range(2):
            b.conv(width, 3).act().conv(width, 3).act()
            b.avg_pool(2) if pool == "avg" else b.sum_pool(2)
        for k in dense:
            b.dense(k).act()
        super().__init__(**b.finish(num_outputs), config=cfg)


class RandomConvNet4(RandomImageNet):
    """Plain convolutional network: 4 x [conv3x3(128)-ReLU], flatten, linear output.

    As the reference ``simple_conv_model`` (stride 1, "same" padding, zero biases). The
    reference used ``VarianceScaling(0.02)``; with zero biases a ReLU net is positively
    homogeneous, so any ``sigma_w2`` gives the same classifier (``phi`` scales by a positive
    constant); we default to He (2.0) for well-scaled outputs. ``pixel_ratio = 1``.

    Paper:
        De Palma et al. 2021, Section 4 and Figures 1, 2 (the plain convolutional net).

    Arguments:
        image_size: H (square) or (H, W); channels: C; seed: the network's seed; width: filters
        per layer; depth: number of conv layers; padding, activation, sigma_w2, sigma_b2, bias:
        as in :class:`SeededConv2d`; num_outputs: 1 or K; dtype, device, requires_grad: of the
        parameters.

    Example:
        >>> from randadv.nets import RandomConvNet4
        >>> net = RandomConvNet4(6, channels=1, width=4, depth=2)
        >>> net.pixel_ratio, net(net.sample_inputs(2, "x")).shape
        (1.0, torch.Size([2]))
    """

    def __init__(self, image_size: int | Sequence[int], channels: int = 3, seed: int = 0, *,
                 width: int = 128, depth: int = 4, padding: str = "zeros",
                 activation: Act = "relu", sigma_w2: float = 2.0, sigma_b2: float = 0.0,
                 bias: bool = True, num_outputs: int = 1, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, requires_grad: bool = False) -> None:
        if depth < 1:
            raise InvalidInputError(f"depth must be >= 1, got {depth}")
        cfg = _config(image_size=image_size, channels=channels, seed=seed, width=width,
                      depth=depth, padding=padding, activation=activation, sigma_w2=sigma_w2,
                      sigma_b2=sigma_b2, bias=bias, num_outputs=num_outputs, dtype=dtype)
        b = _builder("conv4", image_size, channels, seed, padding=padding, sigma_w2=sigma_w2,
                     sigma_b2=sigma_b2, bias=bias, dtype=dtype, device=device,
                     requires_grad=requires_grad, activation=activation)
        for _ in range(depth):
            b.conv(width, 3).act()
        super().__init__(**b.finish(num_outputs), config=cfg)


class RandomResNet(RandomImageNet):
    """The paper's "simplified residual network" (Section 4, Figures 1-4): ResNet-20 v1
    (He et al. 2016) without batch norm and without global average pooling.

    stem conv3x3(32)-ReLU; 3 stages x 3 blocks ``relu(conv3x3(relu(conv3x3(x))) + shortcut(x))``
    with 32, 64, 128 filters; the first block of stages 2 and 3 has stride 2 and a 1x1 stride-2
    projection shortcut; flatten; linear output. He-normal weights (sigma_w2 = 2), zero biases
    (trainable parameters, as Keras' Conv2D). ``pixel_ratio = ceil(ceil(s/2)/2)^2 / s^2``.
    ``widths`` and ``blocks_per_stage`` generalise it (ResNet-(6 b + 2)).

    Paper:
        De Palma et al. 2021, Section 4 and Figures 1-4.

    Arguments:
        image_size: H (square) or (H, W); channels: C; seed: the network's seed; widths:
        filters per stage; blocks_per_stage: b; padding, activation, sigma_w2, sigma_b2, bias:
        as in :class:`SeededConv2d`; num_outputs: 1 or K; dtype, device, requires_grad: of the
        parameters.

    Example:
        >>> from randadv.nets import RandomResNet
        >>> net = RandomResNet(8, channels=1, widths=(4, 4, 4), blocks_per_stage=1)
        >>> net.pixel_ratio, net(net.sample_inputs(2, "x")).shape   # ceil(ceil(8/2)/2)^2 / 8^2
        (0.0625, torch.Size([2]))
    """

    def __init__(self, image_size: int | Sequence[int], channels: int = 3, seed: int = 0, *,
                 widths: Sequence[int] = (32, 64, 128), blocks_per_stage: int = 3,
                 padding: str = "zeros", activation: Act = "relu", sigma_w2: float = 2.0,
                 sigma_b2: float = 0.0, bias: bool = True, num_outputs: int = 1,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 requires_grad: bool = False) -> None:
        widths = tuple(int(k) for k in widths)
        if not widths or blocks_per_stage < 1:
            raise InvalidInputError(f"need >= 1 stage and >= 1 block per stage, got widths="
                                    f"{widths}, blocks_per_stage={blocks_per_stage}")
        cfg = _config(image_size=image_size, channels=channels, seed=seed, widths=widths,
                      blocks_per_stage=blocks_per_stage, padding=padding, activation=activation,
                      sigma_w2=sigma_w2, sigma_b2=sigma_b2, bias=bias, num_outputs=num_outputs,
                      dtype=dtype)
        b = _builder("resnet", image_size, channels, seed, padding=padding, sigma_w2=sigma_w2,
                     sigma_b2=sigma_b2, bias=bias, dtype=dtype, device=device,
                     requires_grad=requires_grad, activation=activation)
        b.conv(widths[0], 3, name="stem").act(name="stem_act")
        for s, width in enumerate(widths):
            for k in range(blocks_per_stage):
                stride = 2 if (s > 0 and k == 0) else 1
                b.resnet_block(width, stride=stride, name=f"stage{s + 1}_block{k + 1}")
        super().__init__(**b.finish(num_outputs), config=cfg)


ARCHITECTURES: dict[str, type[RandomImageNet]] = {
    "fc": RandomFCNet,
    "lenet": RandomLeNet,
    "conv4": RandomConvNet4,
    "resnet": RandomResNet,
}
"""The paper's networks by name: ``"fc"``, ``"lenet"``, ``"conv4"``, ``"resnet"`` -> class.

Paper:
    De Palma et al. 2021, Section 4 and Figures 1, 2.

Example:
    >>> from randadv.nets import ARCHITECTURES
    >>> sorted(ARCHITECTURES)
    ['conv4', 'fc', 'lenet', 'resnet']
"""


def build_architecture(name: str, image_size: int | Sequence[int], seed: int = 0, *,
                       channels: int = 3, dtype: torch.dtype = torch.float32,
                       device: torch.device | str | None = None, **kwargs) -> RandomImageNet:
    """The network ``name`` (``"fc"``, ``"lenet"``, ``"conv4"``, ``"resnet"``) for
    ``channels x image_size x image_size`` inputs; ``kwargs`` go to the class.

    Paper:
        De Palma et al. 2021, Section 4 and Figures 1, 2.

    Arguments:
        name: a key of :data:`ARCHITECTURES`; image_size: H; seed: the network's seed;
        channels: C; dtype, device: of the parameters; kwargs: the class's other arguments.

    Returns:
        The :class:`RandomImageNet`.

    Example:
        >>> from randadv.nets import build_architecture
        >>> net = build_architecture("fc", 4, channels=1, hidden=(8,))
        >>> type(net).__name__, net.n
        ('RandomFCNet', 16)
    """
    try:
        cls = ARCHITECTURES[name]
    except KeyError:
        raise InvalidInputError(f"unknown architecture {name!r}; known: "
                                f"{', '.join(ARCHITECTURES)}") from None
    return cls(image_size, channels, seed, dtype=dtype, device=device, **kwargs)
