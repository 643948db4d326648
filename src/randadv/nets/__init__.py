"""Random network families (``torch.nn.Module``), seeding and blockwise weight generation."""

from randadv.nets.activations import ACTIVATIONS, Activation, get_activation
from randadv.nets.conv import (
    ConvNetBuilder,
    LogitDifference,
    RandomImageNet,
    TwoLogitModel,
    uniform_images,
)
from randadv.nets.conv_ensemble import RandomImageNetEnsemble
from randadv.nets.ensemble import RandomMLPEnsemble
from randadv.nets.layers import (
    AvgPool2d,
    Nonlinearity,
    ResidualBlock,
    SeededConv2d,
    SeededLinear,
    SumPool2d,
    set_trainable,
)
from randadv.nets.mlp import DeepRandomNet, DeepReLUNet, RandomMLP, TwoLayerRandomNet
from randadv.nets.seeded_matrix import GEN_BLOCK_ROWS, GaussianMatrix
from randadv.nets.seeding import correlated_sphere_pairs, derive_seed, generator, sphere_points
from randadv.nets.zoo import (
    ARCHITECTURES,
    RandomConvNet4,
    RandomFCNet,
    RandomLeNet,
    RandomResNet,
    build_architecture,
)

__all__ = [
    "ACTIVATIONS", "ARCHITECTURES", "Activation", "AvgPool2d", "ConvNetBuilder", "DeepRandomNet",
    "DeepReLUNet", "GEN_BLOCK_ROWS", "GaussianMatrix", "LogitDifference", "Nonlinearity",
    "RandomConvNet4", "RandomFCNet", "RandomImageNet", "RandomImageNetEnsemble", "RandomLeNet",
    "RandomMLP", "RandomMLPEnsemble", "RandomResNet", "ResidualBlock", "SeededConv2d",
    "SeededLinear", "SumPool2d", "TwoLayerRandomNet", "TwoLogitModel", "build_architecture",
    "correlated_sphere_pairs", "derive_seed", "generator", "get_activation", "set_trainable",
    "sphere_points", "uniform_images",
]
