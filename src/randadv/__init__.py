"""randadv: adversarial examples in random and lazily-trained neural networks.

Library layers, bottom to top: ``nets``, ``theory``, ``data`` -> ``attacks``, ``exact``, ``train``
-> ``experiments`` -> ``runner``, ``report`` -> ``cli``.

``randadv.load_results(out)`` and ``randadv.load_summary(out)`` read a run folder.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
"""The package's version.

Paper:
    none (utility: the release of randadv).

Example:
    >>> import randadv
    >>> isinstance(randadv.__version__, str)
    True
"""
__all__ = ["__version__", "load_results", "load_summary"]


def __getattr__(name: str) -> Any:
    # lazy: `import randadv` stays cheap (no torch) until a run folder is read
    if name in ("load_results", "load_summary"):
        from randadv.runner import results

        return getattr(results, name)
    raise AttributeError(f"module 'randadv' has no attribute {name!r}")
