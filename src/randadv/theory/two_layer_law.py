"""The exact law of the two-layer single step, sampled in O(k) per (network, input) pair.

Bubeck, Cherapanamjeri, Gidel, Tachet des Combes (2021), eq. (1) with randadv's scales
(:class:`randadv.nets.TwoLayerRandomNet`): ``f(x) = sum_l a_l psi(w_l . x)``, ``w_l`` the rows of
``W = G / sqrt(d)`` with G a k x d matrix of i.i.d. N(0, 1), ``a`` independent of W
(Rademacher ``+-1/sqrt(k)`` or ``N(0, 1/k)``). Everything the single step measures (f(x),
||grad f(x)||, the ray ``eta -> f(x + eta grad f(x))``, hence the smallest flipping eta) depends
on W only through the k numbers ``z = W x`` and ``c = W grad f(x)``:
``f(x + eta g) = sum_l a_l psi(z_l + eta c_l)``. Their joint law given ``||x||`` is drawn here
exactly, without the k x d matrix.

Derivation (``x_hat = x / ||x||``, ``s = ||x|| / sqrt(d)``, ``P = I - x_hat x_hat^T``):

1. ``u = G x_hat ~ N(0, I_k)`` and ``G = u x_hat^T + G P``; G P is independent of u (the
   entries of G are i.i.d. Gaussian, so the projections of its rows on x_hat and on x_hat's
   complement are independent). ``z = s u``.
2. ``v = a * psi'(z)`` (elementwise; a function of (u, a) only), ``g = grad f(x) = W^T v =
   d^-1/2 (x_hat (u . v) + zeta)`` with ``zeta = P G^T v``. Given (u, a), ``G P`` has the law of
   ``G' P`` for a fresh G', so ``zeta ~ N(0, ||v||^2 P)``: ``||zeta||^2 = ||v||^2 chi``,
   ``chi ~ chi^2_{d-1}``, and ``||g||^2 = ((u . v)^2 + chi ||v||^2) / d`` (x_hat is orthogonal
   to zeta).
3. ``c = W g = ((u . v) u + G P zeta) / d`` (``G x_hat = u``, ``x_hat . zeta = 0``). Write
   ``M = G P`` (k x (d-1) i.i.d. Gaussian in a basis of x_hat's complement) and split it along
   ``v_hat = v / ||v||``: ``M = v_hat (v_hat^T M) + (I - v_hat v_hat^T) M``, two independent
   Gaussian parts; ``zeta = M^T v`` is a function of the first, so
   ``M zeta = v_hat ||zeta||^2 / ||v|| + ||zeta|| (I - v_hat v_hat^T) xi`` with
   ``xi ~ N(0, I_k)`` independent of (u, a, chi). Hence

       c = ((u . v) u + chi v + sqrt(chi) (||v|| xi - (v . xi) v / ||v||)) / d.

   Check: ``c . v = ((u . v)^2 + chi ||v||^2) / d = ||g||^2``, the slope of the ray at eta = 0.

Where it needs Gaussian rows: steps 1 and 3 use the rotation invariance of i.i.d. Gaussian
entries (independence of orthogonal projections); any common scale of W is fine (fan-in 1/d as
here, LeCun, He: they rescale z and c), and ``a`` may have any law independent of W (Rademacher or
Gaussian here). No hidden biases. Only psi and psi' enter, elementwise, so any activation works.

Cost: 3k Gaussian or sign draws plus one chi^2 per pair, O(k) memory for the ray (z, c, a in
float64), against O(k d) for a materialised net. The draws come in fixed blocks of
``GEN_BLOCK`` units, each from its own generator ``derive_seed(seed, "two-layer-law", pair,
block)``, so a pair's numbers do not depend on the batch, the chunking or ``device``; the sums
(u . v, ||v||^2, v . xi, f) are accumulated in float64 block by block.

Relation to :mod:`randadv.theory.gp_limit`: that module samples the k = infinity Gaussian law of
(f, grad f) and reports the linearised step; this one is exact at every finite k and d (the
second moments agree at every k: ``E f^2 = E psi(X)^2``,
``E ||g||^2 = ((d - 1) E psi'(X)^2 + E X^2 psi'(X)^2) / d``, :func:`single_step_prediction`),
and gives the whole ray, so the exact smallest flipping step is found on it
(:func:`randadv.attacks.smallest_flip_step_on_ray`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from randadv.errors import InvalidInputError
from randadv.nets.activations import Activation, TensorFn, get_activation
from randadv.nets.seeding import derive_seed, generator

GEN_BLOCK = 1 << 16          # units per generator: fixed, so the draws never depend on chunking
TILE = 1 << 20               # units computed together (rows x one block)
OUTPUTS = ("rademacher", "gaussian")


@dataclass
class TwoLayerRay:
    """The k numbers of B sampled (network, input) pairs of a two-layer net (module docstring).

    Attributes:
        d, k: input dimension and width; ``x_norm``: ||x|| of every input.
        activation: psi.
        z: (B, k) pre-activations ``W x``; c: (B, k) ``W grad f(x)`` (so the pre-activations at
            ``x + eta grad f(x)`` are ``z + eta c``); a: (B, k) output weights. float64.
        f_x: (B,) f(x) = a . psi(z); grad_norm: (B,) ||grad f(x)|| (both float64).
        pairs: (B,) the pair indices drawn.

    Paper:
        Bubeck et al. 2021, eq. (1) and Section 4 (the step along grad f(x)).

    Example:
        >>> from randadv.theory import sample_two_layer_ray
        >>> ray = sample_two_layer_ray(100, 50, pairs=3, seed=0)
        >>> ray.z.shape, ray.a.shape, ray.f_x.dtype
        (torch.Size([3, 50]), torch.Size([3, 50]), torch.float64)
    """

    d: int
    k: int
    x_norm: float
    activation: Activation
    z: torch.Tensor
    c: torch.Tensor
    a: torch.Tensor
    f_x: torch.Tensor
    grad_norm: torch.Tensor
    pairs: torch.Tensor

    def __len__(self) -> int:
        return int(self.z.shape[0])

    def values(self, eta: torch.Tensor) -> torch.Tensor:
        """f(x + eta grad f(x)) per row for a step ``eta`` of shape (B,), in float64."""
        pre = self.z + eta.to(self.z.dtype)[:, None] * self.c
        return (self.a * self.activation(pre)).sum(1)


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _draw_block(seed: int, pair: int, block: int, n: int, output: str
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(u, xi, a * sqrt(k)) of units [block * GEN_BLOCK, block * GEN_BLOCK + n) of one pair."""
    gen = generator(seed, "two-layer-law", pair, block)
    u = torch.randn(n, generator=gen, dtype=torch.float64)
    xi = torch.randn(n, generator=gen, dtype=torch.float64)
    if output == "rademacher":
        a = torch.randint(0, 2, (n,), generator=gen, dtype=torch.int64).to(torch.float64) * 2 - 1
    else:
        a = torch.randn(n, generator=gen, dtype=torch.float64)
    return u, xi, a


