"""Training: two-layer networks in the lazy regime ("Adversarial Robustness is at Odds with
Lazy Training", NeurIPS 2022): SGD until the iterates leave the lazy ball (Section 5.1),
projected adversarial training (Algorithm 1), saving/loading and caching trained models; and
standard training (Adam, checkpoints) of the residual nets of De Palma et al. (2021), Sec. 4.1."""

from randadv.train.adversarial import (
    AdversarialTrainConfig,
    project_to_lazy_ball,
    train_adversarial,
)
from randadv.train.lazy import (
    LazyTrainConfig,
    LazyTwoLayerNet,
    TrainResult,
    evaluate,
    lazy_radius,
    logistic_loss,
    train_lazy_sgd,
    train_lazy_sgd_c0s,
)
from randadv.train.lazy_deep import LazyDeepNet
from randadv.train.standard import StandardTrainConfig, train_standard
from randadv.train.store import ModelCache, config_key, load_model, save_model

__all__ = [
    "AdversarialTrainConfig", "LazyDeepNet", "LazyTrainConfig", "LazyTwoLayerNet", "ModelCache",
    "StandardTrainConfig", "TrainResult", "config_key", "evaluate", "lazy_radius", "load_model",
    "logistic_loss", "project_to_lazy_ball", "save_model", "train_adversarial", "train_lazy_sgd",
    "train_lazy_sgd_c0s", "train_standard",
]
