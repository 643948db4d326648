"""Binary tasks: labels in {-1, +1}, "A vs B" means A -> -1 and B -> +1."""

from __future__ import annotations

import pytest
import torch

from randadv.data import BinaryTask
from randadv.errors import ConfigError, InvalidInputError

LABELS = torch.tensor([5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 0])


def test_pair():
    images = torch.arange(len(LABELS), dtype=torch.float32)[:, None].repeat(1, 3)
    t = BinaryTask.pair(0, 1)
    x, y = t.apply(images, LABELS)
    assert x[:, 0].tolist() == [1.0, 3.0, 6.0, 8.0, 10.0]
    assert y.tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0] and y.dtype == torch.float32
    assert t.name == "0v1" and t.classes == (0, 1)
    _, y2 = BinaryTask.pair(1, 0).apply(images, LABELS)
    assert torch.equal(y2, -y)


def test_parity():
    t = BinaryTask.parity()
    x, y = t.apply(torch.zeros(len(LABELS), 2, 2), LABELS)
    assert len(x) == len(LABELS)
    assert torch.equal(y, torch.where(LABELS % 2 == 1, 1.0, -1.0))
    assert t.negative == (0, 2, 4, 6, 8) and t.positive == (1, 3, 5, 7, 9) and t.name == "parity"


def test_groups():
    t = BinaryTask.groups([4, 0], [9, 5])
    assert t.negative == (0, 4) and t.positive == (5, 9) and t.name == "0,4v5,9"
    x, y = t.apply(torch.zeros(len(LABELS), 1), LABELS)
    assert y.tolist() == [1.0, -1.0, -1.0, 1.0, -1.0, -1.0]
    assert t.mask(LABELS).tolist() == [lab in (0, 4, 5, 9) for lab in LABELS.tolist()]


def test_parse():
    assert BinaryTask.parse("parity") == BinaryTask.parity()
    assert BinaryTask.parse("0v1") == BinaryTask.pair(0, 1)
    assert BinaryTask.parse("3-vs-8") == BinaryTask.pair(3, 8)
    assert BinaryTask.parse(" 0,2 vs 1,3 ") == BinaryTask.groups([0, 2], [1, 3])
    for bad in ("zero v one", "0v0", "1", "v2"):
        with pytest.raises(ConfigError):
            BinaryTask.parse(bad)


def test_errors():
    with pytest.raises(InvalidInputError, match="both"):
        BinaryTask.groups([0, 1], [1, 2])
    with pytest.raises(InvalidInputError, match="empty"):
        BinaryTask.groups([], [1])
    with pytest.raises(InvalidInputError, match="non-negative"):
        BinaryTask.pair(-1, 2)
    t = BinaryTask.pair(0, 1)
    with pytest.raises(InvalidInputError, match="integer"):
        t.apply(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(InvalidInputError, match="first dimension"):
        t.apply(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(InvalidInputError, match="neither"):
        t.targets(torch.tensor([0, 1, 7]))
