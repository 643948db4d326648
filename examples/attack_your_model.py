"""Attack your own PyTorch model with the smallest single gradient step.

Any module returning one scalar per input works (a two-logit classifier: pass the logit
difference). ReLU ``nn.Sequential`` MLPs get the exact piecewise-linear search; other models the
generic bracket + Newton search. Every reported example is re-checked by a forward pass.

    python examples/attack_your_model.py [--d 100] [--width 256] [--n 32]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from randadv.attacks import smallest_flip_step


def main(d: int = 100, width: int = 256, n: int = 32, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, 1))
    x = torch.randn(n, d)
    result = smallest_flip_step(model, x, max_eta=20.0)
    print(result)
    with torch.no_grad():   # the result's x_adv really is adversarial: check it yourself
        assert torch.equal(torch.sign(model(result.x_adv)[:, 0]) != torch.sign(result.f_x),
                           result.flipped)
    rel = (result.perturbation_norm / x.norm(dim=1))[result.flipped]
    print(f"flipped {int(result.flipped.sum())}/{n}; median ||eta grad f|| / ||x|| = "
          f"{rel.median():.4f}")

    # A model of your own with a smooth activation and image-shaped inputs: generic path.
    conv = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Tanh(), nn.Flatten(), nn.Linear(8 * 6 * 6, 1))
    images = torch.rand(8, 1, 8, 8)
    r2 = smallest_flip_step(conv, images, max_eta=50.0)
    print("conv model:", r2)
    return {"mlp_flip_rate": result.flip_rate, "conv_flip_rate": r2.flip_rate}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--n", type=int, default=32)
    args = ap.parse_args()
    main(args.d, args.width, args.n)
