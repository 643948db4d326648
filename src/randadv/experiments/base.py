"""What an experiment is: a grid per profile, a unit of work, the records it returns, the figures
it draws and the paper's claims it checks. Seeding, storing, resuming, parallelism, progress and
export are shared (``randadv.runner``) and know nothing of a particular experiment."""

from __future__ import annotations

import copy
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from randadv.errors import ConfigError


@dataclass(frozen=True)
class UnitContext:
    """What a unit of work needs besides its own parameters.

    Paper:
        none (utility: what the runner hands each unit of work).

    Attributes:
        seed: the run's seed (every random tensor derives from it); device: where the unit
        computes; out: the run folder, or None.

    Example:
        >>> from randadv.experiments import UnitContext
        >>> ctx = UnitContext(seed=0)
        >>> ctx.device.type, ctx.out
        ('cpu', None)
    """

    seed: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    out: Path | None = None   # the run folder, where a unit may cache artefacts (trained models)


@dataclass(frozen=True)
class Claim:
    """One statement of a paper checked against the measurements.

    Paper:
        none (utility: a claim's ``statement`` cites the theorem or figure of its paper that
        it checks).

    Attributes:
        statement: the paper's words or a paraphrase, with its source; measured: the numbers;
        holds: True / False, None when undecided; criterion: how ``holds`` was decided;
        scale: the scale of the paper's claim; reached: whether the run reaches it;
        decidable: False for a claim reported only.

    Example:
        >>> from randadv.experiments import Claim
        >>> c = Claim("Appendix D: the ratio is sqrt(k/d)", "0.50 vs 0.50", True,
        ...           criterion="|z| < 3", scale="d = 10^4")
        >>> c.holds, c.reached
        (True, True)
    """

    statement: str          # the paper's words or our paraphrase, with its source
    measured: str           # the numbers
    holds: bool | None      # None: not enough data to decide
    criterion: str = ""     # how "holds" was decided
    scale: str = ""         # the scale at which the paper makes the claim (required)
    reached: bool = True    # False: the run's grid does not reach that scale
    decidable: bool = True  # False: reported only (no criterion); never "undecided"

    def __post_init__(self) -> None:
        if not self.scale:
            raise ValueError(f"claim {self.statement[:60]!r} does not state the paper's scale")

    @property
    def verdict(self) -> str:
        """"holds" / "does not hold" / "undecided", or "not reached at this scale" where the
        profile's grid stops short of the paper's scale (the measured trend is still shown)."""
        if not self.decidable:
            return "reported (no criterion)"
        if not self.reached:
            return "not reached at this scale"
        return {True: "holds", False: "does not hold", None: "undecided"}[self.holds]


@dataclass(frozen=True)
class Param:
    """One ``--set`` parameter: its default (whose type is the parameter's: int, float, bool,
    str or a list of one of them), its meaning, and the checks the type implies, applied to the
    value or to every element of a list: bounds (``min``/``max`` inclusive, ``gt``/``lt``
    strict), ``choices``, ``unique`` elements. ``why`` is appended to a bound's message."""

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


class _Notes:
    """``Experiment.report_notes``: the experiment's ``notes/<name>.md`` (:func:`report_notes`),
    read on each use, not when the class is defined (a report reads it once)."""

    def __get__(self, obj: Any, owner: type) -> str:
        return report_notes(owner.name) if owner.name else ""


