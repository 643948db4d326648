"""Closed forms and numerics of the papers' theory: Gaussian moments of activations, the
single-step predictions, the ReLU correlation map, the NNGP recursion, the infinite-width
Gaussian law of (f, grad f), the Min-Pert radius, De Palma et al.'s robustness radii."""

from randadv.theory.correlation import (
    correlation_map,
    gaussian_expectation_2d,
    input_correlation,
    relu_correlation_iterates,
    relu_correlation_map,
    relu_dual_kernel,
    relu_dual_kernel_derivative,
)
from randadv.theory.gaussian import (
    ActivationMoments,
    SingleStepPrediction,
    activation_moments,
    gaussian_expectation,
    mean_abs_uniform_coordinate,
    single_step_prediction,
    uniform_coordinate_quantile,
)
from randadv.theory.gp_limit import (
    GPSamples,
    GPSingleStep,
    ValueGradLaw,
    gp_single_step,
    gp_value_grad_law,
    sample_gp_value_and_grad,
)
from randadv.theory.min_pert import (
    min_pert_delta,
    min_pert_radius,
    min_pert_ratio,
    min_pert_ratio_mean,
    min_pert_ratio_sq_moments,
    min_pert_ratio_theory,
    min_pert_ratio_torch,
)
from randadv.theory.nngp import NNGPKernel, expected_grad_norm_sq, nngp_kernel, nngp_kernel_matrix
from randadv.theory.robustness_bounds import (
    corollary1_l1_radius,
    corollary1_segment_radius,
    lp_radius,
    remark5_exponent,
    remark5_scaling,
    theorem1_l1_radius,
    theorem1_segment_radius,
    uniform_input_norm,
)
from randadv.theory.two_layer_law import (
    FourthMoments,
    TwoLayerRay,
    fourth_moments,
    sample_two_layer_ray,
)

__all__ = [
    "ActivationMoments", "NNGPKernel", "SingleStepPrediction", "activation_moments",
    "correlation_map", "expected_grad_norm_sq", "gaussian_expectation",
    "gaussian_expectation_2d", "input_correlation", "min_pert_delta", "min_pert_radius",
    "min_pert_ratio", "min_pert_ratio_mean", "min_pert_ratio_sq_moments", "min_pert_ratio_theory",
    "nngp_kernel", "nngp_kernel_matrix", "relu_correlation_iterates", "relu_correlation_map",
    "relu_dual_kernel", "relu_dual_kernel_derivative", "single_step_prediction",
    "corollary1_l1_radius", "corollary1_segment_radius", "lp_radius", "remark5_exponent",
    "remark5_scaling", "theorem1_l1_radius", "theorem1_segment_radius", "uniform_input_norm",
    "GPSamples", "GPSingleStep", "ValueGradLaw", "gp_single_step", "gp_value_grad_law",
    "sample_gp_value_and_grad", "TwoLayerRay", "sample_two_layer_ray",
    "FourthMoments", "fourth_moments", "mean_abs_uniform_coordinate", "min_pert_ratio_torch",
    "uniform_coordinate_quantile",
]
