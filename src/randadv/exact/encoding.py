"""ReLU networks as affine layers, and bounds on their pre-activations.

A supported model is turned into ``[(W_1, b_1), ..., (W_{L+1}, b_{L+1})]`` (float64 numpy) with
``f(x) = W_{L+1} relu(... relu(W_1 x + b_1) ...) + b_{L+1}`` and a scalar output. Consecutive
affine maps (Linear, Conv2d, Flatten, Identity) are composed into one layer.

Pre-activation bounds over a box (interval arithmetic, optionally intersected with an l1/l2/linf
ball around x) and their LP tightening with the triangle relaxation of the ReLU are the standard
ingredients of MILP verification (Tjeng, Xiao, Tedrake 2019, Sec. 3-4; Ehlers 2017).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from scipy.optimize import linprog
from torch import nn

from randadv.errors import InvalidInputError
from randadv.protocol.norms import dual_pnorm

Layers = list[tuple[np.ndarray, np.ndarray]]
MAX_DENSE_ENTRIES = 20_000_000


def _to_np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def _conv_dense(conv: nn.Conv2d, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray,
                                                                   tuple[int, ...]]:
    """Dense matrix of a Conv2d acting on flattened (C, H, W) inputs: apply it to the identity."""
    if len(shape) != 3:
        raise InvalidInputError(f"{conv} needs a (C, H, W) input, got shape {shape}")
    n_in = math.prod(shape)
    c64 = copy.deepcopy(conv).to(device="cpu", dtype=torch.float64)
    with torch.no_grad():
        zero = c64(torch.zeros((1, *shape), dtype=torch.float64))
        out_shape = tuple(zero.shape[1:])
        if n_in * math.prod(out_shape) > MAX_DENSE_ENTRIES:
            raise InvalidInputError(f"{conv} on input {shape} is too large to densify "
                                    f"({n_in} x {math.prod(out_shape)} entries)")
        basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *shape)
        cols = (c64(basis) - zero).reshape(n_in, -1)
    return cols.T.numpy().copy(), zero.reshape(-1).numpy().copy(), out_shape


def _module_dense(m: nn.Module, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray,
                                                                   tuple[int, ...]]:
    """Dense matrix of an affine module (SeededConv2d, Sum/AvgPool2d) on flattened (C, H, W)
    inputs: apply a float64 copy to the identity (exact up to float64 rounding)."""
    return _conv_dense(m, shape)  # type: ignore[arg-type]


def _flatten_modules(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        out: list[nn.Module] = []
        for m in model:
            out.extend(_flatten_modules(m))
        return out
    return [model]


def _from_random_mlp(model: nn.Module) -> Layers:
    name = getattr(model.activation, "name", None)
    if name not in ("relu", "linear"):
        raise InvalidInputError(f"exact distances need a ReLU network; {type(model).__name__} "
                                f"has activation {name!r}")
    raw = [(_to_np(model.layers[i].full()), _to_np(model.bias(i)))
           for i in range(len(model.layers))]
    a = _to_np(model.out_weight).reshape(1, -1)
    raw.append((a, np.zeros(1)))
    if name == "linear":
        w, b = raw[0]
        for w2, b2 in raw[1:]:
            w, b = w2 @ w, w2 @ b + b2
        return [(w, b)]
    return raw


def _compose(outer: tuple[np.ndarray, np.ndarray] | None,
             inner: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``outer o inner`` (None = identity)."""
    if inner is None:
        return outer
    if outer is None:
        return inner
    return outer[0] @ inner[0], outer[0] @ inner[1] + outer[1]


_SUPPORTED = ("nn.Linear, nn.ReLU, nn.Flatten, nn.Identity, nn.Conv2d and the randadv.nets "
              "image layers (SeededLinear, SeededConv2d, Nonlinearity('relu'/'linear'), "
              "SumPool2d, AvgPool2d, ResidualBlock)")


