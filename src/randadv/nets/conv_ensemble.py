"""Many random image networks of one architecture evaluated in one call (grouped convolutions).

The experiments of De Palma et al. (2021), Section 4, attack 200 networks x 10 points per input
size; for small images a loop over networks is dominated by Python and kernel-launch overhead.
:class:`RandomImageNetEnsemble` stacks the members' weights and runs every convolution as one
grouped convolution (``groups = N``) and every fully connected layer as one batched product.
Member ``j`` computes exactly the function of ``nets[j]`` (same weights; results agree to
rounding). Speed: on CPU grouped convolutions are no faster than a loop over the members
(measured: ResNet at s = 12, 20 nets x 10 points, 0.9 s vs 0.7 s on one core); the point is one
call for N x B inputs (fully connected nets: 4x faster) and fewer kernel launches on a GPU
(untested).

Inputs: (N, B, C, H, W) (member ``j`` sees ``x[j]``), or (B, C, H, W) shared by all members;
output (N, B). :meth:`RandomImageNetEnsemble.as_batch_model` gives a scalar model of a flat batch
(N * B, C, H, W) -> (N * B,), row ``r`` evaluated by member ``r // B``: a drop-in model for attacks
that treat rows independently (the gradient of row r depends on row r only).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.conv import RandomImageNet
from randadv.nets.layers import (
    Nonlinearity,
    ResidualBlock,
    SeededConv2d,
    SeededLinear,
    _Pool2d,
)


class _GroupedConv(nn.Module):
    def __init__(self, convs: Sequence[SeededConv2d]) -> None:
        super().__init__()
        c0 = convs[0]
        self.template = c0  # padding logic (pads are shape-only); its weights are unused
        self.n = len(convs)
        self.register_buffer("weight", torch.cat([c.weight.detach() for c in convs]),
                             persistent=False)
        if c0.bias is not None:
            self.register_buffer("bias", torch.cat([c.bias.detach() for c in convs]),
                                 persistent=False)
        else:
            self.bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N*C, H, W)
        t = self.template
        pads = t.pads(x.shape[-2], x.shape[-1])
        if any(pads):
            x = F.pad(x, pads, mode="circular" if t.padding == "periodic" else "constant")
        return F.conv2d(x, self.weight, self.bias, stride=t.stride, groups=self.n)


class _BatchedLinear(nn.Module):
    def __init__(self, linears: Sequence[SeededLinear]) -> None:
        super().__init__()
        self.n = len(linears)
        self.register_buffer("weight", torch.stack([m.weight.detach() for m in linears]),
                             persistent=False)  # (N, out, in)
        if linears[0].bias is not None:
            self.register_buffer("bias", torch.stack([m.bias.detach() for m in linears]),
                                 persistent=False)  # (N, out)
        else:
            self.bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # (B, N*C, H, W): flatten each member's (C, H, W) in the C-H-W order
            b = x.shape[0]
            x = x.reshape(b, self.n, -1)
        y = torch.einsum("bni,noi->bno", x, self.weight)  # (B, N, out)
        return y if self.bias is None else y + self.bias


class _GroupedResidual(nn.Module):
    def __init__(self, main: nn.Module, shortcut: nn.Module | None,
                 post: nn.Module | None) -> None:
        super().__init__()
        self.main, self.shortcut, self.post = main, shortcut, post

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.post is None else self.post(y)


def _group(modules: Sequence[nn.Module]) -> nn.Module:
    m0 = modules[0]
    if any(type(m) is not type(m0) for m in modules):
        raise InvalidInputError("ensemble members must have the same architecture")
    if isinstance(m0, SeededConv2d):
        return _GroupedConv(modules)
    if isinstance(m0, SeededLinear):
        return _BatchedLinear(modules)
    if isinstance(m0, (Nonlinearity, _Pool2d)):
        return m0  # per channel / elementwise: the same on the stacked channels
    if isinstance(m0, ResidualBlock):
        return _GroupedResidual(
            _group([m.main for m in modules]),
            None if m0.shortcut is None else _group([m.shortcut for m in modules]),
            m0.post)
    if isinstance(m0, nn.Sequential):
        return nn.Sequential(*[_group([m[i] for m in modules]) for i in range(len(m0))])
    raise InvalidInputError(f"cannot batch layer type {type(m0).__name__}")


class RandomImageNetEnsemble(nn.Module):
    """N networks of the same architecture (e.g. ``[RandomResNet(s, seed=k) for k in seeds]``)
    evaluated together. Weights are frozen copies (buffers); forward: (N, B, C, H, W) or
    (B, C, H, W) -> (N, B).

    Paper:
        De Palma et al. 2021, Section 4 and Figures 1, 2 (many random networks at once).

    Arguments:
        nets: the networks (same architecture).

    Example:
        >>> import torch
        >>> from randadv.nets import RandomConvNet4, RandomImageNetEnsemble
        >>> nets = [RandomConvNet4(6, channels=1, seed=s, width=4, depth=2) for s in (0, 1)]
        >>> ens = RandomImageNetEnsemble(nets)
        >>> x = nets[0].sample_inputs(3, "x")
        >>> out = ens(x)
        >>> out.shape, torch.allclose(out[1], nets[1](x), atol=1e-5)
        (torch.Size([2, 3]), True)
    """

    def __init__(self, nets: Sequence[RandomImageNet]) -> None:
        super().__init__()
        if len(nets) == 0:
            raise InvalidInputError("an ensemble needs at least one network")
        first = nets[0]
        for net in nets:
            if net.input_shape != first.input_shape or net.num_outputs != 1 or \
                    len(net.layers) != len(first.layers):
                raise InvalidInputError("ensemble members must share the input shape and "
                                        "architecture and have a scalar output")
        self.n_members = len(nets)
        self.input_shape = first.input_shape
        self.dtype = first.dtype
        self.seeds = [net.seed for net in nets]
        self.pixel_ratio = first.pixel_ratio
        self.layers = _group([net.layers for net in nets])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.input_shape
        n = self.n_members
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise InvalidInputError("ensemble input must be a floating-point torch.Tensor")
        if x.dim() == 4:
            x = x.unsqueeze(0).expand(n, *x.shape)
        if x.dim() != 5 or x.shape[0] != n or tuple(x.shape[2:]) != (c, h, w):
            raise InvalidInputError(f"ensemble input must be ({n}, B, {c}, {h}, {w}) or "
                                    f"(B, {c}, {h}, {w}), got {tuple(x.shape)}")
        b = x.shape[1]
        x = x.to(self.dtype).transpose(0, 1).reshape(b, n * c, h, w)
        out = self.layers(x)  # (B, N, 1)
        return out.squeeze(-1).transpose(0, 1)

    def as_batch_model(self) -> nn.Module:
        """A scalar model of a flat batch (N * B, C, H, W) -> (N * B,); row r -> member r // B."""
        return _FlatBatch(self)


class _FlatBatch(nn.Module):
    def __init__(self, ensemble: RandomImageNetEnsemble) -> None:
        super().__init__()
        self.ensemble = ensemble

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.ensemble.n_members
        if x.dim() != 4 or x.shape[0] % n:
            raise InvalidInputError(f"flat ensemble batch must be (N * B, C, H, W) with N = {n},"
                                    f" got {tuple(x.shape)}")
        return self.ensemble(x.reshape(n, x.shape[0] // n, *x.shape[1:])).reshape(-1)
