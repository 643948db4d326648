"""Executors: where units of work run. Results always come back to the driver, the store's only
writer.

- ``local``: units run in this process (``workers=1``) or in a process pool on this machine;
- ``ray``: units run as Ray tasks (a local Ray instance or a cluster), each asking for
  ``threads`` CPUs and ``gpus_per_task`` GPUs, retried ``max_retries`` times when a worker dies.

Every unit runs with exactly ``threads`` torch intra-op threads whatever the executor: BLAS
reductions split across threads sum in another order, so the thread count is part of what makes
results bit-identical (see docs: determinism). The experiment layer knows nothing of executors.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from randadv.errors import ConfigError, RandadvError
from randadv.experiments.registry import EXPERIMENTS, get_experiment
from randadv.framework import Experiment, UnitContext

UnitResult = tuple[int, dict[str, Any], list[dict[str, Any]], float]
ExpRef = str | Experiment   # a registered experiment travels by name, others by value

EXECUTORS = ("local", "ray")


class ExecutorError(RandadvError):
    """A unit could not be computed by the executor (worker lost after all retries, Ray missing,
    cluster unreachable)."""


@dataclass(frozen=True)
class ExecutorSpec:
    """How and where units run (not part of a run's identity: results do not depend on it)."""

    kind: str = "local"
    workers: int | None = None      # local: processes (default 1); ray: CPUs of a local instance
    threads: int = 1                # torch threads per unit, every executor
    address: str | None = None      # ray: "auto", "ray://host:10001", ...; None: local instance
    gpus_per_task: float = 0.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.kind!r}; known: {', '.join(EXECUTORS)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}")
        if self.gpus_per_task < 0:
            raise ConfigError(f"--gpus-per-task must be >= 0, got {self.gpus_per_task}")
        if self.max_retries < 0:
            raise ConfigError(f"--max-retries must be >= 0, got {self.max_retries}")
        if self.kind == "local" and (self.address or self.gpus_per_task):
            raise ConfigError("--address and --gpus-per-task need --executor ray")


def exp_ref(exp: Experiment) -> ExpRef:
    return exp.name if EXPERIMENTS.get(exp.name) is exp else exp


def _resolve(ref: ExpRef) -> Experiment:
    return get_experiment(ref) if isinstance(ref, str) else ref


