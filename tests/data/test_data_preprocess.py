"""downsample / flatten / normalize_rows."""

from __future__ import annotations

import pytest
import torch

from randadv.data import LAZY_TRAINING_SIZES, downsample, flatten, normalize_rows
from randadv.errors import InvalidInputError


@pytest.fixture
def imgs():
    return torch.rand(6, 28, 28, generator=torch.Generator().manual_seed(0))


def test_identity(imgs):
    assert downsample(imgs, 28) is imgs
    assert downsample(imgs, 28, mode="bilinear") is imgs


def test_shapes_and_paper_sizes(imgs):
    assert LAZY_TRAINING_SIZES == (5, 7, 10, 14, 20, 25, 28)
    for s in LAZY_TRAINING_SIZES:
        out = flatten(downsample(imgs, s))
        assert out.shape == (6, s * s) and out.dtype == torch.float32
    assert downsample(torch.rand(2, 3, 32, 32), 16).shape == (2, 3, 16, 16)


def test_area_mean(imgs):
    # exact block means when s divides 28
    out = downsample(imgs, 14)
    assert torch.allclose(out, imgs.reshape(6, 14, 2, 14, 2).mean(dim=(2, 4)), atol=1e-6)
    for s in LAZY_TRAINING_SIZES:
        for mode in ("area", "bilinear"):
            m = downsample(imgs, s, mode).mean(dim=(1, 2))
            assert torch.allclose(m, imgs.mean(dim=(1, 2)), atol=0.02), (s, mode)


def test_downsample_errors(imgs):
    for bad in (0, 29, 2.5):
        with pytest.raises(InvalidInputError, match="size"):
            downsample(imgs, bad)
    with pytest.raises(InvalidInputError, match="mode"):
        downsample(imgs, 7, mode="cubic")
    with pytest.raises(InvalidInputError):
        downsample(imgs.flatten(1), 7)
    with pytest.raises(InvalidInputError, match="floating"):
        downsample((imgs * 255).to(torch.uint8), 7)


def test_flatten(imgs):
    assert torch.equal(flatten(imgs)[2], imgs[2].reshape(-1))


def test_normalize_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    assert torch.allclose(normalize_rows(x), torch.tensor([[0.6, 0.8], [0.0, -1.0]]))
    with pytest.raises(InvalidInputError, match=r"zero rows: index \[1, 3\]"):
        normalize_rows(torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(InvalidInputError, match="NaN"):
        normalize_rows(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(InvalidInputError):
        normalize_rows(torch.ones(3))