def _convert(mods: list[nn.Module], shape: tuple[int, ...] | None, where: str
             ) -> tuple[Layers, tuple[np.ndarray, np.ndarray] | None, tuple[int, ...] | None]:
    """Convert a module chain to ``(hidden layers, pending affine map, output shape)``: the
    chain computes ``pend(relu(W_k ... relu(W_1 x + b_1) ...))``; ``pend`` None is the identity
    (the chain ends with a ReLU, or is empty)."""
    from randadv import nets

    layers: Layers = []
    pend: tuple[np.ndarray, np.ndarray] | None = None
    n_cur = math.prod(shape) if shape is not None else None

    def push_affine(w: np.ndarray, b: np.ndarray) -> None:
        nonlocal pend
        pend = _compose((w, b), pend)

    def push_relu(label: str) -> None:
        nonlocal pend
        if pend is None:
            if layers:
                return  # relu(relu(z)) = relu(z)
            if n_cur is None:
                raise InvalidInputError(f"{label}: a leading ReLU needs input_shape")
            pend = (np.eye(n_cur), np.zeros(n_cur))
        layers.append(pend)
        pend = None

    for pos, m in enumerate(mods):
        label = f"{where}layer {pos} ({m.__class__.__name__})"
        if isinstance(m, nn.Linear):
            if shape is not None and len(shape) != 1:
                raise InvalidInputError(f"{label} applied to a non-flat input of shape {shape}: "
                                        "add nn.Flatten() before it")
            if n_cur is not None and n_cur != m.in_features:
                raise InvalidInputError(f"{label} expects {m.in_features} inputs, gets {n_cur}")
            b = _to_np(m.bias) if m.bias is not None else np.zeros(m.out_features)
            push_affine(_to_np(m.weight), b)
            shape, n_cur = (m.out_features,), m.out_features
        elif isinstance(m, nets.SeededLinear):
            # flatten (C-order, as x.flatten(1)) + linear, eq. (5)
            if n_cur is not None and n_cur != m.in_features:
                raise InvalidInputError(f"{label} expects {m.in_features} inputs, gets {n_cur}")
            b = _to_np(m.bias) if m.bias is not None else np.zeros(m.out_features)
            push_affine(_to_np(m.weight), b)
            shape, n_cur = (m.out_features,), m.out_features
        elif isinstance(m, (nn.Conv2d, nets.SeededConv2d, nets.SumPool2d, nets.AvgPool2d)):
            if shape is None:
                raise InvalidInputError(f"{label}: pass input_shape=(C, H, W) for a "
                                        "convolutional model")
            w, b, shape = _module_dense(m, shape)
            push_affine(w, b)
            n_cur = math.prod(shape)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise InvalidInputError(f"{label}: only nn.Flatten(start_dim=1, end_dim=-1) "
                                        "is supported")
            if shape is not None:
                shape = (math.prod(shape),)
        elif isinstance(m, nn.Identity):
            pass
        elif isinstance(m, nn.ReLU):
            push_relu(label)
        elif isinstance(m, nets.Nonlinearity):
            name = m.activation.name
            if name == "relu":
                push_relu(label)
            elif name != "linear":
                raise InvalidInputError(f"{label}: exact distances need a ReLU network, got "
                                        f"activation {name!r}")
        elif isinstance(m, nets.ResidualBlock):
            if shape is None:
                raise InvalidInputError(f"{label}: pass input_shape=(C, H, W)")
            pend, shape = _residual(m, layers, pend, shape, label)
            n_cur = math.prod(shape)
        else:
            raise InvalidInputError(f"unsupported {label}: exact distances support {_SUPPORTED} "
                                    f"only (got {m!r})")
    return layers, pend, shape


