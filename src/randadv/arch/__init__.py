"""Architecture descriptions: one object per network family from which come the module
(``build(seed)``), its piecewise-linear form (``piecewise_form(seed)``: protocol's one reader;
``plain(seed)``: a plain ``nn.Sequential``), its infinite-width law and the
theory's predictions (MLPs), ``n`` and the pixel ratio with De Palma et al.'s radii (all).

:class:`MLPSpec` describes ``RandomMLP`` / ``TwoLayerRandomNet`` / ``DeepRandomNet`` /
``DeepReLUNet`` with the parameter names of :class:`randadv.nets.RandomMLP` (``widths``,
``activation``, ``output``, ``bias_std``, ``hidden_gain``), the names :mod:`randadv.theory`
uses too; :class:`ImageNetSpec` describes the zoo's ``fc``, ``lenet``, ``conv4``, ``resnet``
(their classes' names: ``sigma_w2``, ``sigma_b2``, ...); :class:`SmallNetSpec` the small fc and
conv ReLU nets an exact solver finishes (``fc:D:W1-W2``, ``conv:CxHxW:C1-C2[:pK]``);
:mod:`.widths` the hidden widths of the families the experiments sweep.

Layer: above ``theory`` and ``protocol`` (a spec builds ``nets`` modules and calls ``theory``),
below ``exact`` (which, with ``attacks`` and ``experiments``, may take specs).
"""

from randadv.arch.image import ImageNetSpec
from randadv.arch.mlp import MLPSpec
from randadv.arch.small import SmallNetSpec
from randadv.arch.widths import MULTILAYER_FAMILIES, bottleneck_widths, multilayer_family_widths

__all__ = ["MULTILAYER_FAMILIES", "ImageNetSpec", "MLPSpec", "SmallNetSpec", "bottleneck_widths",
           "multilayer_family_widths"]
