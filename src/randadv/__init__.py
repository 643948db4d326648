"""randadv: adversarial examples in random and lazily-trained neural networks.

Library layers, bottom to top: ``nets``, ``theory``, ``data`` -> ``attacks``, ``exact``, ``train``
-> ``experiments`` -> ``runner``, ``report`` -> ``cli``.
"""

__version__ = "0.1.0"