def _residual(block: nn.Module, layers: Layers, pend: tuple[np.ndarray, np.ndarray] | None,
              shape: tuple[int, ...], label: str
              ) -> tuple[tuple[np.ndarray, np.ndarray] | None, tuple[int, ...]]:
    """Append a skip connection ``post(main(u) + shortcut(u))`` (eq. (3)) to ``layers``; returns
    the new pending map and shape. The block input ``u = pend(h)`` is carried through the ReLU
    layers of ``main`` exactly: as ``relu(u) = u`` when u is a ReLU output (``pend`` None after
    a hidden layer), else as ``(relu(u), relu(-u))`` with ``u = relu(u) - relu(-u)``."""
    main_layers, main_pend, out_shape = _convert(_flatten_modules(block.main), shape,
                                                 f"{label}.main: ")
    n_u = math.prod(shape)
    if block.shortcut is None:
        if out_shape is None or math.prod(out_shape) != n_u:
            raise InvalidInputError(f"{label}: identity shortcut needs main to keep the shape "
                                    f"{shape}, got {out_shape}")
        sc = (np.eye(n_u), np.zeros(n_u))
    else:
        sc_layers, sc_pend, sc_shape = _convert(_flatten_modules(block.shortcut), shape,
                                                f"{label}.shortcut: ")
        if sc_layers or sc_pend is None:
            raise InvalidInputError(f"{label}: only an affine (ReLU-free) shortcut is supported")
        if sc_shape != out_shape:
            raise InvalidInputError(f"{label}: shortcut output {sc_shape} != main output "
                                    f"{out_shape}")
        sc = sc_pend
    n_out = math.prod(out_shape)
    m_last = main_pend if main_pend is not None else (np.eye(n_out), np.zeros(n_out))
    if not main_layers:  # main is affine: the block is affine
        blk = (m_last[0] + sc[0], m_last[1] + sc[1])
        pend = _compose(blk, pend if pend is not None else None)
    else:
        u_map = pend if pend is not None else (np.eye(n_u), np.zeros(n_u))
        nonneg = pend is None and bool(layers)  # u is a ReLU output
        if nonneg:
            carry, recover = (np.eye(n_u), np.zeros(n_u)), np.eye(n_u)
        else:
            carry = (np.vstack([np.eye(n_u), -np.eye(n_u)]), np.zeros(2 * n_u))
            recover = np.hstack([np.eye(n_u), -np.eye(n_u)])
        n_c = carry[0].shape[0]
        first = _compose(main_layers[0], u_map)
        c0 = _compose(carry, u_map)
        layers.append((np.vstack([first[0], c0[0]]), np.concatenate([first[1], c0[1]])))
        for w, b in main_layers[1:]:  # carried values are >= 0: relu keeps them
            z = np.zeros((w.shape[0], n_c))
            layers.append((np.block([[w, z], [np.zeros((n_c, w.shape[1])), np.eye(n_c)]]),
                           np.concatenate([b, np.zeros(n_c)])))
        pend = (np.hstack([m_last[0], sc[0] @ recover]), m_last[1] + sc[1])
    if block.post is not None:
        post_layers, post_pend, _ = _convert(_flatten_modules(block.post), out_shape,
                                             f"{label}.post: ")
        if len(post_layers) == 1 and post_pend is None and np.array_equal(
                post_layers[0][0], np.eye(n_out)) and not post_layers[0][1].any():
            layers.append(pend)
            pend = None
        elif post_layers or post_pend is not None:
            raise InvalidInputError(f"{label}: the post-activation must be a ReLU or identity")
    return pend, out_shape


def to_affine_layers(model: nn.Module, input_shape: Sequence[int] | None = None) -> Layers:
    """Turn a supported ReLU network into affine layers ``[(W, b), ...]`` with ReLU between.

    Supported: ``randadv.nets.RandomMLP`` (activation ``relu``; ``linear`` is composed away), a
    bare ``nn.Linear``, ``nn.Sequential`` (nested allowed) of ``nn.Linear``, ``nn.ReLU``,
    ``nn.Flatten``, ``nn.Identity`` and ``nn.Conv2d`` (densified exactly; pass
    ``input_shape=(C, H, W)``), and the random image networks
    :class:`randadv.nets.conv.RandomImageNet` of De Palma et al. (``randadv.nets.zoo``: fc,
    lenet, conv4, resnet) with ReLU activations and one output: SeededConv2d (any padding and
    stride) and Sum/AvgPool2d are densified, SeededLinear flattens in C order like the module,
    and a ResidualBlock (eq. (3)) becomes ReLU layers that carry the block input alongside
    ``main`` (its input is a ReLU output, or is split as ``relu(u) - relu(-u)``). Inputs of a
    RandomImageNet are its flattened (C, H, W) images (``input_shape`` defaults to the net's).
    The last layer must be affine with one output; shape-only modules after it (``nn.Flatten(0)``)
    and :class:`randadv.nets.LogitDifference` over a two-logit ``nn.Sequential`` are read through
    :func:`randadv.nets.plain.scalar_sequential`.

    Raises:
        InvalidInputError: naming the first unsupported layer or activation.

    Paper:
        De Palma et al. 2021, Section 2, eqs. (1)-(5) (every layer type as an affine map).

    Arguments:
        model: the network; input_shape: (C, H, W) for ``nn.Conv2d`` layers (RandomImageNet:
        its own by default).

    Returns:
        The layers ``[(W, b), ...]`` (float64 numpy).

    Example:
        >>> import torch
        >>> from randadv.nets import RandomLeNet
        >>> from randadv.exact import AffineNet, to_affine_layers
        >>> net = RandomLeNet(8, channels=1, width=2, dense=(4,), dtype=torch.float64)
        >>> x = net.sample_inputs(1, "x")
        >>> aff = AffineNet(to_affine_layers(net))
        >>> bool(abs(aff.forward(x.reshape(1, -1).numpy())[0] - net(x)[0].item()) < 1e-9)
        True
    """
    from randadv.nets import RandomMLP
    from randadv.nets.conv import RandomImageNet
    from randadv.nets.plain import scalar_sequential

    model = scalar_sequential(model)
    if isinstance(model, RandomMLP):
        return _from_random_mlp(model)
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
    if isinstance(model, RandomImageNet):
        if model.num_outputs != 1:
            raise InvalidInputError(f"{model.name}: exact distances need one scalar output, the "
                                    f"network has num_outputs={model.num_outputs}")
        if shape is not None and math.prod(shape) != model.n:
            raise InvalidInputError(f"{model.name}: input_shape {shape} does not match the "
                                    f"network's input {model.input_shape}")
        shape, mods, where = model.input_shape, _flatten_modules(model.layers), f"{model.name}: "
    elif isinstance(model, (nn.Sequential, nn.Linear)):
        mods, where = _flatten_modules(model), ""
    else:
        raise InvalidInputError(
            f"unsupported model {type(model).__name__}: exact distances accept nn.Sequential of "
            "Linear/ReLU/Flatten/Identity/Conv2d, nn.Linear, randadv.nets.RandomMLP or a "
            "randadv.nets.conv.RandomImageNet (zoo network)")
    layers, pend, _ = _convert(mods, shape, where)
    if pend is None:
        raise InvalidInputError("the model must end with an affine layer (a final ReLU or an "
                                "empty model has no signed scalar output)")
    if pend[0].shape[0] != 1:
        raise InvalidInputError(f"the model must have one scalar output, its last layer has "
                                f"{pend[0].shape[0]} outputs")
    layers.append(pend)
    return layers


