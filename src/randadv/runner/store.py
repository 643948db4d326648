"""The results store: one SQLite file per run folder (embedded, no server).

A unit of work (a grid cell x one network seed) is written in one transaction together with its
"done" mark, so after a crash a unit is either fully stored or absent: re-running resumes without
loss or duplicates. The file carries an application id and the run's configuration; a foreign or
corrupted file, or a folder holding another configuration, is refused and left untouched. Each
unit row holds a SHA-256 of its records as stored, checked whenever the records are read, so a
damaged value is reported, never exported.

Test hook: ``RANDADV_TEST_WRITE_HOOK=PATH:SECONDS`` appends the unit index to PATH and sleeps
inside the write transaction (tests kill the process there).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from randadv.errors import StoreError

APPLICATION_ID = 0x52414456  # "RADV"
SCHEMA_VERSION = 2   # 2: units carry a checksum of their records
STORE_NAME = "results.sqlite"
SQL_TYPES = {"int": "INTEGER", "float": "REAL", "str": "TEXT", "bool": "INTEGER"}


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    con.execute("PRAGMA busy_timeout=30000")
    # WAL + NORMAL: a committed unit survives a killed process; an OS crash may lose the last
    # units but never corrupts the file
    con.execute("PRAGMA synchronous=NORMAL")
    return con


class ResultStore:
    """Durable per-unit records of one experiment run; a context manager (``with`` closes it).

    Arguments:
        folder: the run's output folder (created if missing).
        experiment: experiment name.
        config: JSON-serialisable configuration (profile, parameters, seed); a folder that
            already holds another configuration is refused, except a larger network count.
        columns: ``(name, type)`` pairs of the per-record columns, type in int/float/str/bool.
        create: create the store if absent (False: it must exist, e.g. for report/export).
        verify: check every unit's records against its checksum on opening (O(records)).
        extendable: the parameters that count networks (``nets``, ``seeds``, ``runs``): a
            stored run whose configuration differs only by a smaller such count is extended
            (``extended`` says from which to which count; ``meta.extended`` keeps the history).
        unit_index: unit key -> its index in the extended run (needed to extend): the stored
            units move to these indices, so the store equals a fresh run with the larger count.

    Paper:
        none (utility: the results store of every experiment).

    Example:
        >>> import tempfile
        >>> from randadv.runner import ResultStore
        >>> columns = [("k", "int"), ("ratio", "float")]
        >>> store = ResultStore(tempfile.mkdtemp(), "demo", {"seed": 0}, columns)
        >>> records = [{"k": 2, "ratio": 0.1}, {"k": 2, "ratio": 0.2}]
        >>> store.write_unit("k=2", 0, {"k": 2}, records, 0.5)
        >>> store.done_keys(), store.records()["ratio"].tolist()
        ({'k=2'}, [0.1, 0.2])
        >>> store.close()
    """

    def __init__(self, folder: str | os.PathLike, experiment: str, config: dict | None,
                 columns: Sequence[tuple[str, str]], create: bool = True,
                 verify: bool = True, extendable: Collection[str] = (),
                 unit_index: Mapping[str, int] | None = None) -> None:
        self.folder = Path(folder)
        self.extended: tuple[str, int, int] | None = None
        self.path = self.folder / STORE_NAME
        self.columns = list(columns)
        exists = self.path.exists()
        if not exists and not create:
            raise StoreError(f"no results in {self.folder} (missing {STORE_NAME}); "
                             "run the experiment first")
        if not exists:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create output folder {self.folder}: {e}") from None
            if not os.access(self.folder, os.W_OK):
                raise StoreError(f"output folder {self.folder} is not writable")
        if exists:
            self._check_existing(verify, experiment)
        self.con = None
        try:
            self.con = _connect(self.path)
            if not exists:
                self._create(experiment, config)
            self.has_checksums = "checksum" in {
                r[1] for r in self.con.execute("PRAGMA table_info(units)")}
            self.experiment = self.meta("experiment")
            if self.experiment != experiment:
                raise StoreError(f"{self.path} holds results of experiment "
                                 f"{self.experiment!r}, not {experiment!r}")
            self.config = json.loads(self.meta("config"))
            if config is not None:
                grown = self.config_change(config, extendable if unit_index is not None else ())
                if grown:
                    self._extend(config, unit_index, grown)
                    self.config = json.loads(self.meta("config"))
        except sqlite3.Error as e:
            self.close()
            raise StoreError(f"cannot open results store {self.path}: {e}") from None
        except BaseException:
            self.close()   # no -wal/-shm left behind
            raise

    # ------------------------------------------------------------------ set-up
    def _check_existing(self, verify: bool, experiment: str) -> None:
        """Refuse a foreign, damaged or tampered file before opening it for writing."""
        try:
            with open(self.path, "rb") as fh:
                header = fh.read(100)
        except OSError as e:
            raise StoreError(f"cannot read {self.path}: {e.strerror}") from None
        if not header.startswith(b"SQLite format 3\x00"):
            raise StoreError(f"{self.path} is not a randadv results database (not SQLite); "
                             "left untouched")
        problem = None
        try:
            # the header's application id may still sit in the WAL: ask SQLite
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)
            try:
                app_id = con.execute("PRAGMA application_id").fetchone()[0]
                if app_id != APPLICATION_ID:
                    raise StoreError(f"{self.path} is a foreign SQLite database (application "
                                     f"id {app_id:#x}); left untouched")
                # another experiment's records do not fit this one's columns: say so before
                # the checksums would call them corrupted
                row = _meta_row(con, "experiment")
                if row is not None and row != experiment:
                    raise StoreError(f"{self.folder} holds results of experiment {row!r}, "
                                     f"not {experiment!r}")
                cols = _meta_row(con, "columns")
                stored_cols = [tuple(c) for c in json.loads(cols)] if cols is not None else None
                if verify and stored_cols is not None and stored_cols != [
                        tuple(c) for c in self.columns]:
                    stored = [c[0] for c in stored_cols]
                    names = [c[0] for c in self.columns]
                    raise StoreError(
                        f"{self.folder} holds records with other columns than this version "
                        f"of {experiment!r} writes (stored only: "
                        f"{sorted(set(stored) - set(names))}, new: "
                        f"{sorted(set(names) - set(stored))}): written by an earlier randadv; "
                        "read it with that version, or rerun into another --out folder; left "
                        "untouched")
                ok = [r[0] for r in con.execute("PRAGMA quick_check(20)")]
                if ok != ["ok"]:
                    lines = [ln.strip() for r in ok for ln in str(r).splitlines() if ln.strip()]
                    lines = [ln for ln in lines if ln != "*** in database main ***"] or lines
                    problem = lines[0] + (f"; {len(lines) - 1} more problems"
                                          if len(lines) > 1 else "")
                elif verify:
                    problem = _verify_checksums(con, self.columns)
            finally:
                con.close()
        except sqlite3.Error as e:
            problem = " ".join(str(e).split())
        if problem:
            raise StoreError(f"{self.path} is corrupted ({problem}); left untouched")

    def _create(self, experiment: str, config: dict | None) -> None:
        cols = ", ".join(f'"{n}" {SQL_TYPES[t]}' for n, t in self.columns)
        con = self.con
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("BEGIN IMMEDIATE")
        con.execute(f"PRAGMA application_id={APPLICATION_ID}")
        con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        con.execute("CREATE TABLE units (key TEXT PRIMARY KEY, idx INTEGER NOT NULL, "
                    "params TEXT NOT NULL, n_records INTEGER NOT NULL, elapsed REAL, "
                    "finished REAL, checksum TEXT)")
        con.execute(f"CREATE TABLE records (unit_idx INTEGER NOT NULL, row INTEGER NOT NULL, "
                    f"{cols}, PRIMARY KEY (unit_idx, row))")
        con.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("schema_version", str(SCHEMA_VERSION)), ("experiment", experiment),
            ("config", json.dumps(config, sort_keys=True)),
            ("columns", json.dumps(self.columns)), ("created", str(time.time()))])
        con.execute("COMMIT")

    def config_change(self, config: dict, extendable: Collection[str] = ()
                      ) -> tuple[str, int, int] | None:
        """None where ``config`` is the stored configuration; ``(name, stored, now)`` where it
        differs only by a larger network count ``name`` of ``extendable``; otherwise
        :class:`~randadv.errors.StoreError` naming the difference."""
        if self.config == json.loads(json.dumps(config)):
            return None
        grown = _grown_count(self.config, config, extendable)
        if grown is None:
            hint = (f" (a run extends only by a larger {' / '.join(extendable)}, all else "
                    "equal)" if extendable else "")
            raise StoreError(f"{self.folder} holds a run with another configuration "
                             f"({_config_diff(self.config, config)}); use another --out "
                             f"folder{hint}")
        return grown

    def _extend(self, config: dict, unit_index: Mapping[str, int],
                grown: tuple[str, int, int]) -> None:
        """Take the larger network count of ``config``: every stored unit moves to its index in
        the extended run (``unit_index``: unit key -> index), the configuration is replaced,
        and ``meta.extended`` lists the extension; one transaction."""
        con = self.con
        stored = dict(con.execute("SELECT key, idx FROM units").fetchall())
        foreign = sorted(set(stored) - set(unit_index))
        if foreign:
            raise StoreError(f"{self.folder}: stored unit {foreign[0]} is not a unit of the run "
                             f"with {grown[0]} = {grown[2]}; use another --out folder")
        try:
            history = json.loads(self.meta("extended"))
        except StoreError:
            history = []
        history.append(dict(param=grown[0], stored=grown[1], now=grown[2], at=time.time()))
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("UPDATE units SET idx = -1 - idx")
            con.execute("UPDATE records SET unit_idx = -1 - unit_idx")
            for key, old in stored.items():
                new = unit_index[key]
                con.execute("UPDATE units SET idx = ? WHERE key = ?", (new, key))
                con.execute("UPDATE records SET unit_idx = ? WHERE unit_idx = ?",
                            (new, -1 - old))
            con.execute("UPDATE meta SET value = ? WHERE key = 'config'",
                        (json.dumps(config, sort_keys=True),))
            con.execute("INSERT OR REPLACE INTO meta VALUES ('extended', ?)",
                        (json.dumps(history),))
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        self.extended = grown

    def meta(self, key: str) -> str:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path} lacks metadata {key!r}: not a complete randadv store")
        return row[0]

    # ------------------------------------------------------------------ units
    def done_keys(self) -> set[str]:
        return {k for (k,) in self.con.execute("SELECT key FROM units")}

    def write_unit(self, key: str, idx: int, params: dict, records: Iterable[dict],
                   elapsed: float) -> None:
        """Store a unit's records and mark it done, atomically."""
        names = [n for n, _ in self.columns]
        records = list(records)
        for r in records:
            if set(r) != set(names):   # the records are not of the experiment's record type
                raise StoreError(f"unit {idx}: a record's fields differ from the experiment's "
                                 f"columns (missing {sorted(set(names) - set(r))}, extra "
                                 f"{sorted(set(r) - set(names))})")
        rows = [(idx, i, *[_plain(r[n]) for n in names]) for i, r in enumerate(records)]
        ph = ", ".join("?" * (len(names) + 2))
        con = self.con
        unit_row = (key, idx, json.dumps(params, sort_keys=True), len(rows), elapsed,
                    time.time())
        try:
            con.execute("BEGIN IMMEDIATE")
            con.executemany(f"INSERT INTO records VALUES ({ph})", rows)
            if self.has_checksums:
                # the checksum of the values as SQLite stored them (after type affinity)
                stored = con.execute(f"SELECT {_select(self.columns)} FROM records "
                                     "WHERE unit_idx = ? ORDER BY row", (idx,)).fetchall()
                con.execute("INSERT INTO units VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (*unit_row, _checksum(stored)))
            else:
                con.execute("INSERT INTO units VALUES (?, ?, ?, ?, ?, ?)", unit_row)
            _test_write_hook(idx)
            con.execute("COMMIT")
        except sqlite3.IntegrityError as e:
            con.execute("ROLLBACK")
            raise StoreError(f"unit {idx} is already stored in {self.path} ({e})") from None
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

    def records(self, unit_index: bool = False) -> pd.DataFrame:
        """All records, ordered by unit index then row; ``unit_index``: a first column
        ``unit_idx`` (the unit each record belongs to, as in :meth:`units_table`)."""
        names = [n for n, _ in self.columns]
        cols = ", ".join(f'"{n}"' for n in names)
        if unit_index:
            cols, names = "unit_idx, " + cols, ["unit_idx", *names]
        try:
            rows = self.con.execute(f"SELECT {cols} FROM records ORDER BY unit_idx, row"
                                    ).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path} is corrupted ({e})") from None
        df = pd.DataFrame.from_records(rows, columns=names, coerce_float=True)
        for n, t in self.columns:
            if t == "bool":
                df[n] = df[n].astype(bool)
        return df

    def units_table(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM units ORDER BY idx", self.con)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _meta_row(con: sqlite3.Connection, key: str) -> str | None:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else row[0]


def stored_experiment(folder: str | os.PathLike) -> str:
    """The name of the experiment whose results ``folder`` holds (read only, nothing checked
    but the file's identity); :class:`StoreError` if there are none."""
    path = Path(folder) / STORE_NAME
    if not path.is_file():
        raise StoreError(f"no results in {folder} (missing {STORE_NAME}); "
                         "run the experiment first")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        try:
            if con.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                raise StoreError(f"{path} is not a randadv results database; left untouched")
            name = _meta_row(con, "experiment")
        finally:
            con.close()
    except sqlite3.Error as e:
        raise StoreError(f"{path} is corrupted ({' '.join(str(e).split())}); "
                         "left untouched") from None
    if name is None:
        raise StoreError(f"{path} lacks metadata 'experiment': not a complete randadv store")
    return name


def _select(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(["row", *(f'"{n}"' for n, _ in columns)])


def _checksum(rows: Sequence[tuple]) -> str:
    return hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()


def _verify_checksums(con: sqlite3.Connection, columns: Sequence[tuple[str, str]]) -> str | None:
    """The first unit whose records do not match its checksum, or None (stores of schema 1
    carry no checksums: nothing to check)."""
    if "checksum" not in {r[1] for r in con.execute("PRAGMA table_info(units)")}:
        return None
    expected = {idx: (n, cs) for idx, n, cs in
                con.execute("SELECT idx, n_records, checksum FROM units")}
    seen: set[int] = set()
    cur = con.execute(f"SELECT unit_idx, {_select(columns)} FROM records "
                      "ORDER BY unit_idx, row")
    group: list[tuple] = []
    current = None

    def check(idx: int | None, rows: list[tuple]) -> str | None:
        if idx is None:
            return None
        seen.add(idx)
        if idx not in expected:
            return f"records of unit {idx} without a done mark"
        n, cs = expected[idx]
        if len(rows) != n or _checksum(rows) != cs:
            return f"records of unit {idx} do not match their checksum"
        return None

    for r in cur:
        if r[0] != current:
            bad = check(current, group)
            if bad:
                return bad
            current, group = r[0], []
        group.append(r[1:])
    bad = check(current, group)
    if bad:
        return bad
    missing = [i for i, (n, _) in expected.items() if n and i not in seen]
    if missing:
        return f"records of unit {missing[0]} missing"
    return None


def _test_write_hook(idx: int) -> None:
    hook = os.environ.get("RANDADV_TEST_WRITE_HOOK")
    if hook:
        path, _, secs = hook.rpartition(":")
        with open(path, "a") as fh:
            fh.write(f"{idx}\n")
        time.sleep(float(secs))


def _plain(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v != v:
        return None
    return v


def _grown_count(stored: dict, config: dict, names: Collection[str]
                 ) -> tuple[str, int, int] | None:
    """``(name, stored, now)`` where the two configurations differ only in the integer
    parameter ``name`` (one of ``names``: a network count) and ``now`` is larger; else None."""
    now = json.loads(json.dumps(config))
    a, b = stored.get("params", {}), now.get("params", {})
    diff = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    if ({k: v for k, v in stored.items() if k != "params"}
            != {k: v for k, v in now.items() if k != "params"} or len(diff) != 1):
        return None
    (name,) = diff
    old, new = a.get(name), b.get(name)
    if name not in names or not isinstance(old, int) or not isinstance(new, int) or new <= old:
        return None
    return name, old, new


def _config_diff(a: dict, b: dict) -> str:
    b = json.loads(json.dumps(b))
    keys = sorted(set(a) | set(b))
    diffs = [f"{k}: stored {a.get(k)!r} vs now {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]
    if not diffs:
        return "no difference"
    text = "; ".join(diffs)
    return text if len(text) < 300 else text[:300] + " ..."
