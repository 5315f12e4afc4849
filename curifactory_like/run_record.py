"""``RunRecordMixin``: what ``ArtifactManager`` writes about its run to the SQLite run registry
(the run row, parameter sets, combo hashes, artifacts, stage calls) and, with ``--store-full``,
into the run folder (environment files, ``run_info.json``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from . import hashing
from .caching.atomic import atomic_open
from .record import Record


class RunRecordMixin:
    """The registry-facing half of ``ArtifactManager`` (see ``manager.py``)."""

    # provided by ArtifactManager (declared here for type checking only; no values)
    run_info: Any
    stored: Any
    pip_freeze: Any
    conda_env: Any
    experiment_run_number: Any
    reproduction_line: Any
    reproduce_command: Any
    os: Any
    _flushed_param_sets: Any
    _pending_combos: Any
    _pending_param_sets: Any
    artifacts: Any
    call_outcomes: Any
    dry: Any
    error: Any
    experiment_name: Any
    git_commit_hash: Any
    git_info: Any
    git_workdir_dirty: Any
    hostname: Any
    manager_cache_path: Any
    map_mode: Any
    notes: Any
    parallel_mode: Any
    param_file_param_sets: Any
    parameter_files: Any
    prefix: Any
    run_end_timestamp: Any
    run_folder_manifest: Any
    run_line: Any
    run_timestamp: Any
    runtime: Any
    status: Any
    store_full: Any
    get_reference_name: Any
    get_run_output_path: Any
    get_str_timestamp: Any

    def _run_store(self) -> Any:
        from .store import RunStore

        return RunStore(self.manager_cache_path)

    def register_param_set(self, param_set: Any) -> None:
        """Queue a parameter set for the run registry (written in one transaction)."""
        if param_set.hash is not None:
            if self._flushed_param_sets.get(param_set.hash) == (id(param_set), param_set.name):
                return  # this very set is already in the registry (records re-register it)
            self._pending_param_sets[param_set.hash] = param_set
            if self.status == "LIVE" and self.stored and not self.map_mode:
                self.flush_registry()

    def register_combo_hash(self, record: Record, members: list[Record]) -> None:
        """Queue an aggregate record's combo hash for the registry."""
        active = record.params.hash if record.params is not None else "None"
        hashes = sorted(r.params.hash if r.params is not None else "None" for r in members)
        self._pending_combos.append((str(record.combo_hash), str(active), hashes))

    def flush_registry(self) -> None:
        """Write queued parameter sets and combo hashes to the registry."""
        if self.dry or self.parallel_mode or not (self._pending_param_sets or self._pending_combos):
            return
        entries = [
            hashing.registry_entry(p, h) for h, p in self._pending_param_sets.items()
        ]
        with self._run_store() as store:
            store.register_param_sets(entries)
            for combo, active, members in self._pending_combos:
                store.register_combo_hash(combo, active, members)
        self._flushed_param_sets.update(
            (h, (id(p), p.name)) for h, p in self._pending_param_sets.items()
        )
        self._pending_param_sets.clear()
        self._pending_combos.clear()

    def _run_info_fields(self) -> dict[str, Any]:
        git = self.git_info
        return {
            "commit": self.git_commit_hash,
            "workdir_dirty": self.git_workdir_dirty,
            "branch": getattr(git, "branch", None),
            "git_diff": getattr(git, "diff", ""),
            "git_untracked": list(getattr(git, "untracked", ())),
            "param_files": self.parameter_files,
            "params": self.param_file_param_sets,
            "full_store": self.store_full,
            "cli": self.run_line,
            "hostname": self.hostname,
            "pid": os.getpid(),
            "notes": self.notes,
            "prefix": self.prefix,
            "user": _platform().get("user"),
            "python": _platform().get("python_version"),
            "platform": _platform().get("platform"),
            "end_timestamp": (
                self.run_end_timestamp.isoformat() if self.run_end_timestamp else None
            ),
        }

    def store(self) -> None:
        """Create (first call) or update this run's row in the SQLite run registry."""
        if self.dry:
            return
        from . import provenance

        first = not self.stored
        fields = self._run_info_fields()
        if first:
            from .freeze_cache import cached_pip_freeze

            self.pip_freeze = cached_pip_freeze(self.manager_cache_path)
            self.conda_env = provenance.conda_environment() or ""
            fields["pip_freeze"] = self.pip_freeze
            if self.conda_env:
                fields["conda_env"] = self.conda_env
            if self.status == "LIVE":
                fields["status"] = "LIVE"
        else:
            fields["status"] = self.status
            if self.status == "error":
                fields["error"] = self.error
            self.flush_registry()  # before the final status, which must be the last write
        with self._run_store() as store:
            if first:
                self.run_info = store.start_run(
                    str(self.experiment_name), self.run_timestamp, fields
                )
                self.experiment_run_number = int(self.run_info["run_number"])
                self.stored = True
            if self.store_full:
                # the run folder is named after the run number, known only from here on
                # curifactory's form (its "reproduce" field): the run line against the run
                # folder as the cache; `experiment reproduce REF` does more (verifies, warns)
                self.reproduction_line = provenance.reproduction_line(
                    self.run_line, self.get_run_output_path()
                )
                self.reproduce_command = f"experiment reproduce {self.get_reference_name()}"
                fields["reproduce"] = self.reproduction_line
                fields["reproduce_command"] = self.reproduce_command
            if not first or self.store_full:
                self.run_info = store.update_run(self.get_reference_name(), **fields)
        self.flush_registry()
        if self.store_full and self.run_info is not None:
            import json

            if first:
                self.write_run_env_output()
            info = dict(self.run_info)
            if self.run_folder_manifest is not None:  # the run folder is complete (runstore)
                info["manifest"] = self.run_folder_manifest
            with atomic_open(self.get_run_output_path("run_info.json"), "w", encoding="utf-8") as out:
                json.dump(info, out, indent=4, default=str)

    def record_artifacts(self) -> None:
        """Write this run's artifacts (path, size, checksum, computed/loaded/skipped) to the registry."""
        if self.dry or self.parallel_mode or not self.stored:
            return
        with_file = [
            artifact
            for artifact in self.artifacts
            if getattr(artifact, "file", None) not in (None, "", "no file")
        ]
        has_calls = bool(self.runtime.calls or self.call_outcomes)
        if not (with_file or has_calls):
            return
        with self._run_store() as store:  # rows are made one at a time: thousands, in big runs
            if with_file:
                store.record_artifacts(
                    self.get_reference_name(), (_artifact_row(a) for a in with_file)
                )
            if has_calls:
                store.record_stage_calls(self.get_reference_name(), self.iter_stage_call_states())

    def stage_call_states(self) -> list[dict[str, Any]]:
        """Every stage call of the run with its state and timing (scheduled or in-process)."""
        return list(self.iter_stage_call_states())

    def iter_stage_call_states(self) -> Iterator[dict[str, Any]]:
        """``stage_call_states()``, one call at a time."""
        states = {"computed": "finished", "loaded": "cached", "skipped": "skipped",
                  "failed": "failed", "upstream_failed": "upstream_failed"}
        scheduled = {o.key: o for o in self.call_outcomes}
        for call in self.runtime.calls:
            outcome = scheduled.pop((call["record_index"], call["position"]), None)
            entry = {**call, "state": states.get(call["action"], call["action"]),
                     "executor": "serial", "error": None}
            if outcome is not None:
                entry.update(state=outcome.state.value, seconds=outcome.seconds,
                             executor=outcome.executor, error=outcome.error)
            entry.pop("action", None)
            entry.pop("reason", None)
            yield entry
        for outcome in scheduled.values():  # never reached by the replay (it stopped early)
            yield {"record_index": outcome.key[0], "record": outcome.record,
                   "position": outcome.key[1], "stage": outcome.stage,
                   "state": outcome.state.value, "seconds": outcome.seconds,
                   "executor": outcome.executor, "error": outcome.error}

    def artifact_run_info(self) -> dict[str, Any]:
        """The compact run block stored in each artifact's sidecar (not the whole param list).

        One dict while its values stay the same, shared by the sidecars of the run (read-only,
        like the nested values of a sidecar read back from disk): a run of thousands of
        artifacts would otherwise hold thousands of equal copies.
        """
        values = (
            self.get_reference_name(),
            self.experiment_name,
            self.experiment_run_number,
            self.get_str_timestamp(),
            self.git_commit_hash,
            self.git_workdir_dirty,
            self.hostname,
        )
        shared = self.__dict__.get("_artifact_run_info")
        if shared is None or shared[0] != values:
            keys = ("reference", "experiment_name", "run_number", "timestamp", "commit",
                    "workdir_dirty", "hostname")
            shared = self._artifact_run_info = (values, dict(zip(keys, values, strict=True)))
        return shared[1]

    def write_run_env_output(self) -> None:
        """Write environment metadata into the --store-full run folder."""
        from . import provenance

        self.pip_freeze = self.pip_freeze or provenance.pip_freeze()
        self.conda_env = self.conda_env or provenance.conda_environment() or ""
        info = provenance.platform_info()
        self.os = f"{info.get('platform', '')} (python {info.get('python_version', '')})"
        with open(self.get_run_output_path("requirements.txt"), "w", encoding="utf-8") as out:
            out.write(self.pip_freeze)
        if self.conda_env:
            with open(self.get_run_output_path("environment.yml"), "w", encoding="utf-8") as out:
                out.write(self.conda_env)
        with open(self.get_run_output_path("environment_meta.txt"), "w", encoding="utf-8") as out:
            out.write(self.os)
        if self.run_info is not None:
            import json

            run_info: dict[str, Any] = dict(self.run_info)
            if self.run_folder_manifest is not None:  # the run folder is complete (runstore)
                run_info["manifest"] = self.run_folder_manifest
            with atomic_open(self.get_run_output_path("run_info.json"), "w", encoding="utf-8") as out:
                json.dump(run_info, out, indent=4, default=str)


def _platform() -> dict[str, str]:
    """Platform facts of this process (computed once)."""
    global _PLATFORM
    if _PLATFORM is None:
        from . import provenance

        _PLATFORM = provenance.platform_info()
    return _PLATFORM


_PLATFORM: dict[str, str] | None = None


def _artifact_row(artifact: Any) -> dict[str, Any]:
    """The registry row of one artifact the run computed, loaded or skipped."""
    metadata = artifact.metadata or {}
    return {
        "path": artifact.file,
        "record_hash": artifact.init_record.get_hash(),
        "stage": metadata.get("stage") or "",
        "name": str(artifact.name),
        "size": metadata.get("artifact_size"),
        "checksum": metadata.get("artifact_checksum"),
        "action": getattr(artifact, "action", "loaded"),
    }