def float64_model(model: nn.Module) -> tuple[nn.Module, bool]:
    """A float64 copy of ``model`` (``(model, False)`` if it cannot be converted)."""
    try:
        m = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
        for mod in m.modules():
            if isinstance(getattr(mod, "dtype", None), torch.dtype):
                mod.dtype = torch.float64
        return m, True
    except Exception:  # noqa: BLE001 - any failure: verify in the native dtype
        return model, False


@dataclass
class AffineNet:
    """A ReLU network as affine layers (float64), with forward, gradient and region maps.

    Paper:
        De Palma et al. 2021, Section 2 (a ReLU net: affine layers with ReLU between, linear in
        each activation region).

    Attributes:
        layers: ``[(W, b), ...]`` float64 numpy, ReLU between consecutive layers.

    Example:
        >>> import numpy as np
        >>> from randadv.exact import AffineNet
        >>> hidden = (np.array([[1.0], [-1.0]]), np.zeros(2))
        >>> net = AffineNet([hidden, (np.array([[1.0, 1.0]]), np.zeros(1))])
        >>> float(net.forward(np.array([-3.0]))[0]), net.hidden_widths   # relu(x) + relu(-x) = |x|
        (3.0, [2])
    """

    layers: Layers

    @property
    def d(self) -> int:
        return self.layers[0][0].shape[1]

    @property
    def hidden_widths(self) -> list[int]:
        return [w.shape[0] for w, _ in self.layers[:-1]]

    def preactivations(self, x: np.ndarray) -> list[np.ndarray]:
        """Hidden pre-activations ``[z_1, ..., z_L]`` and the output, for x of shape (B, d)."""
        zs, h = [], x
        for i, (w, b) in enumerate(self.layers):
            z = h @ w.T + b
            zs.append(z)
            if i < len(self.layers) - 1:
                h = np.maximum(z, 0.0)
        return zs

    def forward(self, x: np.ndarray) -> np.ndarray:
        """f(x) for x of shape (B, d) -> (B,)."""
        return self.preactivations(np.atleast_2d(x))[-1][:, 0]

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f(x), grad f(x))`` at one point (the gradient of its linear region)."""
        c, c0, _ = self.region_map(x)
        return float(c @ x + c0), c

    def pattern(self, x: np.ndarray) -> list[np.ndarray]:
        """Activation pattern (``z > 0``) of each hidden layer at one point."""
        return [z[0] > 0 for z in self.preactivations(x[None, :])[:-1]]

    def region_map(self, x: np.ndarray, pattern: list[np.ndarray] | None = None
                   ) -> tuple[np.ndarray, float, list[tuple[np.ndarray, np.ndarray]]]:
        """On the linear region of ``x`` (or of ``pattern``): ``f = c . x + c0``, and the affine
        maps ``z_l = A_l x + e_l`` of all hidden pre-activations."""
        pat = self.pattern(x) if pattern is None else pattern
        a, e = np.eye(self.d), np.zeros(self.d)
        maps = []
        for i, (w, b) in enumerate(self.layers):
            a, e = w @ a, w @ e + b
            if i < len(self.layers) - 1:
                maps.append((a, e))
                mask = pat[i].astype(np.float64)
                a, e = a * mask[:, None], e * mask
        return a[0], float(e[0]), maps


@dataclass
class Box:
    """Per-coordinate bounds ``lo <= delta <= hi`` on the perturbation, with an optional norm
    ball ``||delta||_norm <= radius`` (all points of interest satisfy both)."""

    lo: np.ndarray
    hi: np.ndarray
    norm: str
    radius: float


def interval_bounds(net: AffineNet, x: np.ndarray, box: Box) -> list[tuple[np.ndarray,
                                                                          np.ndarray]]:
    """Bounds ``[(lo_l, hi_l)]`` of every layer's pre-activation (output included) over
    ``x + delta``, ``delta`` in the box and the ball (interval arithmetic)."""
    out = []
    w, b = net.layers[0]
    c = w @ x + b
    wp, wn = np.clip(w, 0, None), np.clip(w, None, 0)
    lo = c + wp @ box.lo + wn @ box.hi
    hi = c + wp @ box.hi + wn @ box.lo
    if math.isfinite(box.radius):
        r = box.radius * dual_pnorm(w, box.norm, axis=1)
        lo, hi = np.maximum(lo, c - r), np.minimum(hi, c + r)
    out.append((lo, hi))
    for w, b in net.layers[1:]:
        hl, hh = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
        wp, wn = np.clip(w, 0, None), np.clip(w, None, 0)
        lo = wp @ hl + wn @ hh + b
        hi = wp @ hh + wn @ hl + b
        out.append((lo, hi))
    return out


def _relax_rows(net: AffineNet, x: np.ndarray, bounds: list[tuple[np.ndarray, np.ndarray]],
                n_layers: int, offsets: list[int]) -> tuple[list, list, list, list, list]:
    """Triangle-relaxation rows of hidden layers ``< n_layers`` (rows, cols, vals, lo, hi)."""
    rows, cols, vals, rlo, rhi = [], [], [], [], []
    r = 0
    for l in range(n_layers):
        w, b = net.layers[l]
        const = b + (w @ x if l == 0 else 0.0)
        src = offsets[l]  # column offset of the layer's input variables
        dst = offsets[l + 1]
        lo, hi = bounds[l]
        nz_r, nz_c = np.nonzero(w)
        for j in range(w.shape[0]):
            if hi[j] <= 0:
                continue  # h fixed to 0 by its variable bounds
            js = nz_c[nz_r == j]
            wj = w[j, js]
            if lo[j] >= 0:  # h = z
                rows += [r] * (len(js) + 1)
                cols += [dst + j, *(src + js)]
                vals += [1.0, *(-wj)]
                rlo.append(const[j])
                rhi.append(const[j])
                r += 1
                continue
            # h >= z
            rows += [r] * (len(js) + 1)
            cols += [dst + j, *(src + js)]
            vals += [1.0, *(-wj)]
            rlo.append(const[j])
            rhi.append(np.inf)
            r += 1
            # h <= u (z - l) / (u - l)
            s = hi[j] / (hi[j] - lo[j])
            rows += [r] * (len(js) + 1)
            cols += [dst + j, *(src + js)]
            vals += [1.0, *(-s * wj)]
            rlo.append(-np.inf)
            rhi.append(s * (const[j] - lo[j]))
            r += 1
    return rows, cols, vals, rlo, rhi


def lp_tighten(net: AffineNet, x: np.ndarray, box: Box,
               bounds: list[tuple[np.ndarray, np.ndarray]], deadline: float | None = None
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Tighten the bounds of unstable neurons by LP (min/max of each pre-activation over the
    triangle relaxation of the earlier layers, the box, and the l1/linf ball when linear);
    later layers are re-propagated by interval arithmetic first. Stops at ``deadline``."""
    bounds = [(lo.copy(), hi.copy()) for lo, hi in bounds]
    d = net.d
    widths = net.hidden_widths
    use_l1 = box.norm == "l1" and math.isfinite(box.radius)
    n_aux = d if use_l1 else 0
    # columns: delta (d), [e (d) for l1], h_1, ..., h_L; offsets[l] = first input column of
    # layer l (offsets[0] = 0: delta)
    offsets = [0]
    start = d + n_aux
    for w in widths:
        offsets.append(start)
        start += w
    n_var = start
    for l in range(len(widths)):
        lo, hi = bounds[l]
        todo = np.nonzero((lo < 0) & (hi > 0))[0]
        if l == 0 and not use_l1:
            todo = todo[:0]  # interval bounds of layer 1 over a box are exact
        if len(todo) == 0:
            continue
        if deadline is not None and time.perf_counter() > deadline:
            break
        rows, cols, vals, rlo, rhi = _relax_rows(net, x, bounds, l, offsets)
        if use_l1:
            r0 = (max(rows) + 1) if rows else 0
            for i in range(d):  # e_i >= |delta_i|
                rows += [r0 + 2 * i, r0 + 2 * i, r0 + 2 * i + 1, r0 + 2 * i + 1]
                cols += [d + i, i, d + i, i]
                vals += [1.0, -1.0, 1.0, 1.0]
                rlo += [0.0, 0.0]
                rhi += [np.inf, np.inf]
            rows += [r0 + 2 * d] * d
            cols += list(range(d, 2 * d))
            vals += [1.0] * d
            rlo.append(-np.inf)
            rhi.append(box.radius)
        vlo = np.zeros(n_var)
        vhi = np.zeros(n_var)
        vlo[:d], vhi[:d] = box.lo, box.hi
        if use_l1:
            vhi[d:2 * d] = np.maximum(np.abs(box.lo), np.abs(box.hi))
        for k in range(l):
            plo, phi = bounds[k]
            vhi[offsets[k + 1]:offsets[k + 1] + widths[k]] = np.maximum(phi, 0.0)
        n_used = d + n_aux if l == 0 else offsets[l] + widths[l - 1]
        a_ub = b_ub = a_eq = b_eq = None
        if rows:
            a_full = sparse.csr_matrix((vals, (rows, cols)), shape=(max(rows) + 1, n_var))
            a_full = a_full[:, :n_used]
            rlo_a, rhi_a = np.asarray(rlo, float), np.asarray(rhi, float)
            eq = rlo_a == rhi_a
            up = np.nonzero(np.isfinite(rhi_a) & ~eq)[0]
            dn = np.nonzero(np.isfinite(rlo_a) & ~eq)[0]
            if len(up) + len(dn):
                a_ub = sparse.vstack([a_full[up], -a_full[dn]]).tocsr()
                b_ub = np.concatenate([rhi_a[up], -rlo_a[dn]])
            if eq.any():
                a_eq, b_eq = a_full[np.nonzero(eq)[0]], rlo_a[eq]
        w, b = net.layers[l]
        const = b + (w @ x if l == 0 else 0.0)
        src = offsets[l]
        var_bounds = list(zip(vlo[:n_used], vhi[:n_used], strict=True))
        for j in todo:
            if deadline is not None and time.perf_counter() > deadline:
                break
            c = np.zeros(n_used)
            c[src:src + w.shape[1]] = w[j]
            new = []
            for sign in (1.0, -1.0):
                res = linprog(sign * c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq,
                              bounds=var_bounds, method="highs")
                new.append(sign * res.fun + const[j] if res.status == 0 else None)
            if new[0] is not None:
                lo[j] = max(lo[j], new[0] - 1e-7 * (1.0 + abs(new[0])))
            if new[1] is not None:
                hi[j] = min(hi[j], new[1] + 1e-7 * (1.0 + abs(new[1])))
        bounds[l] = (lo, hi)
        # re-propagate the later layers from the tightened ones
        for k in range(l + 1, len(net.layers)):
            w2, b2 = net.layers[k]
            hl, hh = np.maximum(bounds[k - 1][0], 0.0), np.maximum(bounds[k - 1][1], 0.0)
            wp, wn = np.clip(w2, 0, None), np.clip(w2, None, 0)
            nlo, nhi = wp @ hl + wn @ hh + b2, wp @ hh + wn @ hl + b2
            bounds[k] = (np.maximum(bounds[k][0], nlo), np.minimum(bounds[k][1], nhi))
    return bounds
