"""One-call loaders for the binary tasks of the papers: load, select, downsample, flatten."""

from __future__ import annotations

import os

import torch

from randadv.data.cifar import load_cifar10
from randadv.data.mnist import load_mnist
from randadv.data.preprocess import downsample, flatten, normalize_rows
from randadv.data.tasks import BinaryTask


def _finish(images: torch.Tensor, labels: torch.Tensor, task: BinaryTask, size: int,
            normalize: bool, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = task.apply(images, labels)
    x = flatten(downsample(x, size, mode))
    return (normalize_rows(x) if normalize else x.contiguous()), y


def load_binary_mnist(root: str | os.PathLike[str] | None = None, split: str = "train",
                      a: int = 0, b: int = 1, size: int = 28, normalize: bool = False,
                      task: BinaryTask | None = None,
                      mode: str = "area") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digit ``a`` (y = -1) vs digit ``b`` (y = +1), downsampled to ``size`` x ``size``.

    Returns ``x`` float32 (N, size**2) and ``y`` float32 in {-1, +1}; ``normalize=True``
    scales every row of ``x`` to unit norm. ``task`` (e.g. ``BinaryTask.parity()``) overrides
    ``a`` and ``b``. The default 0 vs 1 task with ``size`` in
    :data:`~randadv.data.preprocess.LAZY_TRAINING_SIZES` is the setting of "Adversarial
    Robustness is at Odds with Lazy Training" (NeurIPS 2022), Section 5: 12,665 train and
    2,115 test images.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 5 (MNIST 0 vs 1, d from 25 to 784).

    Arguments:
        root: the data directory (None: the default search); split: ``"train"`` or
        ``"test"``; a, b: the two digits; size: side after downsampling; normalize: unit-norm
        rows; task: class groups instead of ``a``, ``b``; mode: the downsampling mode.

    Returns:
        ``(x, y)`` as above.

    Example:
        >>> from randadv.data import load_binary_mnist
        >>> x, y = load_binary_mnist(split="test", size=10)
        >>> x.shape, sorted(set(y.tolist()))
        (torch.Size([2115, 100]), [-1.0, 1.0])
    """
    images, labels = load_mnist(root, split)
    return _finish(images, labels, task or BinaryTask.pair(a, b), size, normalize, mode)


def load_binary_cifar10(root: str | os.PathLike[str] | None = None, split: str = "train",
                        task: BinaryTask | None = None, size: int = 32, normalize: bool = False,
                        mode: str = "area") -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 binary task (default: parity, De Palma et al., ICML 2021, Section 4.1).

    Returns ``x`` float32 (N, 3 * size**2) (channel-major flattening) and ``y`` in {-1, +1}.

    Paper:
        De Palma et al. 2021, Section 4.1 (the binary CIFAR-10 task of Figures 3, 4).

    Arguments:
        root: the data directory (None: the default search); split: ``"train"`` or
        ``"test"``; task: the class groups (default parity); size: side after downsampling;
        normalize: unit-norm rows; mode: the downsampling mode.

    Returns:
        ``(x, y)`` as above.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from randadv.data import load_binary_cifar10
        >>> root = Path(tempfile.mkdtemp())   # a two-image test batch in the binary format
        >>> rec = np.zeros((2, 3073), dtype=np.uint8); rec[:, 0] = [2, 7]
        >>> _ = (root / "test_batch.bin").write_bytes(rec.tobytes())
        >>> x, y = load_binary_cifar10(root, split="test", size=8)
        >>> x.shape, y.tolist()   # parity: class 2 -> -1, class 7 -> +1
        (torch.Size([2, 192]), [-1.0, 1.0])
    """
    images, labels = load_cifar10(root, split)
    return _finish(images, labels, task or BinaryTask.parity(), size, normalize, mode)
