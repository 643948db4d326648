"""Seeded Gaussian weight matrices, materialised or generated block by block on the fly.

The matrix is cut into fixed generation blocks of ``GEN_BLOCK_ROWS`` rows; block ``b`` is drawn
from its own generator seeded by ``derive_seed(*keys, b)``. Hence the entries depend only on the
keys, never on how the matrix is used: materialising it, or streaming it in compute blocks of any
size (a multiple of the generation block) to stay under a memory budget, gives the same weights.
This is how widths such as k = 10^6 with d = 10^4 (k*d = 10^10 entries) run without holding W.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.seeding import derive_seed, generator

GEN_BLOCK_ROWS = 256
"""Rows drawn from one seed: a matrix is generated in blocks of this many rows, each from its
own seed, so its values do not depend on the compute block size.

Paper:
    none (utility: the seeding of large random weight matrices).

Example:
    >>> from randadv.nets import GEN_BLOCK_ROWS
    >>> GEN_BLOCK_ROWS
    256
"""
DEFAULT_MAX_WEIGHT_BYTES = 2 * 1024**3


class GaussianMatrix(nn.Module):
    """A ``rows x cols`` matrix with i.i.d. N(0, std^2) entries, a pure function of ``keys``.

    Arguments:
        rows, cols: shape.
        std: standard deviation of the entries.
        keys: seed keys (e.g. ``(seed, "layer", 0)``).
        dtype: dtype of the weights (entries are drawn in float32 and cast, so a float64 matrix
            holds exactly the float32 matrix's values).
        materialize: hold the whole matrix (True), stream it (False), or decide from
            ``max_bytes`` (None).
        max_bytes: memory budget used when ``materialize`` is None.
        block_rows: rows per compute block when streaming (rounded up to ``GEN_BLOCK_ROWS``).
        generate_on: ``"cpu"`` (default; identical values on every machine) or ``"device"``
            (draw blocks on the input's device: faster on a GPU, other values).

    Paper:
        Bubeck et al. 2021, eq. (1) and Bartlett et al. 2021, Section 1, (NN-DEF) (the
        Gaussian weights, at any size).

    Example:
        >>> import torch
        >>> from randadv.nets import GaussianMatrix
        >>> held = GaussianMatrix(600, 5, 1.0, (0, "doc"), materialize=True)
        >>> streamed = GaussianMatrix(600, 5, 1.0, (0, "doc"), materialize=False, block_rows=256)
        >>> x = torch.randn(2, 5)
        >>> torch.allclose(held.mm(x), streamed.mm(x), atol=1e-5)
        True
    """

    def __init__(self, rows: int, cols: int, std: float, keys: tuple, *,
                 dtype: torch.dtype = torch.float32, materialize: bool | None = None,
                 max_bytes: int = DEFAULT_MAX_WEIGHT_BYTES, block_rows: int = 4096,
                 generate_on: str = "cpu", device: torch.device | str | None = None) -> None:
        super().__init__()
        if rows <= 0 or cols <= 0:
            raise InvalidInputError(f"matrix shape must be positive, got {rows} x {cols}")
        if generate_on not in ("cpu", "device"):
            raise InvalidInputError(f"generate_on must be 'cpu' or 'device', got {generate_on!r}")
        self.rows, self.cols, self.std, self.keys = rows, cols, float(std), tuple(keys)
        self.dtype = dtype
        self.generate_on = generate_on
        self.block_rows = max(GEN_BLOCK_ROWS, -(-block_rows // GEN_BLOCK_ROWS) * GEN_BLOCK_ROWS)
        nbytes = rows * cols * torch.empty((), dtype=dtype).element_size()
        self.materialized = bool(nbytes <= max_bytes) if materialize is None else bool(materialize)
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        if self.materialized:
            self.register_buffer("weight", self._draw(0, rows, self._device), persistent=False)

    @property
    def n_blocks(self) -> int:
        return -(-self.rows // GEN_BLOCK_ROWS)

    def _draw(self, start: int, stop: int, device: torch.device) -> torch.Tensor:
        """Rows ``start:stop`` (``start`` a multiple of ``GEN_BLOCK_ROWS``), each generation
        block drawn in float32 straight into its rows of the output, then cast."""
        on_device = self.generate_on == "device" and device.type != "cpu"
        w = torch.empty(stop - start, self.cols, dtype=torch.float32,
                        device=device if on_device else "cpu")
        for b in range(start // GEN_BLOCK_ROWS, -(-stop // GEN_BLOCK_ROWS)):
            lo = b * GEN_BLOCK_ROWS
            rows = w[lo - start:min(lo + GEN_BLOCK_ROWS, self.rows) - start]
            if on_device:
                gen = torch.Generator(device=device).manual_seed(derive_seed(*self.keys, b))
            else:
                gen = generator(*self.keys, b)
            rows.normal_(0.0, self.std, generator=gen)
        return w.to(device=device, dtype=self.dtype)

    def blocks(self, device: torch.device | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(start_row, W[start_row:start_row + n])`` covering the matrix in order."""
        if self.materialized:
            yield 0, self.weight
            return
        dev = device or self._device
        for start in range(0, self.rows, self.block_rows):
            yield start, self._draw(start, min(self.rows, start + self.block_rows), dev)

    def full(self) -> torch.Tensor:
        """The whole matrix (draws it if streamed: only for matrices that fit in memory)."""
        if self.materialized:
            return self.weight
        return self._draw(0, self.rows, self._device)

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T`` for ``x`` of shape (..., cols) -> (..., rows)."""
        if self.materialized:
            return x @ self.weight.T
        return torch.cat([x @ w.T for _, w in self.blocks(x.device)], dim=-1)

    def rmm(self, y: torch.Tensor) -> torch.Tensor:
        """``y @ W`` for ``y`` of shape (..., rows) -> (..., cols)."""
        if self.materialized:
            return y @ self.weight
        out = None
        for start, w in self.blocks(y.device):
            part = y[..., start:start + w.shape[0]] @ w
            out = part if out is None else out.add_(part)
        return out

    def mm_rmm(self, x: torch.Tensor, back: Callable[[int, torch.Tensor], torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, u @ W)`` with ``z = x @ W.T`` (..., rows) and ``u = back(start, z_block)`` the
        rows ``start:start + n`` of u, from one pass over the matrix: a streamed matrix is drawn
        once instead of twice. The products are those of :meth:`mm` then :meth:`rmm` (the
        same blocks, in the same order; bit-identical results on this project's machine).

        Paper:
            none (utility: one pass over a streamed weight matrix for f and grad f).

        Example:
            >>> import torch
            >>> from randadv.nets import GaussianMatrix
            >>> w = GaussianMatrix(600, 5, 1.0, (0, "doc"), materialize=False, block_rows=256)
            >>> x, a = torch.randn(2, 5), torch.randn(600)
            >>> z, g = w.mm_rmm(x, lambda start, zb: torch.relu(zb) * a[start:start + zb.shape[-1]])
            >>> torch.allclose(g, w.rmm(torch.relu(w.mm(x)) * a), atol=1e-5)
            True
        """
        if self.materialized:
            z = x @ self.weight.T
            return z, back(0, z) @ self.weight
        zs, out = [], None
        for start, w in self.blocks(x.device):
            zb = x @ w.T
            zs.append(zb)
            part = back(start, zb) @ w
            out = part if out is None else out.add_(part)
        return torch.cat(zs, dim=-1), out

    def extra_repr(self) -> str:
        mode = "materialized" if self.materialized else f"streamed, block_rows={self.block_rows}"
        return f"{self.rows}x{self.cols}, std={self.std:.4g}, {mode}"
