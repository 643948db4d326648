"""Attacks for any torch model with a scalar (binary) output; every reported example is
re-checked by a forward pass (:mod:`randadv.attacks.verify`). The minimum-norm attacks are
:class:`MinNormAttack` subclasses (:mod:`randadv.attacks.base`), also called as functions."""

from randadv.attacks.base import AttackProblem, MinNormAttack
from randadv.attacks.closest import ClosestAdversarial, closest_adversarial
from randadv.attacks.ddn import DDN, ddn
from randadv.attacks.deepfool import DeepFool, deepfool
from randadv.attacks.fab import FAB, fab
from randadv.attacks.fmn import FMN, fmn
from randadv.attacks.linearity import linearity_radius, max_relative_gradient_change
from randadv.attacks.min_norm import ClosestResult
from randadv.attacks.pgd import PGDResult, pgd_l2, project_l2_box
from randadv.attacks.piecewise_linear import first_root_on_ray
from randadv.attacks.result import FlipStepResult, RayFlipStepResult
from randadv.attacks.segment import SegmentCrossing, first_boundary_crossing
from randadv.attacks.single_step import (
    smallest_flip_step,
    smallest_flip_step_on_ray,
    value_and_grad,
)
from randadv.attacks.verify import verified_adversarial, verified_in_ball
from randadv.protocol.piecewise import as_piecewise_linear

__all__ = [
    "DDN", "FAB", "FMN", "AttackProblem", "ClosestAdversarial", "ClosestResult", "DeepFool",
    "MinNormAttack", "FlipStepResult", "PGDResult", "RayFlipStepResult", "SegmentCrossing",
    "as_piecewise_linear", "closest_adversarial", "ddn", "deepfool", "fab",
    "first_boundary_crossing", "first_root_on_ray", "fmn", "linearity_radius",
    "max_relative_gradient_change", "pgd_l2", "project_l2_box", "smallest_flip_step",
    "smallest_flip_step_on_ray", "value_and_grad", "verified_adversarial", "verified_in_ball",
]
