"""Where the data sets are looked for.

Search order (first hit wins):

1. ``root`` if given: ``root`` itself plus dataset-specific subfolders;
2. else, if the environment variable ``RANDADV_DATA_DIR`` is set:
   ``$RANDADV_DATA_DIR/<name>`` and ``$RANDADV_DATA_DIR``;
3. else ``<ancestor>/shared/data/<name>`` for each ancestor of the installed package
   (a checkout at ``X/main`` finds ``X/shared/data/<name>``), then ``~/.randadv/data/<name>``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from randadv.data.errors import DataNotFoundError

ENV_VAR = "RANDADV_DATA_DIR"
HOW_TO_POINT = (f"download it, then pass its directory with --data-dir (or root=...) "
                f"or set the environment variable {ENV_VAR}")

_MAX_ANCESTORS = 8


def base_dirs(name: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Base directories searched for data set ``name`` (e.g. ``"mnist"``), in order."""
    if root is not None:
        return [Path(root).expanduser()]
    env = os.environ.get(ENV_VAR)
    if env:
        base = Path(env).expanduser()
        return [base / name, base]
    dirs: list[Path] = []
    here = Path(__file__).resolve().parent
    for anc in list(here.parents)[:_MAX_ANCESTORS]:
        dirs.append(anc / "shared" / "data" / name)
    dirs.append(Path.home() / ".randadv" / "data" / name)
    return _unique(dirs)


def search_dirs(name: str, root: str | os.PathLike[str] | None = None,
                subdirs: Sequence[str] = ()) -> list[Path]:
    """Every directory searched for ``name``: each base dir, then its ``subdirs``."""
    out: list[Path] = []
    for base in base_dirs(name, root):
        out.append(base)
        out.extend(base / s for s in subdirs)
    return _unique(out)


def find_file(names: Sequence[str], dirs: Sequence[Path]) -> Path | None:
    """First existing ``dir/name`` over ``dirs`` (outer loop) and ``names`` (inner loop)."""
    for d in dirs:
        for n in names:
            p = d / n
            if p.is_file():
                return p
    return None


def not_found(what: str, dirs: Sequence[Path]) -> DataNotFoundError:
    """Build the :class:`DataNotFoundError` naming ``what`` and every searched directory."""
    listing = "\n".join(f"  - {d}" for d in dirs)
    return DataNotFoundError(f"{what} not found. Looked in:\n{listing}\nTo fix: {HOW_TO_POINT}.")


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[str] = set()
    out = []
    for p in paths:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out
