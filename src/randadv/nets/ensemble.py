"""Many independent random networks evaluated in one batched call.

Experiments average over e.g. 100 networks x 100 inputs; for small widths a loop over networks is
dominated by Python overhead. An ensemble stacks the members' weights, (N, d_i, d_{i-1}) per layer,
and evaluates all of them with batched matrix products. Member ``j`` has exactly the weights of
``RandomMLP(widths, activation, seeds[j], ...)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.activations import Activation, TensorFn
from randadv.nets.mlp import RandomMLP


class RandomMLPEnsemble(nn.Module):
    """N random MLPs with the same architecture and seeds ``seeds``; all weights materialised.

    forward: ``x`` of shape (B, d) (the same inputs for every member) or (N, B, d) -> (N, B).

    Paper:
        Bubeck et al. 2021, Section 4 (averages over many random networks).

    Arguments:
        widths: as in :class:`RandomMLP`; seeds: one seed per member; activation: psi;
        kwargs: the other arguments of :class:`RandomMLP`.

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP, RandomMLPEnsemble
        >>> ens = RandomMLPEnsemble([10, 16], seeds=[0, 1, 2])
        >>> x = torch.randn(5, 10)
        >>> ens(x).shape, torch.allclose(ens(x)[2], RandomMLP([10, 16], seed=2)(x), atol=1e-5)
        (torch.Size([3, 5]), True)
    """

    def __init__(self, widths: Sequence[int], seeds: Sequence[int],
                 activation: str | Activation | TensorFn = "relu", **kwargs) -> None:
        super().__init__()
        if len(seeds) == 0:
            raise InvalidInputError("an ensemble needs at least one seed")
        members = [RandomMLP(widths, activation, int(s), **kwargs) for s in seeds]
        self.widths = members[0].widths
        self.seeds = [int(s) for s in seeds]
        self.activation = members[0].activation
        self.has_bias = members[0].has_bias
        for i in range(len(self.widths) - 1):
            self.register_buffer(f"W{i}", torch.stack([m.layers[i].full() for m in members]),
                                 persistent=False)
            self.register_buffer(f"b{i}", torch.stack([m.bias(i) for m in members]),
                                 persistent=False)
        self.register_buffer("out_weight", torch.stack([m.out_weight for m in members]),
                             persistent=False)

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        n, d = len(self.seeds), self.widths[0]
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(n, -1, -1)
        if x.dim() != 3 or x.shape[0] != n or x.shape[2] != d:
            raise InvalidInputError(f"ensemble input must be (B, {d}) or ({n}, B, {d}), "
                                    f"got {tuple(x.shape)}")
        return x.to(self.out_weight.dtype)

    def preactivations(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, zs = self._inputs(x), []
        for i in range(self.depth):
            z = torch.bmm(h, getattr(self, f"W{i}").transpose(1, 2))
            if self.has_bias:
                z = z + getattr(self, f"b{i}").unsqueeze(1)
            zs.append(z)
            h = self.activation(z)
        return zs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.activation(self.preactivations(x)[-1])
        return (h * self.out_weight.unsqueeze(1)).sum(-1)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f, grad f)`` of shapes (N, B) and (N, B, d), by explicit backpropagation."""
        zs = self.preactivations(x)
        f = (self.activation(zs[-1]) * self.out_weight.unsqueeze(1)).sum(-1)
        delta = self.activation.derivative(zs[-1]) * self.out_weight.unsqueeze(1)
        for i in range(self.depth - 1, 0, -1):
            delta = torch.bmm(delta, getattr(self, f"W{i}")) * self.activation.derivative(zs[i - 1])
        return f, torch.bmm(delta, self.W0)
