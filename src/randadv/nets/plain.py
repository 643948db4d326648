"""A random image network (:mod:`randadv.nets.conv`) rebuilt as a plain ``nn.Sequential`` of
torch layers, the form the exact segment walk (:mod:`randadv.attacks.segment`) reads."""

from __future__ import annotations

import torch
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.conv import RandomImageNet
from randadv.nets.layers import AvgPool2d, Nonlinearity, SeededConv2d, SeededLinear, SumPool2d
from randadv.nets.seeding import generator

__all__ = ["plain_relu_sequential", "scalar_sequential"]


def plain_relu_sequential(net: RandomImageNet) -> nn.Sequential:
    """The same function as ``net`` as a plain ``nn.Sequential`` of ``nn.Conv2d`` / ``nn.ReLU`` /
    ``nn.Flatten`` / ``nn.Linear`` (the layers :func:`randadv.exact.to_affine_layers` and the exact
    segment walk read). Supported: stride-1 odd-kernel "zeros"/"periodic" or "valid"
    convolutions, ReLU, sum/average pooling (a grouped convolution of stride K), dense layers.
    The result is checked against ``net`` on random inputs.

    Raises:
        InvalidInputError: a layer that has no plain equivalent here (residual blocks, strides).

    Paper:
        De Palma et al. 2021, Section 2 (the same layers, eqs. (1)-(5), as plain torch modules).

    Arguments:
        net: the network.

    Returns:
        An ``nn.Sequential`` computing the same function.

    Example:
        >>> import torch
        >>> from randadv.nets import RandomLeNet
        >>> from randadv.nets.plain import plain_relu_sequential
        >>> net = RandomLeNet(8, channels=1, width=4, dense=(8,))
        >>> seq = plain_relu_sequential(net)
        >>> x = net.sample_inputs(3, "x")
        >>> torch.allclose(seq(x).reshape(-1), net(x), atol=1e-5)
        True
    """
    dt = net.dtype
    mods: list[nn.Module] = []
    channels = net.input_shape[0]
    flat = False
    for m in net.layers:
        if isinstance(m, SeededConv2d):
            kh, kw = m.kernel_size
            if m.stride != (1, 1) or (m.padding != "valid" and (kh % 2 == 0 or kw % 2 == 0)):
                raise InvalidInputError(f"{m}: only stride 1 with odd kernels converts exactly")
            pad = (0, 0) if m.padding == "valid" else (kh // 2, kw // 2)
            conv = nn.Conv2d(m.in_channels, m.out_channels, (kh, kw), padding=pad,
                             padding_mode="circular" if m.padding == "periodic" else "zeros",
                             bias=m.bias is not None).to(dt)
            with torch.no_grad():
                conv.weight.copy_(m.weight)
                if m.bias is not None:
                    conv.bias.copy_(m.bias)
            mods.append(conv)
            channels = m.out_channels
        elif isinstance(m, Nonlinearity):
            if m.activation.name != "relu":
                raise InvalidInputError(f"only ReLU converts, got {m.activation.name}")
            mods.append(nn.ReLU())
        elif isinstance(m, (SumPool2d, AvgPool2d)):
            kh, kw = m.kernel_size
            pool = nn.Conv2d(channels, channels, (kh, kw), stride=(kh, kw), groups=channels,
                             bias=False).to(dt)
            with torch.no_grad():
                pool.weight.fill_(1.0 if m.scale_by_area else 1.0 / (kh * kw))
            mods.append(pool)
        elif isinstance(m, SeededLinear):
            if not flat:
                mods.append(nn.Flatten())
                flat = True
            lin = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None).to(dt)
            with torch.no_grad():
                lin.weight.copy_(m.weight)
                if m.bias is not None:
                    lin.bias.copy_(m.bias)
            mods.append(lin)
        else:
            raise InvalidInputError(f"layer {type(m).__name__} has no plain equivalent here")
    plain = nn.Sequential(*mods)
    for prm in plain.parameters():
        prm.requires_grad_(False)
    x = torch.rand(4, *net.input_shape, generator=generator("plain-check"), dtype=torch.float64
                   ).to(dt) * 2 - 1
    with torch.no_grad():
        a, b = net(x).reshape(-1), plain(x).reshape(-1)
    tol = (1e-10 if dt == torch.float64 else 1e-4) * (1 + float(a.abs().max()))
    if not bool(((a - b).abs() <= tol).all()):
        raise InvalidInputError("plain copy of the network does not reproduce it")
    return plain


_SHAPE_ONLY = (nn.Flatten, nn.Unflatten, nn.Identity)


def scalar_sequential(model: nn.Module) -> nn.Module:
    """The common idioms of a scalar-output ReLU net in the one form the exact readers take: an
    ``nn.Sequential`` ending in ``Linear(h, 1)``.

    - shape-only modules after that last ``Linear(h, 1)`` (``nn.Flatten(0)`` making the output
      (B,), ``nn.Flatten()``, ``nn.Unflatten``, ``nn.Identity``) are dropped;
    - :class:`randadv.nets.LogitDifference` over an ``nn.Sequential`` ending in ``Linear(h, K)``
      becomes the same ``nn.Sequential`` ending in ``Linear(h, 1)`` with weights
      ``w_positive - w_negative`` (the same classifier; its rounding differs from the model's,
      which is why every flip is still verified on the model itself).

    Any other model is returned as it is.

    Paper:
        none (utility: the model forms the exact readers take).

    Arguments:
        model: any module.

    Returns:
        The ``nn.Sequential`` ending in ``Linear(h, 1)``, or ``model`` unchanged.

    Example:
        >>> from torch import nn
        >>> from randadv.nets import LogitDifference
        >>> from randadv.nets.plain import scalar_sequential
        >>> seq = scalar_sequential(LogitDifference(nn.Sequential(nn.Linear(4, 8), nn.ReLU(),
        ...                                                       nn.Linear(8, 2))))
        >>> seq[-1]
        Linear(in_features=8, out_features=1, bias=True)
    """
    from randadv.nets.conv import LogitDifference

    if isinstance(model, LogitDifference) and isinstance(model.model, nn.Sequential):
        inner = _strip_shape_only(model.model)
        last = inner[-1] if len(inner) else None
        if isinstance(last, nn.Linear) and last.out_features > max(model.positive,
                                                                   model.negative):
            p, q = model.positive, model.negative
            head = nn.Linear(last.in_features, 1, bias=last.bias is not None,
                             dtype=last.weight.dtype, device=last.weight.device)
            with torch.no_grad():
                head.weight.copy_(last.weight[p:p + 1] - last.weight[q:q + 1])
                if last.bias is not None:
                    head.bias.copy_(last.bias[p:p + 1] - last.bias[q:q + 1])
            head.requires_grad_(False)
            return nn.Sequential(*list(inner)[:-1], head)
        return model
    if isinstance(model, nn.Sequential):
        return _strip_shape_only(model)
    return model


def _strip_shape_only(model: nn.Sequential) -> nn.Sequential:
    mods = list(model)
    end = len(mods)
    while end > 0 and isinstance(mods[end - 1], _SHAPE_ONLY):
        end -= 1
    if end == len(mods) or end == 0:
        return model
    last = mods[end - 1]
    if isinstance(last, nn.Linear) and last.out_features == 1:
        return nn.Sequential(*mods[:end])
    return model
