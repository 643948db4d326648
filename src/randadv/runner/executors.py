"""Executors: where units of work run. Results always come back to the driver, the store's only
writer. ``local`` runs units in this process (``workers=1``) or in a process pool."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

import torch

from randadv.experiments.base import UnitContext
from randadv.experiments.registry import get_experiment

UnitResult = tuple[int, dict[str, Any], list[dict[str, Any]], float]


def run_one(exp_name: str, idx: int, unit: dict, params: dict, seed: int,
            device: str) -> UnitResult:
    """Compute one unit of work; returns ``(idx, unit, records, seconds)``."""
    exp = get_experiment(exp_name)
    t0 = time.perf_counter()
    records = exp.run_unit(unit, params, UnitContext(seed=seed, device=torch.device(device)))
    return idx, unit, records, time.perf_counter() - t0


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_local(exp_name: str, pending: Sequence[tuple[int, dict]], params: dict, seed: int,
              device: str, workers: int = 1) -> Iterator[UnitResult]:
    """Yield unit results as they finish (in order for one worker)."""
    if workers <= 1:
        for idx, unit in pending:
            yield run_one(exp_name, idx, unit, params, seed, device)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                             initargs=(1,)) as pool:
        it = iter(pending)
        running = set()
        for idx, unit in it:
            running.add(pool.submit(run_one, exp_name, idx, unit, params, seed, device))
            if len(running) >= 2 * workers:
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(it, None)
                if nxt is not None:
                    running.add(pool.submit(run_one, exp_name, nxt[0], nxt[1], params, seed,
                                            device))
