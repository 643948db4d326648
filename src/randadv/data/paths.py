"""Where the data sets are looked for.

Search order (first hit wins):

1. ``root`` if given (``--data-dir``): ``root`` itself plus dataset-specific subfolders;
2. else, if the environment variable ``RANDADV_DATA_DIR`` is set:
   ``$RANDADV_DATA_DIR/<name>`` and ``$RANDADV_DATA_DIR``;
3. else ``shared/data/<name>`` under the working folder and each of its parents (a run started
   in a checkout ``X/main`` finds ``X/shared/data/<name>``, whatever the install), then under
   each ancestor of the installed package, then ``~/.randadv/data/<name>``.

An explicit place (1 or 2) is the only one searched: a wrong ``--data-dir`` is reported, never
silently replaced by data found elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from randadv.data.errors import DataNotFoundError

ENV_VAR = "RANDADV_DATA_DIR"
"""The environment variable naming a data directory (the CLI's ``--data-dir`` wins over it).

Paper:
    none (utility: where the data sets are looked for).

Example:
    >>> from randadv.data import ENV_VAR
    >>> ENV_VAR
    'RANDADV_DATA_DIR'
"""
HOW_TO_POINT = (f"pass its directory with --data-dir DIR (root=DIR in Python) or set "
                f"{ENV_VAR}, or put it in shared/data/<name> under the working folder")

_MAX_ANCESTORS = 8
_FIRST_SHOWN = 3


def base_dirs(name: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Base directories searched for data set ``name`` (e.g. ``"mnist"``), in order."""
    if root is not None:
        return [Path(root).expanduser()]
    env = os.environ.get(ENV_VAR)
    if env:
        base = Path(env).expanduser()
        return [base / name, base]
    dirs: list[Path] = []
    cwd = Path.cwd().resolve()
    for anc in [cwd, *list(cwd.parents)[:_MAX_ANCESTORS]]:
        dirs.append(anc / "shared" / "data" / name)
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
    """Build the :class:`DataNotFoundError` naming ``what``, the fix and the first places looked
    on its first line (a one-line CLI error shows that much), then every searched directory."""
    first = ", ".join(str(d) for d in dirs[:_FIRST_SHOWN])
    more = f" and {len(dirs) - _FIRST_SHOWN} more" if len(dirs) > _FIRST_SHOWN else ""
    listing = "\n".join(f"  - {d}" for d in dirs)
    return DataNotFoundError(f"{what} not found; to fix: {HOW_TO_POINT}. Looked in {first}{more}"
                             f"\nAll places looked in:\n{listing}\nTo fix: {HOW_TO_POINT}.")


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[str] = set()
    out = []
    for p in paths:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out
