"""The smallest single gradient step that flips the sign of a scalar-output model.

Bubeck, Cherapanamjeri, Gidel, Tachet des Combes (2021), Theorems 1-2 and Section 4: for a random
two-layer network a step ``eta * grad f(x)`` with |eta| = O(1) and sign(eta) = -sign f(x)
changes the sign of f. Bartlett, Bubeck, Cherapanamjeri (2021), Theorem 1.1, extend it to deep ReLU
networks; "Adversarial robustness is at odds with lazy training" (2022) to lazily trained ones.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from randadv.attacks.checks import (  # noqa: F401  (value_and_grad re-exported)
    check_attack_input,
    check_positive,
    scalar_output,
    value_and_grad,
)
from randadv.attacks.line_search import first_root_bracketed, first_root_one_hidden_layer
from randadv.attacks.piecewise_linear import first_root_on_ray, kink_sweep
from randadv.attacks.result import FlipStepResult, RayFlipStepResult
from randadv.attacks.verify import (
    rounding_bound_of,
    unit_sum_rounding_bound,
    verified_flip_along,
    verified_flip_on_ray,
)
from randadv.errors import InvalidInputError
from randadv.nets.mlp import RandomMLP
from randadv.protocol.piecewise import as_piecewise_linear
from randadv.theory.two_layer_law import TwoLayerRay


def smallest_flip_step(model: nn.Module, x: torch.Tensor, max_eta: float = 20.0, *,
                       exact: bool | None = None, n_grid: int = 512) -> FlipStepResult:
    """The smallest |eta| <= ``max_eta`` with sign f(x + eta grad f(x)) != sign f(x).

    Bubeck et al. (2021), Section 4: "we find the smallest eta such that a gradient step
    eta grad f(x) changes the sign of the function; eta is of the opposite sign of f(x) and we
    limit our search to |eta| < 20".

    Arguments:
        model: any torch module returning one scalar per input ((B,) or (B, 1)).
        x: inputs of shape (B, ...) (a 1-D ``x`` is one input of a :class:`RandomMLP`).
        max_eta: search bound on |eta|.
        exact: use the exact piecewise-linear walk (True), the generic bracket + Newton search
            (False), or the exact walk whenever the model's structure is known (None):
            randadv's random MLPs with ReLU-like activations and ``nn.Sequential`` ReLU MLPs.
        n_grid: grid points of the generic bracketing search.

    Returns:
        A :class:`FlipStepResult`; ``flipped`` comes from a forward pass at ``x_adv``.

    Documented edge cases: where f(x) = 0 exactly or grad f(x) = 0 there is no flipping
    direction: ``eta`` is NaN, ``flipped`` False, and a ``RuntimeWarning`` says how many rows.
    NaN/inf in ``x``, a non-scalar model output or ``max_eta <= 0`` raise
    :class:`randadv.errors.InvalidInputError` / :class:`randadv.errors.ModelOutputError`.

    Paper:
        Bubeck et al. 2021, Theorem 1 and Section 4 (|eta| < 20); Bartlett et al. 2021,
        Theorem 1.1 (deeper ReLU nets).

    Example:
        On a deep ReLU net (Bartlett et al.'s NN-DEF) the exact search walks the ray through
        the layers' linear pieces; ``exact=False`` brackets the same first root on a grid and
        refines it by Newton steps, on any model. Inputs whose ray does not change sign
        within ``max_eta`` are not flipped (``eta`` NaN):

        >>> import torch
        >>> from randadv.attacks import smallest_flip_step
        >>> from randadv.nets import DeepReLUNet
        >>> net = DeepReLUNet([50, 100, 100], seed=0)
        >>> x = torch.nn.functional.normalize(torch.randn(6, 50)) * 50 ** 0.5   # ||x|| = sqrt(d)
        >>> walk, generic = smallest_flip_step(net, x), smallest_flip_step(net, x, exact=False)
        >>> walk.method, generic.method, walk.flipped.tolist()
        ('layers', 'bracket', [True, False, False, True, False, False])
        >>> torch.equal(walk.flipped, generic.flipped)
        True
        >>> torch.allclose(walk.eta_boundary, generic.eta_boundary, rtol=1e-5, equal_nan=True)
        True
    """
    max_eta = check_positive(max_eta, "max_eta")
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if isinstance(model, RandomMLP) and x.dim() == 1:
        return _squeeze(smallest_flip_step(model, x.unsqueeze(0), max_eta, exact=exact,
                                           n_grid=n_grid))
    x = check_attack_input(x).detach()
    if isinstance(model, RandomMLP):
        if x[0].numel() != model.d:
            raise InvalidInputError(f"input dimension {x[0].numel()} does not match the "
                                    f"network's d={model.d}")
        x = x.to(model.dtype)
    if isinstance(model, RandomMLP) and model.depth == 1:
        if exact and not model.activation.piecewise_linear:
            raise InvalidInputError("exact=True needs a piecewise-linear activation, got "
                                    f"{model.activation.name}")
        return _two_layer_fast_path(model, x, max_eta, exact is not False, n_grid)
    f_x, g = value_and_grad(model, x)
    b = x.shape[0]
    flat_g = g.reshape(b, -1)
    grad_norm = flat_g.norm(dim=1)
    sign0 = torch.sign(f_x)
    degenerate = (sign0 == 0) | (grad_norm == 0)
    if bool(degenerate.any()):
        warnings.warn(f"{int(degenerate.sum())} of {b} inputs have f(x) = 0 or grad f(x) = 0: "
                      "no flipping direction (eta = NaN)", RuntimeWarning, stacklevel=2)
    direction = -sign0.view(-1, *([1] * (x.dim() - 1))) * g   # t > 0 <=> eta = -sign(f) t
    stack = as_piecewise_linear(model) if exact is not False else None
    if exact and stack is None:
        raise InvalidInputError("exact=True needs a piecewise-linear model randadv can read "
                         "(RandomMLP with a ReLU-like activation, or an nn.Sequential ReLU MLP)")
    t_root = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
    ok = torch.nonzero(~degenerate).flatten()
    if ok.numel():
        if stack is not None:
            with torch.no_grad():
                xr = x[ok].to(stack.out_w.dtype)
                r = first_root_on_ray(stack, xr, direction[ok].to(xr.dtype), max_eta)
        else:
            r = first_root_bracketed(model, x[ok], direction[ok], f_x[ok], max_eta, n_grid)
        t_root[ok] = r.to(x.dtype)
    method = "bracket" if stack is None else ("kinks" if len(stack.maps) == 1 else "layers")
    return _finish(model, x, f_x, grad_norm, sign0, direction, t_root, method)


@torch.no_grad()
def _two_layer_fast_path(model: RandomMLP, x: torch.Tensor, max_eta: float, exact: bool,
                         n_grid: int) -> FlipStepResult:
    """One hidden layer: z = W x and grad = W^T (a * psi'(z)) (one pass over W), c = W grad,
    then the exact kink sweep (piecewise-linear psi) or the bracket + Newton search on
    h(t) = a . psi(z + t c) (smooth psi); no autograd."""
    act, layer = model.activation, model.layers[0]
    xx = x.reshape(x.shape[0], -1).to(model.dtype)
    out_w = model.out_weight
    bias = model.bias(0) if model.has_bias else None

    def back(start: int, zb: torch.Tensor) -> torch.Tensor:
        # rows start:start + n of psi'(z) * a, z with its bias
        rows = slice(start, start + zb.shape[-1])
        if bias is not None:
            zb = zb + bias[rows]
        return act.derivative(zb) * out_w[rows]

    # z = W x and grad f = W^T (psi'(z) * a) in one pass: a streamed W is drawn once for both
    z, g = layer.mm_rmm(xx, back)
    if bias is not None:
        z = z + bias
    f_x = act(z) @ out_w
    grad_norm = g.norm(dim=1)
    sign0 = torch.sign(f_x)
    degenerate = (sign0 == 0) | (grad_norm == 0)
    if bool(degenerate.any()):
        warnings.warn(f"{int(degenerate.sum())} of {x.shape[0]} inputs have f(x) = 0 or "
                      "grad f(x) = 0: no flipping direction (eta = NaN)", RuntimeWarning,
                      stacklevel=3)
    direction = -sign0[:, None] * g
    c = layer.mm(direction)
    t_root, method = _search_one_hidden_layer(z, c, model.out_weight, f_x, sign0, grad_norm,
                                              act, max_eta, exact, n_grid)
    t_root[degenerate] = float("nan")
    return _finish(model, xx, f_x, grad_norm, sign0, direction, t_root.to(xx.dtype), method)


def _search_one_hidden_layer(z: torch.Tensor, c: torch.Tensor, out_w: torch.Tensor,
                             f_x: torch.Tensor, sign0: torch.Tensor, grad_norm: torch.Tensor,
                             act, max_eta: float, exact: bool, n_grid: int,
                             chunk: int = 16) -> tuple[torch.Tensor, str]:
    """First root t in (0, max_eta] of h(t) = out_w . psi(z + t c), c the pre-activations'
    derivative along direction = -sign f(x) grad f(x): the exact kink sweep (piecewise-linear
    psi, ``exact``) or bracket + Newton. ``out_w``: (k,) or one output layer per row (B, k)."""
    if act.piecewise_linear and exact:
        slope0 = -sign0 * grad_norm.to(torch.float64) ** 2     # h'(0+) = direction . grad
        t_root = kink_sweep(z, c, out_w, 0.0, act.slope_pos, act.slope_neg, max_eta,
                            value_and_slope=(f_x, slope0))
        return t_root, "kinks"
    t_root = first_root_one_hidden_layer(z, c, out_w, 0.0, act, max_eta, n_grid, chunk=chunk)
    return t_root, "newton"


@torch.no_grad()
def smallest_flip_step_on_ray(ray: TwoLayerRay, max_eta: float = 20.0, *,
                              exact: bool | None = None, n_grid: int = 512,
                              max_chunk_bytes: int = 256 * 1024**2) -> RayFlipStepResult:
    """The smallest |eta| <= ``max_eta`` flipping sign f(x + eta grad f(x)) on sampled rays.

    Paper:
        Bubeck et al. (2021), Section 4 (as :func:`smallest_flip_step`), on the pairs drawn by
        :func:`randadv.theory.two_layer_law.sample_two_layer_ray` (exact law of the ray, any
        d and k).

    The same search as :func:`smallest_flip_step` on a materialised two-layer net: the exact
    kink sweep for piecewise-linear psi (``exact`` None or True), bracket + safeguarded Newton
    otherwise, on the k numbers ``h(t) = a . psi(z + t c_dir)``, ``c_dir = -sign f(x) c``.

    Verification: there is no net to run a forward pass through. What is checked instead is the
    sign of ``f(x + eta g) = sum_l a_l psi(z_l + eta c_l)`` evaluated from the same k numbers in
    float64 (:meth:`TwoLayerRay.values`), with ``|f|`` above the rounding bound of that sum
    (:func:`randadv.attacks.verify.unit_sum_rounding_bound` at the boundary point); rows within
    it are pushed by the ladder of :func:`randadv.attacks.verify.verified_flip_on_ray`, the rule
    of :func:`randadv.attacks.verify.verified_flip_along`.

    Arguments:
        ray: the sampled pairs (:class:`TwoLayerRay`).
        max_eta: search bound on |eta|.
        exact: as in :func:`smallest_flip_step` (True needs a piecewise-linear psi).
        n_grid: grid points of the bracketing search (smooth psi).
        max_chunk_bytes: bound on the (rows, grid points, k) tensor of the bracketing search.

    Returns:
        A :class:`RayFlipStepResult` (float64).

    Example:
        >>> from randadv.attacks import smallest_flip_step_on_ray
        >>> from randadv.theory.two_layer_law import sample_two_layer_ray
        >>> r = smallest_flip_step_on_ray(sample_two_layer_ray(10**5, 10**4, pairs=8))
        >>> bool(r.flipped.all())
        True
    """
    max_eta = check_positive(max_eta, "max_eta")
    act = ray.activation
    if exact and not act.piecewise_linear:
        raise InvalidInputError(f"exact=True needs a piecewise-linear activation, got "
                                f"{act.name}")
    b = len(ray)
    f_x, grad_norm = ray.f_x, ray.grad_norm
    sign0 = torch.sign(f_x)
    degenerate = (sign0 == 0) | (grad_norm == 0)
    c_dir = -sign0[:, None] * ray.c
    chunk = int(max(1, min(16, max_chunk_bytes // (8 * max(b, 1) * ray.k))))
    t_root, method = _search_one_hidden_layer(ray.z, c_dir, ray.a, f_x, sign0, grad_norm, act,
                                              max_eta, exact is not False, n_grid, chunk)
    t_root = t_root.to(torch.float64)
    t_root[degenerate] = float("nan")
    bound = torch.full((b,), float("nan"), dtype=torch.float64, device=f_x.device)
    ok = torch.nonzero(~torch.isnan(t_root)).flatten()
    step = max(1, (1 << 20) // ray.k)    # rows at a time: no (B, k) temporaries
    for i in range(0, ok.numel(), step):
        rows = ok[i:i + step]
        pre = ray.z[rows] + t_root[rows, None] * c_dir[rows]
        bound[rows] = unit_sum_rounding_bound(ray.a[rows], pre, act)

    def values(rows: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        pre = ray.z[rows] + t[:, None] * c_dir[rows]
        return (ray.a[rows] * act(pre)).sum(1)

    t, flipped, f_adv = verified_flip_on_ray(values, t_root, f_x, bound)
    eta = -sign0 * t
    return RayFlipStepResult(eta=eta, eta_boundary=-sign0 * t_root, flipped=flipped, f_x=f_x,
                             grad_norm=grad_norm, perturbation_norm=t * grad_norm,
                             f_adv=f_adv, rounding_bound=bound, method=method)


def _finish(model, x, f_x, grad_norm, sign0, direction, t_root, method) -> FlipStepResult:
    # |x . direction| terms = |x . grad f| (|sign f| = 1 on every searched row)
    bound = rounding_bound_of(f_x, direction, x)
    t, flipped, x_adv, f_adv = verified_flip_along(model, x, direction, t_root, f_x, bound=bound)
    eta = -sign0 * t
    return FlipStepResult(
        eta=eta, eta_boundary=-sign0 * t_root, flipped=flipped, f_x=f_x, grad_norm=grad_norm,
        perturbation_norm=t * grad_norm, x_adv=x_adv, f_adv=f_adv, rounding_bound=bound,
        method=method)


def _squeeze(r: FlipStepResult) -> FlipStepResult:
    return FlipStepResult(**{k: v[0] if isinstance(v, torch.Tensor) else v
                             for k, v in vars(r).items()})