def worker_device(device: str) -> torch.device:
    """``auto`` resolved where the unit runs (a Ray worker may have a GPU the driver lacks)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class _Threads:
    """Run a block with ``n`` torch threads, restoring the previous count afterwards."""

    def __init__(self, n: int) -> None:
        self.n, self.prev = n, None

    def __enter__(self) -> None:
        self.prev = torch.get_num_threads()
        if self.prev != self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        if self.prev is not None and self.prev != self.n:
            torch.set_num_threads(self.prev)


RUN_DIR_ENV = "RANDADV_RUN_DIR"   # set by the driver; local workers inherit it


def run_one(ref: ExpRef, idx: int, unit: dict, params: dict, seed: int, device: str,
            threads: int = 1) -> UnitResult:
    """Compute one unit of work; returns ``(idx, unit, records, seconds)``."""
    exp = _resolve(ref)
    with _Threads(threads):
        t0 = time.perf_counter()
        out = os.environ.get(RUN_DIR_ENV)
        ctx = UnitContext(seed=seed, device=worker_device(device), out=Path(out) if out else None)
        records = exp.run_unit(unit, params, ctx)
        secs = time.perf_counter() - t0
    return idx, unit, records, secs


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_local(ref: ExpRef, pending: Sequence[tuple[int, dict]], params: dict, seed: int,
              device: str, workers: int = 1, threads: int = 1) -> Iterator[UnitResult]:
    """Yield unit results as they finish (in order for one worker)."""
    if workers <= 1:
        with _Threads(threads):
            for idx, unit in pending:
                yield run_one(ref, idx, unit, params, seed, device, threads)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                             initargs=(threads,)) as pool:
        it = iter(pending)
        running = set()
        for idx, unit in it:
            running.add(pool.submit(run_one, ref, idx, unit, params, seed, device, threads))
            if len(running) >= 2 * workers:
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(it, None)
                if nxt is not None:
                    running.add(pool.submit(run_one, ref, nxt[0], nxt[1], params, seed, device,
                                            threads))


def import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError("--executor ray needs Ray: pip install 'randadv[ray]'") from None
    return ray


def connect_ray(spec: ExecutorSpec) -> bool:
    """Connect to (or start) Ray and check that the cluster can ever run a unit; True if this
    call started or connected (then :func:`disconnect_ray` ends it)."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        try:
            if spec.address:
                ray.init(address=spec.address)
            else:
                ray.init(num_cpus=spec.workers or os.cpu_count() or 1, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ExecutorError(f"cannot start or reach Ray at {spec.address or 'local'}: "
                                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
                                ) from None
        started = True
    res = ray.cluster_resources()
    try:
        if spec.gpus_per_task > res.get("GPU", 0):
            raise ExecutorError(f"--gpus-per-task {spec.gpus_per_task:g}: the Ray cluster has "
                                f"{res.get('GPU', 0):g} GPU(s); units would wait forever")
        if spec.threads > res.get("CPU", 0):
            raise ExecutorError(f"--threads {spec.threads}: a unit asks for {spec.threads} "
                                f"CPUs, the Ray cluster has {res.get('CPU', 0):g}")
    except ExecutorError:
        if started:
            ray.shutdown()
        raise
    return started


def disconnect_ray() -> None:
    import_ray().shutdown()


def run_ray(ref: ExpRef, pending: Sequence[tuple[int, dict]], params: dict, seed: int,
            device: str, spec: ExecutorSpec) -> Iterator[UnitResult]:
    """Units as Ray tasks (Ray already connected: :func:`connect_ray`); yields results as they
    finish. Tasks whose worker dies are retried ``spec.max_retries`` times; an exception
    raised by a unit is re-raised here with its own type."""
    ray = import_ray()
    from ray.exceptions import RayError, RayTaskError

    task = ray.remote(run_one).options(
        num_cpus=spec.threads, num_gpus=spec.gpus_per_task, max_retries=spec.max_retries,
        retry_exceptions=False, name="randadv-unit")
    refs: dict[Any, int] = {}
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1))
        max_in_flight = max(2, int(2 * cpus / spec.threads))
        params_ref, it = ray.put(params), iter(pending)

        def submit() -> bool:
            nxt = next(it, None)
            if nxt is None:
                return False
            refs[task.remote(ref, nxt[0], nxt[1], params_ref, seed, device, spec.threads)] = \
                nxt[0]
            return True

        while len(refs) < max_in_flight and submit():
            pass
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for r in done:
                idx = refs.pop(r)
                try:
                    result = ray.get(r)
                except RayTaskError as e:
                    if isinstance(e.cause, BaseException):
                        raise e.cause from None
                    raise ExecutorError(f"unit {idx} failed: {str(e).splitlines()[0]}"
                                        ) from None
                except RayError as e:
                    raise ExecutorError(f"unit {idx} lost after {spec.max_retries} retries: "
                                        f"{type(e).__name__}: {str(e).splitlines()[0]}"
                                        ) from None
                yield result
                submit()
    finally:
        for r in refs:
            ray.cancel(r, force=False)


class Executor:
    """Context manager: connects the executor's resources (Ray) up front, before anything is
    stored, and runs units; ``run`` yields ``(idx, unit, records, seconds)`` as units finish."""

    def __init__(self, spec: ExecutorSpec) -> None:
        self.spec, self.started = spec, False

    def __enter__(self) -> Executor:
        if self.spec.kind == "ray":
            self.started = connect_ray(self.spec)
        return self

    def __exit__(self, *exc) -> None:
        if self.started:
            disconnect_ray()
            self.started = False

    def run(self, ref: ExpRef, pending: Sequence[tuple[int, dict]], params: dict, seed: int,
            device: str) -> Iterator[UnitResult]:
        spec = self.spec
        if spec.kind == "ray":
            return run_ray(ref, pending, params, seed, device, spec)
        return run_local(ref, pending, params, seed, device, spec.workers or 1, spec.threads)
