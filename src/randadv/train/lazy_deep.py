"""Multi-layer lazy training: deep ReLU nets in the NTK parameterisation (beyond the paper).

"Adversarial Robustness is at Odds with Lazy Training" (NeurIPS 2022), Section 6, leaves open
whether its result extends to multi-layer networks. This module gives the natural candidate:

    h_1 = relu(W_1 x),   h_l = relu(m^-1/2 Theta_l h_{l-1}) (l = 2..L),   f(x) = m^-1/2 a . h_L

with raw parameters W_1 ~ N(0, I_d) rows (as Definition 2.1), Theta_l entries N(0, 1) (so the
effective weights m^-1/2 Theta_l are N(0, 1/m): NN-DEF of Bartlett et al. 2021) and a_s
uniform {-1, +1} fixed. The lazy regime is the same ball for every layer:
max_{l, s} ||theta_{l,s} - theta_{l,s,0}|| <= C_0 / sqrt(m) in raw parameters, and SGD runs on
the raw parameters (the NTK-parameterisation dynamics). L = 1 is exactly
:class:`randadv.train.lazy.LazyTwoLayerNet` without bias.

The module is an ``nn.Sequential`` of Linear/ReLU layers holding the *effective* weights, so
:func:`randadv.attacks.smallest_flip_step` walks it exactly (region walk).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.seeding import generator, rademacher
from randadv.train.lazy import LazyGroup


class LazyDeepNet(nn.Sequential):
    """L hidden ReLU layers of width m in the NTK parameterisation; forward: (B, d) -> (B,).

    Arguments:
        d: input dimension; m: width; depth: number of hidden layers L >= 1.
        seed: raw weights from ``generator(seed, "lazy-deep", layer)``, a from
            ``(seed, "lazy-deep", "a")``.
        dtype, device: of the parameters.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Definition 2.1, carried to L hidden layers (the NTK parameterisation).

    Example:
        >>> import torch
        >>> from randadv.train import LazyDeepNet
        >>> net = LazyDeepNet(6, 32, depth=2, seed=0)
        >>> net(torch.randn(3, 6)).shape
        torch.Size([3])
    """

    def __init__(self, d: int, m: int, depth: int, seed: int = 0, *,
                 dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        for name, v in (("d", d), ("m", m), ("depth", depth)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"{name} must be a positive int, got {v!r}")
        mods: list[nn.Module] = []
        fan_in = d
        for _ in range(depth):
            mods += [nn.Linear(fan_in, m, bias=False), nn.ReLU()]
            fan_in = m
        mods.append(nn.Linear(m, 1, bias=False))
        super().__init__(*mods)
        self.d, self.m, self.depth, self.seed = d, m, depth, int(seed)
        with torch.no_grad():
            for layer in range(depth):
                lin = self[2 * layer]
                raw = torch.randn(lin.weight.shape, generator=generator(seed, "lazy-deep", layer))
                lin.weight.copy_(raw / self._scale(layer))
            a = rademacher(m, seed, "lazy-deep", "a")
            self[-1].weight.copy_(a[None, :] / math.sqrt(m))
        self[-1].weight.requires_grad_(False)
        for layer in range(depth):
            self.register_buffer(f"w0_{layer}", self[2 * layer].weight.detach().clone())
        self.to(dtype=dtype, device=device)

    def _scale(self, layer: int) -> float:
        """raw = scale * effective: 1 for the first layer, sqrt(m) for the hidden ones."""
        return 1.0 if layer == 0 else math.sqrt(self.m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, 0]

    def lazy_groups(self) -> list[LazyGroup]:
        return [LazyGroup([self[2 * k].weight], [getattr(self, f"w0_{k}")], self._scale(k))
                for k in range(self.depth)]

    def config(self) -> dict:
        return dict(d=self.d, m=self.m, depth=self.depth, seed=self.seed)
