"""Attacks for any torch model with a scalar (binary) output; every reported example is
re-checked by a forward pass (:mod:`randadv.attacks.verify`)."""

from randadv.attacks.piecewise_linear import as_piecewise_linear, first_root_on_ray
from randadv.attacks.result import FlipStepResult
from randadv.attacks.single_step import smallest_flip_step, value_and_grad

__all__ = ["FlipStepResult", "as_piecewise_linear", "first_root_on_ray", "smallest_flip_step",
           "value_and_grad"]
