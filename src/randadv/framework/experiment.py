"""What an experiment is: a grid per profile, a unit of work, the records it returns, the figures
it draws and the paper's claims it checks. Seeding, storing, resuming, parallelism, progress and
export are shared (``randadv.runner``) and know nothing of a particular experiment."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from randadv.errors import ConfigError
from randadv.framework.claims import Claim
from randadv.framework.params import COMMON_HELP, Param, parse_value, record_columns


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
        :class:`randadv.framework.unit_cost.UnitCost` declares a part that units share
        through a cache (charged once per key). Default: all units equal."""
        return 1.0

    def shared_work_cached(self, unit: Mapping[str, Any], params: Mapping[str, Any],
                           ctx: UnitContext) -> bool:
        """Whether the part of the unit's cost that it shares through a cache (the ``shared``
        part of its :class:`randadv.framework.unit_cost.UnitCost`: a trained model) is
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


def report_notes(name: str) -> str:
    """The Notes of experiment ``name``'s report: the Markdown file ``notes/<name>.md`` of the
    ``randadv.experiments`` package (package data, read as a resource: no import; empty if there
    is none), each paragraph's wrapped lines joined into one line."""
    path = resources.files("randadv.experiments").joinpath("notes", f"{name}.md")
    if not path.is_file():
        return ""
    paragraphs = path.read_text(encoding="utf-8").strip().split("\n\n")
    return "\n\n".join(" ".join(p.split("\n")) for p in paragraphs)


def _as_list(v: Any) -> list[float]:
    vals = v if isinstance(v, (list, tuple)) else [v]
    return [float(x) for x in vals if isinstance(x, (int, float)) and not isinstance(x, bool)]


def unit_key(unit: Mapping[str, Any]) -> str:
    """Canonical identity of a unit of work: its dict as JSON with sorted keys, the key under
    which the store keeps its records.

    Paper:
        none (utility: the store's and the resume's name of a unit).

    Arguments:
        unit: one unit of an experiment's ``units(params)``.

    Returns:
        The JSON text.

    Example:
        >>> from randadv.framework import unit_key
        >>> unit_key({"net": 3, "d": 100})
        '{"d":100,"net":3}'
    """
    return json.dumps(unit, sort_keys=True, separators=(",", ":"))