def chi2_draw(seed: int, pair: int, dof: int) -> float:
    """chi^2 with ``dof`` degrees of freedom of one pair (0 for dof = 0, i.e. d = 1)."""
    if dof == 0:
        return 0.0
    rng = np.random.default_rng(derive_seed(seed, "two-layer-law", pair, "chi2"))
    return float(rng.chisquare(dof))


@torch.no_grad()
def sample_two_layer_ray(d: int, k: int, activation: str | Activation | TensorFn = "relu",
                         pairs: int = 1, seed: int = 0, *, first_pair: int = 0,
                         output: str = "rademacher", x_norm: float | None = None,
                         device: torch.device | str | None = None) -> TwoLayerRay:
    """Draw ``pairs`` independent (network, input) pairs of ``TwoLayerRandomNet(d, k, psi)``.

    Paper:
        Bubeck et al. (2021), eq. (1) and Section 4 (the single step along grad f(x)); the
        construction and its proof are in the module docstring (exact in law at every d, k).

    Arguments:
        d, k: input dimension and width (any size: the cost is O(k) per pair, d only enters
            through chi^2_{d-1} and the scale 1/d).
        activation: psi (name or :class:`Activation`); only psi and psi' are evaluated.
        pairs: number of pairs B; ``first_pair``: index of the first (pair i draws from
            ``derive_seed(seed, "two-layer-law", first_pair + i, ...)``, so a run can be split
            into chunks of pairs with the same numbers).
        seed: integer seed.
        output: ``"rademacher"`` (eq. (1)) or ``"gaussian"`` output weights.
        x_norm: ||x|| (default sqrt(d), the experiments' inputs on sqrt(d) S^{d-1}).
        device: where z, c, a live (drawn on the CPU, identical on every device).

    Returns:
        A :class:`TwoLayerRay` (float64).

    Example:
        >>> from randadv.theory import sample_two_layer_ray
        >>> ray = sample_two_layer_ray(10**6, 1000, "relu", pairs=4, seed=0)
        >>> ray.z.shape, bool((ray.grad_norm > 0).all())
        (torch.Size([4, 1000]), True)
    """
    d, k, pairs = _positive_int(d, "d"), _positive_int(k, "k"), _positive_int(pairs, "pairs")
    first_pair = int(first_pair)
    if first_pair < 0:
        raise InvalidInputError(f"first_pair must be >= 0, got {first_pair}")
    if output not in OUTPUTS:
        raise InvalidInputError(f"output must be one of {OUTPUTS}, got {output!r}")
    act = get_activation(activation)
    if x_norm is None:
        x_norm = math.sqrt(d)
    x_norm = float(x_norm)
    if not (math.isfinite(x_norm) and x_norm > 0):
        raise InvalidInputError(f"x_norm must be finite and > 0, got {x_norm}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    f64 = torch.float64
    s = x_norm / math.sqrt(d)
    z = torch.empty(pairs, k, dtype=f64, device=dev)
    c = torch.empty_like(z)
    a = torch.empty_like(z)
    f_x = torch.empty(pairs, dtype=f64, device=dev)
    grad_norm = torch.empty_like(f_x)
    blocks = [(j, j * GEN_BLOCK, min(k, (j + 1) * GEN_BLOCK)) for j in range(-(-k // GEN_BLOCK))]
    inv_sqrt_k = 1.0 / math.sqrt(k)
    # rows handled together: tiles of at most TILE units (one generator block wide at most)
    tile_rows = max(1, TILE // min(k, GEN_BLOCK))
    for r0 in range(0, pairs, tile_rows):
        r1 = min(pairs, r0 + tile_rows)
        rows = slice(r0, r1)
        for i in range(r0, r1):          # draw u (kept in z), xi (kept in c), a
            for j, lo, hi in blocks:
                u, xi, aa = _draw_block(seed, first_pair + i, j, hi - lo, output)
                z[i, lo:hi], c[i, lo:hi], a[i, lo:hi] = u, xi, aa * inv_sqrt_k
        n = r1 - r0
        uv, vv, vxi, f = (torch.zeros(n, dtype=f64, device=dev) for _ in range(4))
        for _, lo, hi in blocks:         # pass 1: the sums of steps 2-3, in float64
            u, xi, aa = z[rows, lo:hi], c[rows, lo:hi], a[rows, lo:hi]
            pre = s * u
            v = aa * act.derivative(pre)
            uv += (u * v).sum(1)
            vv += (v * v).sum(1)
            vxi += (v * xi).sum(1)
            f += (aa * act(pre)).sum(1)
        chi = torch.tensor([chi2_draw(seed, first_pair + i, d - 1) for i in range(r0, r1)],
                           dtype=f64, device=dev)
        v_norm = torch.sqrt(vv)
        grad_norm[rows] = torch.sqrt((uv * uv + chi * vv) / d)
        f_x[rows] = f
        coef = torch.where(vv > 0, vxi / torch.where(vv > 0, v_norm, 1.0), 0.0)
        sq_chi = torch.sqrt(chi)
        # pass 2: c = ((u.v) u + chi v + sqrt(chi) (||v|| xi - (v.xi) v / ||v||)) / d, z = s u
        for _, lo, hi in blocks:
            u, xi, aa = z[rows, lo:hi], c[rows, lo:hi], a[rows, lo:hi]
            pre = s * u
            v = aa * act.derivative(pre)
            c[rows, lo:hi] = (uv[:, None] * u + chi[:, None] * v
                              + sq_chi[:, None] * (v_norm[:, None] * xi - coef[:, None] * v)) / d
            z[rows, lo:hi] = pre
    return TwoLayerRay(d=d, k=k, x_norm=x_norm, activation=act, z=z, c=c, a=a, f_x=f_x,
                       grad_norm=grad_norm,
                       pairs=torch.arange(first_pair, first_pair + pairs, device=dev))


@dataclass(frozen=True)
class FourthMoments:
    """E f(x)^4 and E ||grad f(x)||^4 of the two-layer net at ||x|| = sqrt(d), exact at every
    d and k (:func:`fourth_moments`), and the second moments they go with.

    Paper:
        Bubeck et al. 2021, eqs. (1)-(3) (the moments at finite d and k).

    Attributes:
        f_sq, f_4: E f^2, E f^4; grad_sq, grad_4: E ||grad f||^2, E ||grad f||^4.

    Example:
        >>> from randadv.theory import fourth_moments
        >>> m = fourth_moments("relu", 100, 10**6)   # k -> infinity: E f^4 -> 3 (E f^2)^2
        >>> round(m.f_4 / m.f_sq**2, 3)
        3.0
    """

    f_sq: float
    f_4: float
    grad_sq: float
    grad_4: float

    @property
    def f_sq_var(self) -> float:
        """Var f(x)^2: the null variance of a sample mean of f^2 (times n)."""
        return self.f_4 - self.f_sq ** 2

    @property
    def grad_sq_var(self) -> float:
        """Var ||grad f(x)||^2."""
        return self.grad_4 - self.grad_sq ** 2


def fourth_moments(activation: str | Activation | TensorFn, d: int, k: int,
                   output: str = "rademacher") -> FourthMoments:
    """Exact E f^2, E f^4, E ||g||^2, E ||g||^4 of ``TwoLayerRandomNet(d, k, psi)`` at
    ||x|| = sqrt(d), from the construction of the module docstring.

    Paper:
        Bubeck et al. (2021), eq. (1); the moments of the sums of step 2 (the k units are
        i.i.d., u_l ~ N(0, 1), a_l = eps_l / sqrt(k) with m4 = E eps^4 = 1 (Rademacher) or 3).

    With ``p = u psi'(u)``, ``q = psi'(u)^2``, ``S = u . v``, ``V = ||v||^2``,
    ``d ||g||^2 = S^2 + chi V`` (chi ~ chi^2_{d-1} independent, E chi^2 = d^2 - 1):

        E f^4  = (m4 E psi^4 + 3 (k - 1) (E psi^2)^2) / k
        E S^4  = (m4 E p^4 + 3 (k - 1) (E p^2)^2) / k
        E S^2 V = (m4 E p^2 q + (k - 1) E p^2 E q) / k
        E V^2  = (m4 E q^2 + (k - 1) (E q)^2) / k
        d^2 E ||g||^4 = E S^4 + 2 (d - 1) E S^2 V + (d^2 - 1) E V^2.

    Arguments:
        activation: psi; d, k: sizes; output: ``"rademacher"`` or ``"gaussian"``.

    Returns:
        :class:`FourthMoments`.

    Example:
        >>> from randadv.theory import fourth_moments
        >>> m = fourth_moments("relu", 10**6, 1000)
        >>> round(m.f_sq, 6), round(m.grad_sq, 6)
        (0.5, 0.5)
    """
    from randadv.theory.gaussian import gaussian_expectation

    d, k = _positive_int(d, "d"), _positive_int(k, "k")
    if output not in OUTPUTS:
        raise InvalidInputError(f"output must be one of {OUTPUTS}, got {output!r}")
    act = get_activation(activation)
    psi, dpsi = act.fn, act.derivative

    def e(fn) -> float:
        return gaussian_expectation(fn)

    m4 = 1.0 if output == "rademacher" else 3.0
    psi2, psi4 = e(lambda u: psi(u) ** 2), e(lambda u: psi(u) ** 4)
    p2, p4 = e(lambda u: (u * dpsi(u)) ** 2), e(lambda u: (u * dpsi(u)) ** 4)
    q1, q2 = e(lambda u: dpsi(u) ** 2), e(lambda u: dpsi(u) ** 4)
    p2q = e(lambda u: u ** 2 * dpsi(u) ** 4)
    f4 = (m4 * psi4 + 3 * (k - 1) * psi2 ** 2) / k
    s4 = (m4 * p4 + 3 * (k - 1) * p2 ** 2) / k
    s2v = (m4 * p2q + (k - 1) * p2 * q1) / k
    v2 = (m4 * q2 + (k - 1) * q1 ** 2) / k
    grad_sq = (p2 + (d - 1) * q1) / d
    grad_4 = (s4 + 2 * (d - 1) * s2v + (d * d - 1) * v2) / d ** 2
    return FourthMoments(f_sq=psi2, f_4=f4, grad_sq=grad_sq, grad_4=grad_4)
