"""One description of De Palma et al.'s image networks (:mod:`randadv.nets.zoo`):
:class:`ImageNetSpec`.

From it come the module (``build(seed)``: :func:`randadv.nets.build_architecture` with the
spec's arguments, the same weights for the same seed), its piecewise-linear form
(``plain(seed)``, :func:`randadv.nets.plain.plain_relu_sequential`, for the nets without
residual blocks), the input dimension ``n = C H W`` and the pixel ratio
``|I^(L_f)| / |I^(0)|`` (Theorem 2, eq. (14)), with the radii of
:mod:`randadv.theory.robustness_bounds` that follow from them. The pixel ratio is read from a
one-channel-per-layer copy of the architecture (the spatial shapes do not depend on the
channel counts), so it costs no full-size network.

Parameter names: those of the zoo's classes (``sigma_w2``, ``sigma_b2``: De Palma et al.'s
sigma_w^2, sigma_b^2; ``hidden``, ``width``, ``dense``, ``widths``, ``blocks_per_stage``,
``depth``, ``pool``, ``padding``, ``activation``, ``bias``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from randadv.arch.base import _Radii
from randadv.errors import InvalidInputError
from randadv.nets.activations import get_activation
from randadv.nets.conv import RandomImageNet, _image_size
from randadv.nets.layers import SeededConv2d, SeededLinear
from randadv.nets.plain import plain_relu_sequential
from randadv.nets.zoo import ARCHITECTURES, build_architecture
from randadv.theory.correlation import relu_correlation_iterates

__all__ = ["ImageNetSpec"]

# the build-time arguments of the zoo's classes: not the architecture's
_BUILD_ARGS = ("image_size", "channels", "seed", "dtype", "device", "requires_grad",
               "num_outputs")
# the widths of each architecture: a copy with 1 channel / unit per layer has its spatial shapes
_PROBE = {
    "fc": lambda o: dict(hidden=(1,) * len(tuple(o.get("hidden", (100, 100))))),
    "lenet": lambda o: dict(width=1, dense=(1,) * len(tuple(o.get("dense", (512, 512))))),
    "conv4": lambda o: dict(width=1),
    "resnet": lambda o: dict(widths=(1,) * len(tuple(o.get("widths", (32, 64, 128))))),
}


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class ImageNetSpec(_Radii):
    """One of De Palma et al.'s random image networks (``"fc"``, ``"lenet"``, ``"conv4"``,
    ``"resnet"``: :data:`randadv.nets.ARCHITECTURES`) described once: name, image size,
    channels and the class's other arguments.

    ``build(seed)`` gives the module; ``plain(seed)`` its piecewise-linear form (no residual
    blocks); ``output_correlation`` the fc net's infinite-width correlation; ``n``,
    ``input_shape``, ``pixel_ratio`` and ``lp_radius``, ``corollary1_l1_radius``,
    ``corollary1_segment_radius`` what Corollary 1 and Remark 5 need. Bad names, sizes or
    arguments raise :class:`randadv.errors.InvalidInputError` here.

    Paper:
        De Palma et al. 2021, Section 4 and Figures 1, 2 (the networks); Theorem 2, eq. (14)
        (the pixel ratio).

    Attributes:
        name: a key of :data:`randadv.nets.ARCHITECTURES`.
        image_size: H (square) or (H, W).
        channels: C.
        options: the class's other arguments (``hidden``, ``width``, ``widths``,
            ``blocks_per_stage``, ``depth``, ``dense``, ``pool``, ``padding``,
            ``activation``, ``sigma_w2``, ``sigma_b2``, ``bias``), as a mapping.

    Example:
        >>> import torch
        >>> from randadv.arch import ImageNetSpec
        >>> from randadv.nets import build_architecture
        >>> spec = ImageNetSpec("resnet", 8, channels=1, options=dict(widths=(4, 4, 4)))
        >>> x = torch.rand(2, 1, 8, 8)
        >>> net = build_architecture("resnet", 8, 5, channels=1, widths=(4, 4, 4))
        >>> torch.equal(spec.build(5)(x), net(x)), spec.pixel_ratio, spec.n
        (True, 0.0625, 64)
    """

    name: str
    image_size: int | tuple[int, int]
    channels: int = 3
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in ARCHITECTURES:
            raise InvalidInputError(f"unknown architecture {self.name!r}; known: "
                                    f"{', '.join(ARCHITECTURES)}")
        try:
            size: int | tuple[int, int] = (tuple(int(v) for v in self.image_size)
                                           if isinstance(self.image_size, Sequence)
                                           else int(self.image_size))
        except (TypeError, ValueError):
            raise InvalidInputError(f"image_size must be H or (H, W), got "
                                    f"{self.image_size!r}") from None
        _image_size(size)                               # InvalidInputError if bad
        if int(self.channels) < 1:
            raise InvalidInputError(f"channels must be >= 1, got {self.channels}")
        if not isinstance(self.options, Mapping):
            raise InvalidInputError(f"options must be a mapping, got {self.options!r}")
        known = [p for p in inspect.signature(ARCHITECTURES[self.name]).parameters
                 if p not in _BUILD_ARGS]
        bad = sorted(set(self.options) - set(known))
        if bad:
            raise InvalidInputError(f"{self.name}: unknown options {bad}; known: {known}")
        object.__setattr__(self, "image_size", size)
        object.__setattr__(self, "channels", int(self.channels))
        object.__setattr__(self, "options",
                           {k: _frozen(v) for k, v in sorted(self.options.items())})
        _ = self.pixel_ratio                            # builds the probe: checks the options

    def __hash__(self) -> int:
        return hash((self.name, self.image_size, self.channels, tuple(self.options.items())))

    # ------------------------------------------------------------------ structure
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        h, w = _image_size(self.image_size)
        return self.channels, h, w

    @property
    def n(self) -> int:
        """Input dimension ``n = C H W``."""
        return math.prod(self.input_shape)

    @cached_property
    def pixel_ratio(self) -> float:
        """``|I^(L_f)| / |I^(0)|`` (Theorem 2, eq. (14)), from a one-channel copy."""
        options = dict(self.options)
        options.update(_PROBE[self.name](options))
        probe = build_architecture(self.name, self.image_size, 0, channels=self.channels,
                                   **options)
        return probe.pixel_ratio

    @property
    def piecewise_linear(self) -> bool:
        """Whether the network is piecewise linear (its activation is)."""
        return bool(get_activation(self.options.get("activation", "relu")).piecewise_linear)

    def output_correlation(self, rho: ArrayLike) -> float | np.ndarray:
        """The fully connected net's (``"fc"``, ReLU, no biases) infinite-width correlation of
        ``f(x), f(y)`` for inputs of correlation ``rho``: ``c^L(rho)`` with L its hidden layers
        (:func:`randadv.theory.relu_correlation_iterates`; the He scale does not change it).
        Other architectures: :class:`InvalidInputError` (their kernels are not this map)."""
        o = self.options
        if (self.name != "fc" or o.get("activation", "relu") != "relu" or o.get("bias", False)
                or o.get("sigma_b2", 0.0) != 0.0):
            raise InvalidInputError(f"output_correlation is the closed form of the bias-free "
                                    f"ReLU fc net, not of {self.name} with {dict(o)}")
        return relu_correlation_iterates(rho, len(o.get("hidden", (100, 100))))[-1]

    def config(self) -> dict[str, Any]:
        """The spec as a JSON-able dict (``ImageNetSpec(**spec.config())`` rebuilds it)."""
        size = self.image_size if isinstance(self.image_size, int) else list(self.image_size)
        return dict(name=self.name, image_size=size, channels=self.channels,
                    options={k: list(v) if isinstance(v, tuple) else v
                             for k, v in self.options.items()})

    def forward_profile(self) -> tuple[float, float, float, int]:
        """``(multiply-adds, activation entries, weight entries, leaf layers)`` of one forward
        pass of one image, counted with hooks on a throw-away network of seed 0 (cached per
        spec): what a cost model of the attacks on this network needs."""
        return _forward_profile(self)

    # ------------------------------------------------------------------ modules
    def build(self, seed: int = 0, *, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None, requires_grad: bool = False,
              num_outputs: int = 1) -> RandomImageNet:
        """:func:`randadv.nets.build_architecture` of seed ``seed`` with the spec's
        arguments."""
        return build_architecture(self.name, self.image_size, seed, channels=self.channels,
                                  dtype=dtype, device=device, requires_grad=requires_grad,
                                  num_outputs=num_outputs, **self.options)

    def plain(self, seed: int = 0, *, dtype: torch.dtype = torch.float64,
              device: torch.device | str | None = None) -> nn.Sequential:
        """The network of seed ``seed`` as a plain ``nn.Sequential``
        (:func:`randadv.nets.plain.plain_relu_sequential`): the piecewise-linear form the exact
        readers take. The residual network has none (its blocks and strides):
        :class:`InvalidInputError`; :func:`randadv.exact.to_affine_layers` reads the built
        module itself."""
        if self.name == "resnet":
            raise InvalidInputError("resnet has residual blocks and strided convolutions: no "
                                    "plain nn.Sequential form (exact.to_affine_layers reads "
                                    "build(seed) itself)")
        seq = plain_relu_sequential(self.build(seed, dtype=dtype))
        return seq.to(device) if device is not None else seq


@lru_cache(maxsize=256)
def _forward_profile(spec: ImageNetSpec) -> tuple[float, float, float, int]:
    net = spec.build(0)
    macs = acts = 0.0

    def hook(mod: nn.Module, inp, out) -> None:
        nonlocal macs, acts
        acts += out.numel()
        if isinstance(mod, SeededConv2d):
            kh, kw = mod.kernel_size
            macs += out.numel() * mod.in_channels * kh * kw
        elif isinstance(mod, SeededLinear):
            macs += mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    with torch.no_grad():
        net(torch.zeros(1, *spec.input_shape))
    for h in handles:
        h.remove()
    weights = float(sum(p.numel() for p in net.parameters()))
    return float(macs), float(acts), weights, len(handles)

