"""The ``--set`` parameters of an experiment: :class:`Param` (a typed parameter and the checks
its declaration implies), their shared meanings (:data:`COMMON_HELP`), the parsing of ``--set``
text (:func:`parse_value`), the table ``randadv params`` prints (:func:`param_table`) and the
store's columns of a record type (:func:`record_columns`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from randadv.errors import ConfigError

if TYPE_CHECKING:
    from randadv.framework.experiment import Experiment


@dataclass(frozen=True)
class Param:
    """One ``--set`` parameter: its default (whose type is the parameter's: int, float, bool,
    str or a list of one of them), its meaning, and the checks the type implies, applied to the
    value or to every element of a list.

    Paper:
        none (utility: an experiment's ``parameters`` declare each of its grid's knobs once).

    Attributes:
        default: the ``quick`` profile's value (its type is the parameter's); help: its
        meaning (empty: the shared one of :data:`COMMON_HELP`); min / max: inclusive bounds;
        gt / lt: strict bounds; choices: the allowed strings; unique: no repeated element;
        why: appended to a bound's message.

    Example:
        >>> from randadv.framework import Param
        >>> from randadv.errors import ConfigError
        >>> nets = Param(12, "networks per cell", min=2, why="standard errors")
        >>> try:
        ...     nets.check("nets", 1)
        ... except ConfigError as e:
        ...     print(e)
        nets must be >= 2, got 1 (standard errors)
    """

    default: Any
    help: str = ""      # empty: the shared meaning in COMMON_HELP
    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | None = None
    unique: bool = False
    why: str = ""

    def check(self, key: str, value: Any) -> None:
        """Raise :class:`ConfigError` naming ``key`` if ``value`` breaks a check."""
        items = value if isinstance(value, list) else [value]
        require(isinstance(value, list) == isinstance(self.default, list) and items != [],
                f"{key} must be a non-empty list" if isinstance(self.default, list)
                else f"{key} must be a single value, got {value}")
        if self.choices is not None:
            bad = [v for v in items if v not in self.choices]
            require(not bad, f"unknown {key} {bad if isinstance(value, list) else repr(value)}; "
                             f"known: {', '.join(map(str, self.choices))}")
        lo = (self.min, "[", ">=") if self.min is not None else (self.gt, "(", ">")
        hi = (self.max, "]", "<=") if self.max is not None else (self.lt, ")", "<")
        ok = all((lo[0] is None or (v >= lo[0] if lo[1] == "[" else v > lo[0])) and
                 (hi[0] is None or (v <= hi[0] if hi[1] == "]" else v < hi[0])) for v in items)
        if not ok:
            rule = (f"in {lo[1]}{lo[0]:g}, {hi[0]:g}{hi[1]}" if lo[0] is not None
                    and hi[0] is not None else f"{lo[2]} {lo[0]:g}" if lo[0] is not None
                    else f"{hi[2]} {hi[0]:g}")
            raise ConfigError(f"{key} must be {rule}, got {value}"
                              + (f" ({self.why})" if self.why else ""))
        require(not self.unique or len(set(items)) == len(items), f"{key} repeat: {value}")


COMMON_HELP = {   # meanings shared by several experiments' parameters of the same name
    "attack_steps": "steps of each closest_adversarial attack",
    "batch_size": "mini-batch size of the training",
    "data_dir": ("dataset folder for this run (empty: --data-dir, $RANDADV_DATA_DIR, the usual "
                 "places)"),
    "lr": "learning rate of the training",
    "max_eta": "largest |eta| searched for the smallest flipping step x + eta grad f(x)",
    "max_rel": "largest relative perturbation ||eta grad f|| / ||x|| searched",
    "model_dir": "folder caching trained models, resumable (empty: OUT/models of the run)",
    "n_test": "test images attacked/evaluated (0: the whole test split)",
    "n_train": "training images used (0: the whole training split)",
    "nets": "number of random networks (independent seeds) per grid cell",
    "norms": "norms of the distances: l1, l2, linf",
    "output": "output weights: rademacher (+-1/sqrt(k), the paper's) or gaussian",
    "seeds": "training seeds (networks) per grid cell",
}


COLUMN_TYPES = {int: "int", float: "float", str: "str", bool: "bool"}


def record_columns(record: type) -> tuple[tuple[str, str], ...]:
    """``(name, type)`` of each field of a record type (a ``TypedDict`` with int, float, str or
    bool fields), in the order of its declaration: the columns of the results store."""
    hints = typing.get_type_hints(record)
    bad = {k: t for k, t in hints.items() if t not in COLUMN_TYPES}
    if bad:
        raise TypeError(f"{record.__name__}: fields {bad} are not int, float, str or bool")
    return tuple((k, COLUMN_TYPES[t]) for k, t in hints.items())


def type_name(value: Any) -> str:
    """The ``--set`` type of a profile value: int, float, bool, str or list[...]."""
    if isinstance(value, list):
        return f"list[{type_name(value[0]) if value else 'str'}]"
    return type(value).__name__ if isinstance(value, bool | int | float) else "str"


def param_table(exp: Experiment, profile: str | None = None) -> list[dict[str, Any]]:
    """One row per ``--set`` key of ``exp``: key, type, each profile's value (as ``--set``
    text), meaning (``exp.param_help``)."""
    if profile is not None and profile not in exp.profiles:
        raise ConfigError(f"unknown profile {profile!r} for {exp.name}; "
                          f"known: {', '.join(exp.profiles)}")
    keys = sorted(set().union(*(set(p) for p in exp.profiles.values())))
    rows = []
    for key in keys:
        values = {n: _set_text(p[key]) if key in p else "(absent)"
                  for n, p in exp.profiles.items()}
        default = next(p[key] for p in exp.profiles.values() if key in p)
        rows.append({"key": key, "type": type_name(default), "values": values,
                     "help": exp.param_help.get(key, "(no description)")})
    return rows


def _set_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_set_text(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return '""' if value == "" else str(value)


def parse_value(key: str, text: str, default: Any) -> Any:
    """Parse a ``--set key=value`` string to the type of the profile's default value.

    Lists accept ``1,2,3`` or ``[1, 2, 3]``; booleans ``true/false/1/0/yes/no``.
    """
    if not isinstance(text, str):
        return text
    raw = text.strip()
    text = text if text.isprintable() else repr(text)   # messages stay on one line
    if raw == "":
        raise ConfigError(f"--set {key}= has an empty value")
    if isinstance(default, list):
        items = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
        parts = [p.strip().strip("'\"") for p in items.split(",") if p.strip()]
        if not parts:
            raise ConfigError(f"--set {key}={text}: empty list")
        elem = default[0] if default else ""
        return [parse_value(key, p, elem) for p in parts]
    if isinstance(default, bool):
        low = raw.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"--set {key}={text}: expected true or false")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            pass
        try:
            value = float(raw)   # 1e6, 2.0
        except ValueError:
            raise ConfigError(f"--set {key}={text}: expected an integer") from None
        if not value.is_integer() or abs(value) > 2**53:
            raise ConfigError(f"--set {key}={text}: expected an integer")
        return int(value)
    if isinstance(default, float):
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"--set {key}={text}: expected a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"--set {key}={text}: expected a finite number")
        return value
    return raw


def require(cond: bool, message: str) -> None:
    """Raise :class:`~randadv.errors.ConfigError` with ``message`` unless ``cond`` holds: the
    checks of an experiment's ``validate``.

    Paper:
        none (utility: a configuration check that names the problem).

    Arguments:
        cond: the condition that must hold; message: what is wrong, naming the parameter.

    Returns:
        None.

    Example:
        >>> from randadv.framework import require
        >>> from randadv.errors import ConfigError
        >>> try:
        ...     require(3 <= 2, "need ratio_min <= ratio_max, got 3, 2")
        ... except ConfigError as e:
        ...     print(e)
        need ratio_min <= ratio_max, got 3, 2
    """
    if not cond:
        raise ConfigError(message)