class Experiment:
    """Base class; subclasses set the class attributes and implement the methods.

    Paper:
        none (utility: the base of every experiment; each subclass names its paper and figures
        in ``paper`` and ``figures_reproduced``).

    Attributes:
        name, paper, figures_reproduced, summary, profiles, default_profile, columns,
        param_help: the class attributes of docs/architecture.md, "Adding an experiment".

    Example:
        >>> from randadv.experiments import Experiment, get_experiment
        >>> exp = get_experiment("min-pert")
        >>> isinstance(exp, Experiment), sorted(exp.profiles)
        (True, ['paper', 'quick', 'smoke'])
    """

    name: str = ""
    paper: str = ""
    figures_reproduced: str = ""
    summary: str = ""
    parameters: Mapping[str, Param] = {}  # declared once; the defaults are default_profile's
    profiles: Mapping[str, Mapping[str, Any]] = {}   # overrides of the defaults, per profile
    default_profile: str = "quick"
    record: type | None = None   # a TypedDict of one record: its fields give ``columns``
    columns: tuple[tuple[str, str], ...] = ()   # (name, type) of the stored record fields
    param_help: Mapping[str, str] = {}   # --set key -> its meaning (`randadv params NAME`)
    # the report's Notes (a str): notes/<name>.md, read when asked for (see report_notes); a
    # class may set its own string
    report_notes = _Notes()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """From ``parameters``: ``param_help``, and ``profiles`` as whole parameter sets (each
        profile's overrides applied to the defaults)."""
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("record") is not None:
            cls.columns = record_columns(cls.record)
        if "parameters" not in cls.__dict__:
            return
        cls.param_help = {k: p.help or COMMON_HELP[k] for k, p in cls.parameters.items()}
        defaults = {k: p.default for k, p in cls.parameters.items()}
        for name, over in cls.profiles.items():
            unknown = sorted(set(over) - set(defaults))
            if unknown:
                raise TypeError(f"{cls.__name__}: profile {name!r} sets undeclared {unknown}")
        cls.profiles = {name: {**copy.deepcopy(defaults), **copy.deepcopy(dict(over))}
                        for name, over in cls.profiles.items()}

    # -- configuration ---------------------------------------------------------------------
    def params(self, profile: str, overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The profile's parameters with ``--set`` overrides applied and validated."""
        if profile not in self.profiles:
            raise ConfigError(f"unknown profile {profile!r} for {self.name}; "
                              f"known: {', '.join(self.profiles)}")
        params = copy.deepcopy(dict(self.profiles[profile]))
        for key, text in (overrides or {}).items():
            if key not in params:
                raise ConfigError(f"unknown parameter {key!r} for {self.name}; "
                                  f"known: {', '.join(sorted(params))}")
            params[key] = parse_value(key, text, params[key])
        for key, spec in self.parameters.items():
            spec.check(key, params[key])
        self.validate(params)
        return params

    def validate(self, params: dict[str, Any]) -> None:
        """Raise :class:`ConfigError` on impossible combinations of values (override in
        subclasses; each parameter's own checks come from its :class:`Param`)."""

    def reaches_paper(self, params: Mapping[str, Any], *keys: str) -> bool:
        """Whether the run's grid reaches the ``paper`` profile's on every numeric ``key``: its
        largest value (of a list, or the scalar) is at least the paper profile's largest. The
        ``reached=`` of a :class:`Claim` about an asymptotic regime."""
        paper = self.profiles.get("paper", {})
        for key in keys:
            if key not in paper or key not in params:
                continue
            run, ref = _as_list(params[key]), _as_list(paper[key])
            if run and ref and max(run) < max(ref):
                return False
        return True

    # -- work ------------------------------------------------------------------------------
    def units(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def run_unit(self, unit: Mapping[str, Any], params: Mapping[str, Any],
                 ctx: UnitContext) -> list[dict[str, Any]]:
        raise NotImplementedError

    # -- cost hints (optional; used by `randadv run --dry-run`, `status` and the runner) ----
    def unit_cost(self, unit: Mapping[str, Any], params: Mapping[str, Any]) -> float:
        """Relative compute cost of a unit, any positive scale (e.g. multiply-adds); the dry
        run calibrates it on a stratified sample of units (runner/cost.py). A
        :class:`randadv.experiments.unit_cost.UnitCost` declares a part that units share
        through a cache (charged once per key). Default: all units equal."""
        return 1.0

    def shared_work_cached(self, unit: Mapping[str, Any], params: Mapping[str, Any],
                           ctx: UnitContext) -> bool:
        """Whether the part of the unit's cost that it shares through a cache (the ``shared``
        part of its :class:`randadv.experiments.unit_cost.UnitCost`: a trained model) is
        already in the cache the unit would read under ``ctx`` (the dry run then does not
        charge it). Default: nothing is cached."""
        return False

    def unit_memory(self, unit: Mapping[str, Any], params: Mapping[str, Any]) -> int | None:
        """Peak memory of a unit in bytes if it can be told up front: a run is refused before
        it starts when a unit exceeds the machine's available memory. Default: unknown."""
        return None

    # -- results ---------------------------------------------------------------------------
    def draw_figures(self, records: pd.DataFrame, params: Mapping[str, Any],
                     folder: Path) -> list[tuple[str, Path]]:
        """Write figures into ``folder``; return ``(caption, path)`` pairs."""
        return []

    def summary_table(self, records: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
        return pd.DataFrame()

    def fit_standard_errors(self, records: pd.DataFrame, params: Mapping[str, Any]
                            ) -> dict[str, float]:
        """Standard errors of the fitted exponents the claims rest on, by a label (e.g.
        ``"l2 resnet distance"``); sequential stopping waits until each is at most its target.
        Default: none."""
        return {}

    def check_claims(self, records: pd.DataFrame, params: Mapping[str, Any]) -> list[Claim]:
        return []


COLUMN_TYPES = {int: "int", float: "float", str: "str", bool: "bool"}


def record_columns(record: type) -> tuple[tuple[str, str], ...]:
    """``(name, type)`` of each field of a record type (a ``TypedDict`` with int, float, str or
    bool fields), in the order of its declaration: the columns of the results store."""
    hints = typing.get_type_hints(record)
    bad = {k: t for k, t in hints.items() if t not in COLUMN_TYPES}
    if bad:
        raise TypeError(f"{record.__name__}: fields {bad} are not int, float, str or bool")
    return tuple((k, COLUMN_TYPES[t]) for k, t in hints.items())


def report_notes(name: str) -> str:
    """The Notes of experiment ``name``'s report: the Markdown file ``notes/<name>.md`` of this
    package (empty if there is none), each paragraph's wrapped lines joined into one line."""
    path = resources.files("randadv.experiments").joinpath("notes", f"{name}.md")
    if not path.is_file():
        return ""
    paragraphs = path.read_text(encoding="utf-8").strip().split("\n\n")
    return "\n\n".join(" ".join(p.split("\n")) for p in paragraphs)


ANY_SIZE = "any size (an exact statement, or a check of the measurement itself)"


def _as_list(v: Any) -> list[float]:
    vals = v if isinstance(v, (list, tuple)) else [v]
    return [float(x) for x in vals if isinstance(x, (int, float)) and not isinstance(x, bool)]


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


def unit_key(unit: Mapping[str, Any]) -> str:
    """Canonical identity of a unit of work."""
    return json.dumps(unit, sort_keys=True, separators=(",", ":"))


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
    if not cond:
        raise ConfigError(message)
