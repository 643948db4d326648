"""Binary classification tasks carved out of multi-class data sets.

Convention, used everywhere: in a task "A vs B" the classes of A get label -1 and those of B
get label +1. So MNIST "0 vs 1" maps digit 0 -> -1 and digit 1 -> +1, and the parity task
(De Palma, Kiani & Lloyd, "Adversarial Robustness Guarantees for Random Deep Neural
Networks", ICML 2021, Section 4.1, on MNIST and CIFAR-10) is "even vs odd":
y = +1 for an odd class index, -1 for an even one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from randadv.errors import ConfigError, InvalidInputError


def _classes(values: Iterable[int], what: str) -> tuple[int, ...]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InvalidInputError(f"{what} classes must be non-negative ints, got {v!r}")
        out.append(v)
    if not out:
        raise InvalidInputError(f"{what} class group is empty")
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class BinaryTask:
    """Classes in ``negative`` get y = -1, classes in ``positive`` get y = +1; others are dropped.

    Build with :meth:`pair`, :meth:`parity`, :meth:`groups` or :meth:`parse`, then call
    :meth:`apply` on ``(images, labels)``.

    Paper:
        De Palma et al. 2021, Section 4.1 (parity of CIFAR-10 classes); Lazy training 2022
        ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS 2022), Section 5
        (MNIST 0 vs 1).

    Attributes:
        negative, positive: the class groups (y = -1 and y = +1); name: e.g. ``"0v1"``.

    Example:
        >>> import torch
        >>> from randadv.data import BinaryTask
        >>> task = BinaryTask.parse("0v1")
        >>> x, y = task.apply(torch.zeros(4, 2), torch.tensor([0, 1, 2, 1]))
        >>> task.name, x.shape, y.tolist()
        ('0v1', torch.Size([3, 2]), [-1.0, 1.0, 1.0])
    """

    negative: tuple[int, ...]
    positive: tuple[int, ...]
    name: str = ""

    def __post_init__(self) -> None:
        neg = _classes(self.negative, "negative")
        pos = _classes(self.positive, "positive")
        both = sorted(set(neg) & set(pos))
        if both:
            raise InvalidInputError(f"classes {both} are in both the negative and positive group")
        object.__setattr__(self, "negative", neg)
        object.__setattr__(self, "positive", pos)
        if not self.name:
            object.__setattr__(self, "name", f"{_fmt(neg)}v{_fmt(pos)}")

    @classmethod
    def pair(cls, a: int, b: int) -> BinaryTask:
        """Class ``a`` (y = -1) vs class ``b`` (y = +1), e.g. ``pair(0, 1)`` for MNIST 0 vs 1."""
        return cls((a,), (b,), f"{a}v{b}")

    @classmethod
    def groups(cls, negative: Iterable[int], positive: Iterable[int],
               name: str = "") -> BinaryTask:
        """Any two disjoint class groups: ``negative`` (y = -1) vs ``positive`` (y = +1)."""
        return cls(tuple(negative), tuple(positive), name)

    @classmethod
    def parity(cls, num_classes: int = 10) -> BinaryTask:
        """Even classes (y = -1) vs odd classes (y = +1), as in De Palma et al. (2021), Sec. 4.1."""
        if num_classes < 2:
            raise InvalidInputError(f"parity needs num_classes >= 2, got {num_classes}")
        return cls(tuple(range(0, num_classes, 2)), tuple(range(1, num_classes, 2)), "parity")

    @classmethod
    def parse(cls, spec: str) -> BinaryTask:
        """Parse ``"parity"``, ``"0v1"`` / ``"0-vs-1"`` or groups ``"0,2,4v1,3,5"``."""
        s = spec.strip().lower()
        if s == "parity":
            return cls.parity()
        m = re.fullmatch(r"\s*([\d,\s]+?)\s*(?:-?vs?-?)\s*([\d,\s]+?)\s*", s)
        if m is None:
            raise ConfigError(f"bad binary task {spec!r}: use 'parity', 'AvB' (e.g. '0v1') or "
                              f"comma-separated groups (e.g. '0,2,4v1,3,5')")
        try:
            neg, pos = ([int(t) for t in g.split(",") if t.strip()] for g in m.groups())
            return cls.groups(neg, pos)
        except (ValueError, InvalidInputError) as e:
            raise ConfigError(f"bad binary task {spec!r}: {e}") from e

    @property
    def classes(self) -> tuple[int, ...]:
        """All classes the task keeps, sorted."""
        return tuple(sorted(self.negative + self.positive))

    def mask(self, labels: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the samples whose label belongs to the task."""
        labels = _check_labels(labels)
        return torch.isin(labels, torch.tensor(self.classes, device=labels.device))

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """float32 targets in {-1, +1}; raises if a label is in neither group."""
        labels = _check_labels(labels)
        keep = self.mask(labels)
        if not bool(keep.all()):
            bad = sorted(set(labels[~keep].tolist()))
            raise InvalidInputError(f"labels {bad[:10]} are in neither group of task {self.name}")
        pos = torch.isin(labels, torch.tensor(self.positive, device=labels.device))
        return torch.where(pos, 1.0, -1.0).to(torch.float32)

    def apply(self, images: torch.Tensor,
              labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the task's samples (order preserved): ``(x, y)`` with y float32 in {-1, +1}."""
        labels = _check_labels(labels)
        if not isinstance(images, torch.Tensor) or images.shape[:1] != labels.shape:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise InvalidInputError(f"images {shape} and labels {tuple(labels.shape)} "
                                    f"must have the same first dimension")
        keep = self.mask(labels)
        return images[keep], self.targets(labels[keep])


def _check_labels(labels: torch.Tensor) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise InvalidInputError("labels must be a 1-D torch.Tensor")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise InvalidInputError(f"labels must be an integer tensor, got {labels.dtype}")
    return labels


def _fmt(classes: tuple[int, ...]) -> str:
    return ",".join(map(str, classes))
