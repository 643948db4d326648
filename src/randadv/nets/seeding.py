"""Deterministic seeds: a network is a pure function of its architecture and its seed.

Every random tensor randadv draws comes from a fresh ``torch.Generator`` whose seed is derived by
hashing a tuple of keys (the user's seed, the layer, the block index, ...). No global RNG is read or
advanced, so results do not depend on call order, batch size, how many networks are built together,
or how weights are split into blocks.
"""

from __future__ import annotations

import hashlib
import json
import math

import torch

_MASK63 = (1 << 63) - 1


def derive_seed(*keys: object) -> int:
    """A 63-bit seed from JSON-serialisable keys (stable across runs, platforms, versions).

    Paper:
        none (utility: every random tensor is seeded by a hash of keys).

    Arguments:
        keys: JSON-serialisable values (ints, strings, lists, ...).

    Returns:
        An int in [0, 2^63).

    Example:
        >>> from randadv.nets import derive_seed
        >>> s = derive_seed("net", 3)
        >>> s == derive_seed("net", 3), s == derive_seed("net", 4)
        (True, False)
    """
    blob = json.dumps(keys, sort_keys=True, separators=(",", ":"), default=str).encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little") & _MASK63


def generator(*keys: object) -> torch.Generator:
    """A CPU generator seeded with ``derive_seed(*keys)``.

    Paper:
        none (utility: private generators instead of the global RNG).

    Arguments:
        keys: as in :func:`derive_seed`.

    Returns:
        A seeded ``torch.Generator``.

    Example:
        >>> import torch
        >>> from randadv.nets import generator
        >>> a = torch.randn(3, generator=generator("x", 1))
        >>> torch.equal(a, torch.randn(3, generator=generator("x", 1)))
        True
    """
    return torch.Generator(device="cpu").manual_seed(derive_seed(*keys))


def rademacher(n: int, *keys: object) -> torch.Tensor:
    """``n`` i.i.d. signs uniform on {-1, +1} (float32, CPU), drawn from ``generator(*keys)``."""
    bits = torch.randint(0, 2, (n,), generator=generator(*keys), dtype=torch.int64)
    return (2 * bits - 1).to(torch.float32)


def sphere_points(n: int, d: int, radius: float, *keys: object,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` points uniform on the sphere of radius ``radius`` in R^d, shape (n, d).

    Drawn in float64 and rounded to ``dtype``, so the same keys give the same points in any dtype.

    Paper:
        Bubeck et al. 2021, Section 4 (inputs on the sphere of radius sqrt(d)).

    Arguments:
        n: number of points; d: dimension; radius: the sphere's radius; keys: seed keys;
        dtype: of the result.

    Returns:
        An (n, d) tensor.

    Example:
        >>> import torch
        >>> from randadv.nets import sphere_points
        >>> x = sphere_points(4, 100, 10.0, "inputs", 0)
        >>> x.shape, torch.allclose(x.norm(dim=1), torch.full((4,), 10.0))
        (torch.Size([4, 100]), True)
    """
    g = torch.randn(n, d, generator=generator(*keys), dtype=torch.float64)
    g = g * (radius / g.norm(dim=1, keepdim=True))
    return g.to(dtype)


def correlated_sphere_pairs(n: int, d: int, rho: float, *keys: object
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` pairs ``(x, y)`` on the sphere of radius sqrt(d) in R^d with ``x . y / d = rho``
    exactly (float64): x uniform, y = rho x + sqrt(1 - rho^2) z with z uniform on the sphere's
    great circle orthogonal to x.

    Paper:
        Bartlett, Bubeck, Cherapanamjeri 2021, Lemma 3.2 (input pairs of correlation rho_0,
        whose images the ReLU correlation map follows through the layers).

    Arguments:
        n: number of pairs; d: dimension; rho: their correlation in [-1, 1]; keys: seed keys.

    Returns:
        ``(x, y)``, two (n, d) float64 tensors.

    Example:
        >>> import torch
        >>> from randadv.nets.seeding import correlated_sphere_pairs
        >>> x, y = correlated_sphere_pairs(3, 50, 0.3, "pairs", 0)
        >>> torch.allclose((x * y).sum(1) / 50, torch.full((3,), 0.3, dtype=torch.float64))
        True
    """
    g = torch.randn(2, n, d, generator=generator(*keys), dtype=torch.float64)
    x = g[0] / g[0].norm(dim=1, keepdim=True)
    z = g[1] - (g[1] * x).sum(1, keepdim=True) * x
    z = z / z.norm(dim=1, keepdim=True)
    y = rho * x + math.sqrt(max(0.0, 1.0 - rho * rho)) * z
    return x * math.sqrt(d), y * math.sqrt(d)

