"""The run registry's tables, and the statements that create each schema version.

``MIGRATIONS[n]`` brings a database from version ``n - 1`` to ``n``; ``RunStore`` applies the
missing ones in one transaction and records the version in ``PRAGMA user_version``. A new
version adds an entry here and raises ``SCHEMA_VERSION``; existing entries never change, since
registries made by older versions replay them.
"""

from __future__ import annotations

SCHEMA_VERSION = 3
"""The schema version this package writes (``PRAGMA user_version``)."""

SCHEMA_V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, reference TEXT NOT NULL UNIQUE, experiment_name TEXT NOT NULL,
    run_number INTEGER NOT NULL, timestamp TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    info TEXT NOT NULL, UNIQUE (experiment_name, run_number));
CREATE TABLE param_sets (
    hash TEXT PRIMARY KEY, name TEXT NOT NULL, representation TEXT NOT NULL,
    explanation TEXT NOT NULL, hash_mode TEXT NOT NULL);
CREATE INDEX param_sets_name ON param_sets (name);
CREATE TABLE combo_hashes (combo_hash TEXT PRIMARY KEY, active TEXT NOT NULL, members TEXT NOT NULL);
CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY, reference TEXT NOT NULL REFERENCES runs (reference) ON DELETE CASCADE,
    path TEXT NOT NULL, record_hash TEXT, stage TEXT, name TEXT, size INTEGER, checksum TEXT,
    action TEXT NOT NULL);
CREATE INDEX artifacts_path ON artifacts (path, action);
CREATE INDEX artifacts_reference ON artifacts (reference);
"""

SCHEMA_V2 = """
CREATE TABLE stage_calls (
    id INTEGER PRIMARY KEY, reference TEXT NOT NULL REFERENCES runs (reference) ON DELETE CASCADE,
    record_index INTEGER, record TEXT, position INTEGER, stage TEXT NOT NULL,
    state TEXT NOT NULL, seconds REAL, executor TEXT, error TEXT);
CREATE INDEX stage_calls_by_run ON stage_calls (reference)
"""

SCHEMA_V3 = """
CREATE TABLE pins (
    reference TEXT PRIMARY KEY REFERENCES runs (reference) ON DELETE CASCADE,
    pinned_at TEXT NOT NULL, note TEXT)
"""

MIGRATIONS: dict[int, str] = {1: SCHEMA_V1, 2: SCHEMA_V2, 3: SCHEMA_V3}
