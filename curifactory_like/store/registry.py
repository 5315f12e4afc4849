"""The SQLite run registry: runs, parameter sets, aggregate combo hashes, artifact use, pins.

It replaces curifactory's ``store.json`` and ``params_registry.json``, which are rewritten whole for
every parameter set. Everything lives in one database, ``<manager_cache_path>/store.db``, in WAL
mode so readers never block the writer. Every write is one ``BEGIN IMMEDIATE`` transaction, so two
processes starting runs at the same moment serialise on the database lock and never receive the
same run number; bulk writes are a single ``executemany``.

The schema version is kept in ``PRAGMA user_version``; ``schema.MIGRATIONS[n]`` holds the
statements that bring a database from version ``n - 1`` to ``n``. Every failure is raised as
:class:`~curifactory_like.errors.RunStoreError`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import RunAlreadyRegisteredError, RunStoreError
from .locks import SharedConnection, immediate
from .schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "TIMESTAMP_FORMAT",
    "ArtifactAction",
    "RunStatus",
    "RunStore",
]

TIMESTAMP_FORMAT = "%Y-%m-%d-T%H%M%S"
"""The datetime format used in run reference names."""


class RunStatus(str, Enum):
    """The state of a run as recorded in the registry."""

    INCOMPLETE = "incomplete"  # started and not (yet) finished; also a run that crashed hard
    COMPLETE = "complete"  # the experiment finished without raising
    ERROR = "error"  # the experiment raised; the ``error`` field says what


class ArtifactAction(str, Enum):
    """What a run did with an artifact path."""

    COMPUTED = "computed"  # the stage ran and wrote the artifact
    OVERWRITTEN = "overwritten"  # the stage re-ran on request and replaced the artifact
    LOADED = "loaded"  # the artifact was read from the cache
    SKIPPED = "skipped"  # the artifact existed and was not needed, so was never read


_PRODUCING_ACTIONS = (ArtifactAction.COMPUTED.value, ArtifactAction.OVERWRITTEN.value)
_IDENTITY_FIELDS = frozenset({"reference", "experiment_name", "run_number", "timestamp"})
_IN_CHUNK = 500  # bound parameters per IN (...) query, well below SQLite's limit
_PARAM_COLUMNS = "hash, name, representation, explanation, hash_mode"


class RunStore:
    """The run registry of one project, stored in ``<manager_cache_path>/store.db``.

    One instance holds one connection (see :class:`~.locks.SharedConnection`): it may be shared
    between threads (calls are serialised) and survives ``fork`` (a child opens its own connection
    on first use); pickling sends only the path. Use it as a context manager or call :meth:`close`.
    """

    def __init__(self, manager_cache_path: str | os.PathLike[str]) -> None:
        self._cache_path = Path(manager_cache_path)
        self.path: Path = self._cache_path / "store.db"
        try:
            self._cache_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunStoreError(
                f"cannot create the registry folder {self._cache_path}: {exc}; "
                "check manager_cache_path and its permissions"
            ) from exc
        self._db = SharedConnection(self.path, setup=self._migrate)
        self._db.open()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create or upgrade the schema to :data:`SCHEMA_VERSION` in one transaction."""
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        with immediate(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RunStoreError(
                    f"the run registry {self.path} has schema version {version}, newer than the "
                    f"{SCHEMA_VERSION} this curifactory_like understands; upgrade "
                    "curifactory_like or use another manager_cache_path"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in filter(str.strip, MIGRATIONS[target].split(";")):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection; later calls raise RunStoreError. Closing twice is harmless."""
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[type[RunStore], tuple[str]]:
        """Pickle as the path only; the unpickled store opens its own connection."""
        return (RunStore, (str(self._cache_path),))

    def __repr__(self) -> str:
        return f"RunStore({str(self._cache_path)!r})"

    # -- runs ----------------------------------------------------------------------------------

    def start_run(
        self,
        experiment_name: str,
        timestamp: datetime,
        info: dict[str, Any],
        run_number: int | None = None,
    ) -> dict[str, Any]:
        """Register a new ``incomplete`` run and return its run-info dict.

        The run number is one more than the experiment's highest, allocated inside the write
        transaction, unless ``run_number`` is given (it must be free). Keys of ``info`` never
        override the identity fields (reference, experiment_name, run_number, timestamp).
        """
        stamp = timestamp.strftime(TIMESTAMP_FORMAT)
        with self._db.write(f"start a run of experiment {experiment_name!r}") as conn:
            if run_number is None:
                (run_number,) = conn.execute(
                    "SELECT COALESCE(MAX(run_number), 0) + 1 FROM runs WHERE experiment_name = ?",
                    (experiment_name,),
                ).fetchone()
            elif conn.execute(
                "SELECT 1 FROM runs WHERE experiment_name = ? AND run_number = ?",
                (experiment_name, run_number),
            ).fetchone():
                raise RunStoreError(
                    f"run {run_number} of experiment {experiment_name!r} already exists in "
                    f"{self.path}; omit run_number to allocate the next free one"
                )
            identity = {
                "reference": f"{experiment_name}_{run_number}_{stamp}",
                "experiment_name": experiment_name,
                "run_number": run_number,
                "timestamp": stamp,
            }
            run = _roundtrip({**identity, "status": RunStatus.INCOMPLETE, **info, **identity})
            conn.execute(
                "INSERT INTO runs (reference, experiment_name, run_number, timestamp, status,"
                " error, info) VALUES (:reference, :experiment_name, :run_number, :timestamp,"
                " :status, :error, :info)",
                {**identity, **_run_columns(run)},
            )
        return run

    def update_run(self, reference: str, **fields: Any) -> dict[str, Any] | None:
        """Merge ``fields`` into a run's info and return it; None if the reference is unknown."""
        if _IDENTITY_FIELDS & fields.keys():
            raise RunStoreError(
                f"update_run cannot change {sorted(_IDENTITY_FIELDS & fields.keys())} of run "
                f"{reference!r}; those fields name the run"
            )
        with self._db.write(f"update run {reference!r}") as conn:
            row = conn.execute("SELECT info FROM runs WHERE reference = ?", (reference,)).fetchone()
            if row is None:
                return None
            run = {**json.loads(row[0]), **_roundtrip(fields)}
            conn.execute(
                "UPDATE runs SET status = :status, error = :error, info = :info"
                " WHERE reference = :reference",
                {"reference": reference, **_run_columns(run)},
            )
        return run

    def import_run(self, run: dict[str, Any]) -> dict[str, Any]:
        """Register a run made elsewhere (``experiment import``) under its own reference.

        The run keeps its number unless this registry already has that number for the
        experiment; it then gets the next free one (the original is kept as
        ``original_run_number``). RunAlreadyRegisteredError if the reference is already
        registered.
        """
        reference = str(run["reference"])
        experiment_name = str(run["experiment_name"])
        with self._db.write(f"import run {reference!r}") as conn:
            if conn.execute("SELECT 1 FROM runs WHERE reference = ?", (reference,)).fetchone():
                raise RunAlreadyRegisteredError(
                    f"run {reference!r} is already registered in {self.path}"
                )
            run_number = int(run["run_number"])
            if conn.execute(
                "SELECT 1 FROM runs WHERE experiment_name = ? AND run_number = ?",
                (experiment_name, run_number),
            ).fetchone():
                (free,) = conn.execute(
                    "SELECT COALESCE(MAX(run_number), 0) + 1 FROM runs WHERE experiment_name = ?",
                    (experiment_name,),
                ).fetchone()
                run = {**run, "original_run_number": run_number, "run_number": free}
            run = _roundtrip(run)
            conn.execute(
                "INSERT INTO runs (reference, experiment_name, run_number, timestamp, status,"
                " error, info) VALUES (:reference, :experiment_name, :run_number, :timestamp,"
                " :status, :error, :info)",
                {
                    "reference": reference,
                    "experiment_name": experiment_name,
                    "run_number": run["run_number"],
                    "timestamp": str(run["timestamp"]),
                    **_run_columns(run),
                },
            )
        return run

    def get_run(self, reference: str) -> dict[str, Any] | None:
        """Return the run-info dict of ``reference``, or None if no such run is registered."""
        with self._db.read(f"read run {reference!r}") as conn:
            row = conn.execute("SELECT info FROM runs WHERE reference = ?", (reference,)).fetchone()
        return None if row is None else json.loads(row[0])

    def list_runs(self, experiment_name: str | None = None) -> list[dict[str, Any]]:
        """Return the runs (of one experiment, or all), oldest registered first."""
        where, args = (
            ("", ())
            if experiment_name is None
            else ("WHERE experiment_name = ?", (experiment_name,))
        )
        with self._db.read("list runs") as conn:
            rows = conn.execute(f"SELECT info FROM runs {where} ORDER BY id", args).fetchall()
        return [json.loads(info) for (info,) in rows]

    def latest_run(self, experiment_name: str) -> dict[str, Any] | None:
        """Return the experiment's run with the highest run number, or None if it has none."""
        with self._db.read(f"find the latest run of {experiment_name!r}") as conn:
            row = conn.execute(
                "SELECT info FROM runs WHERE experiment_name = ? ORDER BY run_number DESC LIMIT 1",
                (experiment_name,),
            ).fetchone()
        return None if row is None else json.loads(row[0])

    # -- parameter sets ------------------------------------------------------------------------

    def register_param_sets(self, entries: Iterable[dict[str, Any]]) -> None:
        """Insert or update parameter sets by hash, all in one transaction.

        Each entry needs ``hash`` and ``name``; ``representation`` and ``explanation``
        (JSON-encodable dicts) and ``hash_mode`` default to empty.
        """
        rows = [
            {
                **entry,
                "representation": _dumps(entry.get("representation", {})),
                "explanation": _dumps(entry.get("explanation", {})),
                "hash_mode": str(_plain(entry.get("hash_mode", ""))),
            }
            for entry in entries
        ]
        with self._db.write(f"register {len(rows)} parameter set(s)") as conn:
            conn.executemany(
                f"INSERT INTO param_sets ({_PARAM_COLUMNS}) VALUES (:hash, :name,"
                " :representation, :explanation, :hash_mode) ON CONFLICT (hash) DO UPDATE SET"
                " name = excluded.name, representation = excluded.representation,"
                " explanation = excluded.explanation, hash_mode = excluded.hash_mode",
                rows,
            )

    def register_combo_hash(self, combo_hash: str, active: str, member_hashes: list[str]) -> None:
        """Record which parameter-set hashes an aggregate's combo hash stands for."""
        with self._db.write(f"register combo hash {combo_hash!r}") as conn:
            conn.execute(
                "INSERT INTO combo_hashes (combo_hash, active, members) VALUES (?, ?, ?)"
                " ON CONFLICT (combo_hash) DO UPDATE SET active = excluded.active,"
                " members = excluded.members",
                (combo_hash, active, _dumps(list(member_hashes))),
            )

    def get_combo_hash(self, combo_hash: str) -> dict[str, Any] | None:
        """Return ``{"hash", "active", "members"}`` for a combo hash, or None if unknown."""
        with self._db.read(f"read combo hash {combo_hash!r}") as conn:
            row = conn.execute(
                "SELECT active, members FROM combo_hashes WHERE combo_hash = ?", (combo_hash,)
            ).fetchone()
        return (
            None
            if row is None
            else {"hash": combo_hash, "active": row[0], "members": json.loads(row[1])}
        )

    def get_param_set(self, hash_or_prefix: str) -> dict[str, Any] | None:
        """Return a parameter set by exact hash, else by unique prefix; None if absent/ambiguous."""
        with self._db.read(f"look up parameter set {hash_or_prefix!r}") as conn:
            row = conn.execute(
                f"SELECT {_PARAM_COLUMNS} FROM param_sets WHERE hash = ?", (hash_or_prefix,)
            ).fetchone()
            if row is None and hash_or_prefix:
                rows = conn.execute(
                    f"SELECT {_PARAM_COLUMNS} FROM param_sets WHERE hash >= ? AND hash < ? LIMIT 2",
                    (hash_or_prefix, hash_or_prefix + "\U0010ffff"),
                ).fetchall()
                row = rows[0] if len(rows) == 1 else None
        return None if row is None else _param_set(row)

    def find_param_sets(self, name: str) -> list[dict[str, Any]]:
        """Return every registered parameter set called ``name``, first registered first."""
        with self._db.read(f"find parameter sets named {name!r}") as conn:
            rows = conn.execute(
                f"SELECT {_PARAM_COLUMNS} FROM param_sets WHERE name = ? ORDER BY rowid", (name,)
            ).fetchall()
        return [_param_set(row) for row in rows]

    # -- artifacts -----------------------------------------------------------------------------

    def record_artifacts(self, reference: str, artifacts: Iterable[dict[str, Any]]) -> None:
        """Record what run ``reference`` did with each artifact path, in one transaction.

        Each entry needs ``path`` and ``action`` (an :class:`ArtifactAction` or its value);
        ``record_hash``, ``stage``, ``name``, ``size`` and ``checksum`` default to None. The
        entries are read one at a time (a run of thousands of artifacts passes a generator).
        """

        def row(entry: dict[str, Any]) -> tuple[Any, ...]:
            size = entry.get("size")
            return (
                reference, _text(entry["path"]), entry.get("record_hash"), entry.get("stage"),
                entry.get("name"), None if size is None else int(size),
                entry.get("checksum"), _text(entry["action"]),
            )

        with self._db.write(f"record the artifacts of run {reference!r}") as conn:
            self._require_run(conn, reference, "; call start_run first")
            conn.executemany(
                "INSERT INTO artifacts (reference, path, record_hash, stage, name, size,"
                " checksum, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row(entry) for entry in artifacts),
            )

    def _require_run(self, conn: sqlite3.Connection, reference: str, hint: str = "") -> None:
        if not conn.execute("SELECT 1 FROM runs WHERE reference = ?", (reference,)).fetchone():
            raise RunStoreError(f"run {reference!r} is not in {self.path}{hint}")

    # -- stage calls ---------------------------------------------------------------------------

    def record_stage_calls(self, reference: str, calls: Iterable[dict[str, Any]]) -> None:
        """Record the state (finished, cached, failed, ...) and timing of each stage call."""

        def row(entry: dict[str, Any]) -> tuple[Any, ...]:
            return (
                reference, entry.get("record_index"), entry.get("record"), entry.get("position"),
                entry["stage"], _text(entry["state"]), entry.get("seconds"),
                entry.get("executor"), entry.get("error"),
            )

        with self._db.write(f"record the stage calls of run {reference!r}") as conn:
            conn.execute("DELETE FROM stage_calls WHERE reference = ?", (reference,))
            conn.executemany(
                "INSERT INTO stage_calls (reference, record_index, record, position, stage,"
                " state, seconds, executor, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row(entry) for entry in calls),
            )

    def stage_calls(self, reference: str) -> list[dict[str, Any]]:
        """The recorded stage calls of a run, in the order they were recorded."""
        with self._db.read(f"read stage calls of {reference!r}") as conn:
            cursor = conn.execute(
                "SELECT record_index, record, position, stage, state, seconds, executor, error"
                " FROM stage_calls WHERE reference = ? ORDER BY id",
                (reference,),
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stage_durations(self, experiment_name: str, runs: int = 20) -> list[dict[str, Any]]:
        """Finished stage calls (record, stage, seconds) of the experiment's newest ``runs`` runs.

        Newest first; the plan estimates run times from them.
        """
        with self._db.read(f"read stage durations of {experiment_name!r}") as conn:
            rows = conn.execute(
                "SELECT c.reference, c.record, c.stage, c.seconds FROM stage_calls c"
                " WHERE c.state = 'finished' AND c.seconds IS NOT NULL AND c.reference IN"
                " (SELECT reference FROM runs WHERE experiment_name = ? ORDER BY id DESC LIMIT ?)"
                " ORDER BY c.id DESC",
                (experiment_name, runs),
            ).fetchall()
        keys = ("reference", "record", "stage", "seconds")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def artifact_producers(self, paths: Iterable[str]) -> dict[str, str]:
        """Map each path to the most recent run that computed or overwrote it (if any did)."""
        unique = list(dict.fromkeys(str(path) for path in paths))
        producers: dict[str, str] = {}
        with self._db.read("find artifact producers") as conn:
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                rows = conn.execute(
                    "SELECT path, reference FROM artifacts WHERE id IN (SELECT MAX(id) FROM"
                    " artifacts WHERE action IN (?, ?) AND path IN"
                    f" ({', '.join('?' * len(chunk))}) GROUP BY path)",
                    (*_PRODUCING_ACTIONS, *chunk),
                ).fetchall()
                producers.update(rows)
        return producers

    def runs_using(self, path: str) -> list[str]:
        """Return the references of every run that recorded ``path``, in first-use order."""
        with self._db.read(f"find runs using {path!r}") as conn:
            rows = conn.execute(
                "SELECT reference FROM artifacts WHERE path = ? GROUP BY reference ORDER BY MIN(id)",
                (str(path),),
            ).fetchall()
        return [reference for (reference,) in rows]

    def artifact_uses(self) -> list[dict[str, Any]]:
        """Every recorded use of an artifact: ``reference``, ``path``, ``record_hash``,
        ``stage`` and ``action``, in the order they were recorded."""
        with self._db.read("read artifact uses") as conn:
            rows = conn.execute(
                "SELECT reference, path, record_hash, stage, action FROM artifacts ORDER BY id"
            ).fetchall()
        keys = ("reference", "path", "record_hash", "stage", "action")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- pins ----------------------------------------------------------------------------------

    def pin_run(self, reference: str, note: str | None = None) -> bool:
        """Pin a run so cache cleaning keeps its artifacts; False if it was pinned already."""
        with self._db.write(f"pin run {reference!r}") as conn:
            self._require_run(conn, reference)
            cursor = conn.execute(
                "INSERT INTO pins (reference, pinned_at, note) VALUES (?, ?, ?)"
                " ON CONFLICT (reference) DO NOTHING",
                (reference, datetime.now().strftime(TIMESTAMP_FORMAT), note),
            )
        return cursor.rowcount > 0

    def unpin_run(self, reference: str) -> bool:
        """Remove a run's pin; False if it was not pinned."""
        with self._db.write(f"unpin run {reference!r}") as conn:
            cursor = conn.execute("DELETE FROM pins WHERE reference = ?", (reference,))
        return cursor.rowcount > 0

    def pinned_runs(self) -> dict[str, dict[str, Any]]:
        """The pinned runs: reference -> ``{"pinned_at", "note"}``."""
        with self._db.read("list pinned runs") as conn:
            rows = conn.execute("SELECT reference, pinned_at, note FROM pins").fetchall()
        return {ref: {"pinned_at": at, "note": note} for ref, at, note in rows}


def _plain(value: Any) -> Any:
    """Return an enum member's value, anything else unchanged."""
    return value.value if isinstance(value, Enum) else value


def _text(value: Any) -> str | None:
    """Return ``value`` as text for a nullable TEXT column."""
    return None if value is None else str(_plain(value))


def _dumps(value: Any) -> str:
    """Encode ``value`` as JSON; enums become their value and other unknown types ``str``."""
    return json.dumps(value, default=lambda obj: _plain(obj) if isinstance(obj, Enum) else str(obj))


def _roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    """Return ``value`` as it reads back from the registry (through JSON)."""
    return json.loads(_dumps(value))


def _run_columns(run: dict[str, Any]) -> dict[str, Any]:
    """Return the ``status``, ``error`` and ``info`` column values of a run-info dict."""
    return {
        "status": _text(run.get("status")) or "",
        "error": _text(run.get("error")),
        "info": _dumps(run),
    }


def _param_set(row: Sequence[Any]) -> dict[str, Any]:
    """Build a parameter-set dict from a ``param_sets`` row."""
    keys = ("hash", "name", "representation", "explanation", "hash_mode")
    entry = dict(zip(keys, row, strict=True))
    entry.update(representation=json.loads(row[2]), explanation=json.loads(row[3]))
    return entry
