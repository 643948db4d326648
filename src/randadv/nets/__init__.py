"""Random network families (``torch.nn.Module``), seeding and blockwise weight generation."""

from randadv.nets.activations import ACTIVATIONS, Activation, get_activation
from randadv.nets.ensemble import RandomMLPEnsemble
from randadv.nets.mlp import DeepRandomNet, DeepReLUNet, RandomMLP, TwoLayerRandomNet
from randadv.nets.seeded_matrix import GEN_BLOCK_ROWS, GaussianMatrix
from randadv.nets.seeding import derive_seed, generator, sphere_points

__all__ = [
    "ACTIVATIONS", "Activation", "DeepRandomNet", "DeepReLUNet", "GEN_BLOCK_ROWS", "GaussianMatrix",
    "RandomMLP", "RandomMLPEnsemble", "TwoLayerRandomNet", "derive_seed", "generator",
    "get_activation", "sphere_points",
]
