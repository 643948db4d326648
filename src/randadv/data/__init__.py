"""Data layer: MNIST / CIFAR-10 loaders, binary tasks and preprocessing.

Data directories: pass ``root`` (the CLI's ``--data-dir``), or set ``RANDADV_DATA_DIR``, or
put the files in ``shared/data/<name>`` beside the checkout or in ``~/.randadv/data/<name>``;
see :mod:`randadv.data.paths`.
"""

from randadv.data.binary import load_binary_cifar10, load_binary_mnist
from randadv.data.cifar import CIFAR10_CLASSES, cifar10_dirs, load_cifar10
from randadv.data.errors import DataFormatError, DataNotFoundError
from randadv.data.mnist import load_mnist, mnist_dirs, read_idx_images, read_idx_labels
from randadv.data.paths import ENV_VAR
from randadv.data.preprocess import LAZY_TRAINING_SIZES, downsample, flatten, normalize_rows
from randadv.data.tasks import BinaryTask

__all__ = [
    "CIFAR10_CLASSES",
    "ENV_VAR",
    "LAZY_TRAINING_SIZES",
    "BinaryTask",
    "DataFormatError",
    "DataNotFoundError",
    "cifar10_dirs",
    "clear_cache",
    "downsample",
    "flatten",
    "load_binary_cifar10",
    "load_binary_mnist",
    "load_cifar10",
    "load_mnist",
    "mnist_dirs",
    "normalize_rows",
    "read_idx_images",
    "read_idx_labels",
]


def clear_cache() -> None:
    """Drop every parsed file held in memory.

    Paper:
        none (utility: the loaders' in-memory cache of parsed files).

    Returns:
        None.

    Example:
        >>> from randadv.data import clear_cache
        >>> clear_cache() is None
        True
    """
    from randadv.data import cifar, mnist

    for f in (mnist.read_idx_images, mnist.read_idx_labels,
              cifar.read_cifar_bin, cifar.read_cifar_pickle):
        f.cache_clear()
