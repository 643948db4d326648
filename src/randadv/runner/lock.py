"""One ``randadv run`` per output folder at a time (an advisory file lock)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from randadv.errors import StoreError

LOCK_NAME = ".randadv.lock"


class RunLock:
    """Exclusive lock on a run folder; a second holder is refused with a clear message."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.fh = None

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+")
        except OSError as e:
            raise StoreError(f"output folder {self.path.parent} is not usable: "
                             f"{e.strerror or e}") from None
        try:
            # a few short retries: `randadv status` probes the lock for an instant
            for attempt in range(5):
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == 4:
                        raise
                    time.sleep(0.05)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StoreError(f"{self.path.parent} is in use by another randadv run "
                             f"(pid {holder}); wait for it or use another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self.fh = fh
        return self

    def __exit__(self, *exc) -> None:
        if self.fh is not None:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def lock_holder(folder: Path) -> str | None:
    """The pid of the run holding ``folder``'s lock, or None; never creates anything (a shared
    lock taken and released at once; a run starting meanwhile retries)."""
    path = Path(folder) / LOCK_NAME
    try:
        fh = open(path)
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return fh.read().strip() or "?"
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return None
