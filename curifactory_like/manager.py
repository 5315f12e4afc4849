"""``ArtifactManager``: the public face of a run (curifactory's names and attributes).

It owns the run's identity (reference name, run number, provenance), its paths and options,
and the lists a run accumulates (records, artifacts, reportables). The work is delegated:
stage calls to ``runtime.StageRuntime``, the DAG to ``dag``, the registry to ``store``,
provenance to ``provenance``.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from datetime import datetime
from socket import gethostname
from typing import Any

from . import hashing, utils
from .caching.atomic import atomic_open
from .config import PATH_KEYS
from .dag import DAG
from .errors import CachePathError, ConfigurationError
from .record import Record
from .runtime import StageRuntime

logger = logging.getLogger("curifactory_like.manager")


class ArtifactManager:
    """Records, options and metadata of one experiment run.

    Args mirror curifactory's: ``experiment_name``, ``store_full``, ``dry`` (write nothing),
    ``dry_cache`` (write no cache files), ``prefix`` (cache file prefix instead of the experiment
    name), ``run_line``, ``parallel_lock``, ``parallel_mode``, ``lazy``, ``ignore_lazy``,
    ``notes``, the paths (``manager_cache_path``, ``cache_path``, ``runs_path``, ``logs_path``,
    ``notebooks_path``, ``reports_path``, ``report_css_path``; unset ones come from
    ``curifactory_config.json``), ``status_override`` (``"LIVE"`` for notebooks and scripts),
    ``suppress_live_log``, ``live_log_debug``, ``disable_non_cf_loggers``.
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        store_full: bool = False,
        dry: bool = False,
        dry_cache: bool = False,
        prefix: str | None = None,
        run_line: str = "",
        parallel_lock: Any = None,
        parallel_mode: bool = False,
        lazy: bool = False,
        ignore_lazy: bool = False,
        notes: str | None = None,
        manager_cache_path: str | None = None,
        cache_path: str | None = None,
        runs_path: str | None = None,
        logs_path: str | None = None,
        notebooks_path: str | None = None,
        reports_path: str | None = None,
        report_css_path: str | None = None,
        status_override: str | None = "LIVE",
        suppress_live_log: bool = False,
        live_log_debug: bool = False,
        disable_non_cf_loggers: bool = True,
    ):
        self.experiment_name = experiment_name
        self.experiment_run_number = 0
        self.run_timestamp = datetime.now()
        self.current_stage_name = ""
        self.stage_active = False
        self.store_full = store_full
        self.dry = dry
        self.dry_cache = dry_cache
        self.prefix = prefix
        self.notes = notes
        self.run_line = run_line
        self.reproduction_line = ""
        self.reproduce_command = ""
        self.run_folder_manifest: dict[str, Any] | None = None
        self.parallel_lock = parallel_lock
        self.parallel_mode = parallel_mode
        self.lazy = lazy
        self.ignore_lazy = ignore_lazy
        self.config: dict[str, Any] = utils.get_configuration()
        self.manager_cache_path: str = manager_cache_path or self.config["manager_cache_path"]
        self.cache_path: str = cache_path or self.config["cache_path"]
        self.runs_path: str = runs_path or self.config["runs_path"]
        self.logs_path: str = logs_path or self.config["logs_path"]
        self.notebooks_path: str = notebooks_path or self.config["notebooks_path"]
        self.reports_path: str = reports_path or self.config["reports_path"]
        self.report_css_path: str | None = report_css_path or self.config.get("report_css_path")
        self.code_changes: str = self.config.get("code_changes") or "rerun"
        """What a changed stage code fingerprint does: rerun, warn or ignore (fingerprint.py)."""
        self.records: list[Record] = []
        self.artifacts: list[Any] = []
        self.mapped_artifacts: list[Any] = []
        self.reportables: list[Any] = []
        self.parameter_files: list[str] = []
        self.param_file_param_sets: dict[str, list[tuple[str, str]]] = {}
        self.overwrite_stages: list[str] = []
        self.overwrite = False
        self.map_mode = False
        self.map: DAG | None = None
        self.map_progress: Any = None
        self.map_progress_overall_task_id: Any = None
        self.status = "incomplete" if status_override is None else status_override
        self.error: str | None = None
        self.error_exception: BaseException | None = None
        self.error_thrown = False
        self.stored = False
        self.run_info: dict[str, Any] | None = None
        self.interactive = False
        self.live_report_path_generated = False
        self.live_report_paths: Any = None
        self.git_commit_hash = ""
        self.git_workdir_dirty = False
        self.git_info: Any = None
        self.pip_freeze = ""
        self.conda_env = ""
        self.os = ""
        self.hostname = gethostname()
        self.run_end_timestamp: datetime | None = None
        self.log_path: str | None = None
        """The run's log file, when one is written."""
        self.dag: DAG | None = None
        """The analysed DAG of the last mapped run (kept after ``map`` is cleared)."""
        self.report_path: str | None = None
        self.call_outcomes: list[Any] = []
        """Per scheduled stage call (``--parallel`` / ``--dask``): state, timing, error."""
        self._made_dirs: set[str] = set()
        self.temporary_paths: list[str] = []
        """Run-scoped scratch folders removed when the run ends."""
        self.runtime = StageRuntime(self)
        self._pending_param_sets: dict[str, Any] = {}
        self._flushed_param_sets: dict[str, tuple[int, str]] = {}
        """Hash -> (id, name) of the parameter sets this run already wrote to the registry."""
        self._pending_combos: list[tuple[str, str, list[str]]] = []

        hashing.set_hash_mode(self.config.get("hash_mode", "v1"))
        if not self.dry and not self.dry_cache:
            _make_folder(self.cache_path, "cache_path")
        if not self.dry:
            _make_folder(self.reports_path, "reports_path")
            _make_folder(self.logs_path, "logs_path")
        if self.status == "LIVE":
            if hasattr(sys, "ps1") or "ipykernel" in sys.modules:
                self.run_line = "(Interactive environment)"
                self.interactive = True
            else:
                self.run_line = self.run_line or " ".join(sys.argv)
        self._collect_git_provenance()
        if not self.parallel_mode:
            self.store()
        if self.status == "LIVE" and not suppress_live_log and not self.parallel_mode:
            log_path = None
            if not self.dry:
                log_path = os.path.join(self.logs_path, f"{self.get_reference_name()}.log")
            utils.init_logging(
                log_path,
                logging.DEBUG if live_log_debug else logging.INFO,
                disable_non_cf_loggers=disable_non_cf_loggers,
            )
            self.log_path = log_path

    # ------------------------------------------------------------------ configuration

    def _load_config(self) -> None:
        """Fill unset paths from ``curifactory_config.json`` and select the hash mode."""
        self.config = utils.get_configuration()
        for key in PATH_KEYS:
            if getattr(self, key) is None:
                setattr(self, key, self.config.get(key))
        hashing.set_hash_mode(self.config.get("hash_mode", "v1"))

    def _collect_git_provenance(self) -> None:
        from . import provenance

        self.git_info = provenance.git_info(os.getcwd())
        self.git_commit_hash = self.git_info.commit or "No git repository found"
        self.git_workdir_dirty = self.git_info.dirty

    # ------------------------------------------------------------------ registry

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
        rows = []
        for artifact in self.artifacts:
            path = getattr(artifact, "file", None)
            if not path or path == "no file":
                continue
            metadata = artifact.metadata or {}
            rows.append(
                {
                    "path": path,
                    "record_hash": artifact.init_record.get_hash(),
                    "stage": metadata.get("stage") or "",
                    "name": str(artifact.name),
                    "size": metadata.get("artifact_size"),
                    "checksum": metadata.get("artifact_checksum"),
                    "action": getattr(artifact, "action", "loaded"),
                }
            )
        calls = self.stage_call_states()
        if rows or calls:
            with self._run_store() as store:
                if rows:
                    store.record_artifacts(self.get_reference_name(), rows)
                if calls:
                    store.record_stage_calls(self.get_reference_name(), calls)

    def stage_call_states(self) -> list[dict[str, Any]]:
        """Every stage call of the run with its state and timing (scheduled or in-process)."""
        states = {"computed": "finished", "loaded": "cached", "skipped": "skipped",
                  "failed": "failed", "upstream_failed": "upstream_failed"}
        scheduled = {o.key: o for o in self.call_outcomes}
        calls = []
        for call in self.runtime.calls:
            outcome = scheduled.pop((call["record_index"], call["position"]), None)
            entry = {**call, "state": states.get(call["action"], call["action"]),
                     "executor": "serial", "error": None}
            if outcome is not None:
                entry.update(state=outcome.state.value, seconds=outcome.seconds,
                             executor=outcome.executor, error=outcome.error)
            entry.pop("action", None)
            entry.pop("reason", None)
            calls.append(entry)
        for outcome in scheduled.values():  # never reached by the replay (it stopped early)
            calls.append({"record_index": outcome.key[0], "record": outcome.record,
                          "position": outcome.key[1], "stage": outcome.stage,
                          "state": outcome.state.value, "seconds": outcome.seconds,
                          "executor": outcome.executor, "error": outcome.error})
        return calls

    def artifact_run_info(self) -> dict[str, Any]:
        """The compact run block stored in each artifact's sidecar (not the whole param list)."""
        return {
            "reference": self.get_reference_name(),
            "experiment_name": self.experiment_name,
            "run_number": self.experiment_run_number,
            "timestamp": self.get_str_timestamp(),
            "commit": self.git_commit_hash,
            "workdir_dirty": self.git_workdir_dirty,
            "hostname": self.hostname,
        }

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

    # ------------------------------------------------------------------ mapping

    def map_records(self) -> None:
        """Turn the records and artifacts of the map pass into ``self.map`` and plan it."""
        self.map = DAG()
        index_of = {id(record): i for i, record in enumerate(self.records)}
        for record in self.records:
            mapped = Record(self, record.params, hide=True)
            mapped.stages = record.stages
            mapped.stage_inputs = record.stage_inputs
            mapped.stage_outputs = record.stage_outputs
            mapped.stage_suppress_missing = record.stage_suppress_missing
            mapped.stage_kwargs_keys = record.stage_kwargs_keys
            mapped.stage_inputs_names = record.stage_inputs_names
            mapped.mapped_calls = record.mapped_calls
            mapped.is_aggregate = record.is_aggregate
            mapped.combo_hash = record.combo_hash
            mapped.state_artifact_reps = copy.deepcopy(record.state_artifact_reps)
            mapped._index_hints[True] = len(self.map.records)
            self.map.records.append(mapped)
        for record, mapped in zip(self.records, self.map.records, strict=True):
            mapped.input_records = [
                self.map.records[index_of[id(r)]] for r in record.input_records if id(r) in index_of
            ]
        self.map.artifacts.extend(self.artifacts)
        self.mapped_artifacts = list(self.artifacts)
        self.records.clear()
        self.artifacts.clear()
        self.dag = self.map
        self.map.analyze()

    def update_map_progress(self, record: Record, update_type: str = "") -> None:
        """Advance the rich progress bar of ``record`` (``--progress``)."""
        if self.map_progress is None or self.map_mode or self.map is None:
            return
        task_id = getattr(self.map_progress, "record_tasks", {}).get(record.get_record_index())
        if task_id is None:
            return
        if update_type == "start":
            self.map_progress.update(task_id, visible=True, name=f"Stage {record.stages[-1]}")
        elif update_type == "continue":
            self.map_progress.update(task_id, advance=1, name="")
            task = next(t for t in self.map_progress.tasks if t.id == task_id)
            if task.completed >= (task.total or 0):
                self.map_progress.update(self.map_progress_overall_task_id, advance=1)

    # ------------------------------------------------------------------ reportables

    def get_all_param_sets(self) -> list[Any]:
        """The distinct parameter sets of the manager's records."""
        seen: set[str] = set()
        result = []
        for record in self.records:
            if record.params is not None and record.params.hash not in seen:
                seen.add(record.params.hash)
                result.append(record.params)
        return result

    def get_grouped_reportables(self) -> dict[str, list[Any]]:
        """Reportables by group name (ungrouped ones left out)."""
        groups: dict[str, list[Any]] = {}
        for reportable in self.reportables:
            if getattr(reportable, "group", None) is not None:
                groups.setdefault(reportable.group, []).append(reportable)
        return groups

    def get_ungrouped_reportables(self) -> list[Any]:
        """Reportables without a group."""
        return [r for r in self.reportables if getattr(r, "group", None) is None]

    def get_reportable_groups(self) -> list[str]:
        """The group names in first-seen order."""
        return list(self.get_grouped_reportables())

    # ------------------------------------------------------------------ report and display

    def generate_report(self) -> str:
        """Write reports/<ref>/index.html (and _latest, the runs index); return its path.

        A dry manager writes nothing (as in curifactory) and returns "".
        """
        if self.dry:
            return ""
        from .reporting.report import render_run_report, update_report_index

        pending: dict[str, dict[str, Any]] = {}
        if self.stored and self.run_info is not None and self.status != "LIVE":
            # the report is written before the final status reaches the registry (see
            # experiment._finish_run), so it shows the status the run is about to record
            final = {**self._run_info_fields(), "status": self.status}
            if self.status == "error":
                final["error"] = self.error
            self.run_info = {**self.run_info, **final}
            pending[self.get_reference_name()] = self.run_info
        self.report_path = render_run_report(self)
        self.live_report_path_generated = True
        if not self.dry:
            update_report_index(self.reports_path, self.manager_cache_path, pending)
        return self.report_path

    def display_info(self) -> Any:
        """The run's info block as an IPython HTML display object."""
        from . import notebook

        return notebook.display_info(self)

    def display_all_reportables(self) -> Any:
        """Every reportable of the run, rendered for Jupyter."""
        from . import notebook

        return notebook.display_all_reportables(self)

    def display_record_reportables(self, record: Record) -> Any:
        """The reportables one record produced, rendered for Jupyter."""
        from . import notebook

        return notebook.display_record_reportables(self, record)

    def display_group_reportables(self, group_name: str) -> Any:
        """The reportables of one group, rendered for Jupyter."""
        from . import notebook

        return notebook.display_group_reportables(self, group_name)

    def display_stage_reportables(self, stage_name: str) -> Any:
        """The reportables one stage produced, rendered for Jupyter."""
        from . import notebook

        return notebook.display_stage_reportables(self, stage_name)

    def display_reportable(self, reportable: Any) -> Any:
        """One reportable, rendered for Jupyter."""
        from . import notebook

        return notebook.display_reportable(self, reportable)

    def display_stage_graph(self) -> Any:
        """The stage DAG as SVG, for Jupyter."""
        from . import notebook

        return notebook.display_stage_graph(self)

    def _repr_html_(self) -> str:
        return str(self.display_info().data)

    def store_reportables(self, context: Any) -> None:
        """Persist the reportables a stage call produced so a cached rerun shows them again."""
        from .reporting.persistence import save_stage_reportables

        save_stage_reportables(self, context.record, context.name)

    def restore_cached_reportables(self, context: Any) -> None:
        """Re-add the reportables a skipped or loaded stage produced when it last ran."""
        from .reporting.persistence import load_stage_reportables

        load_stage_reportables(self, context.record, context.name)

    # ------------------------------------------------------------------ naming and paths

    def _get_name(self) -> str:
        return str(self.prefix if self.prefix is not None else self.experiment_name)

    def get_str_timestamp(self) -> str:
        """The run timestamp as used in reference names."""
        cached = getattr(self, "_timestamp_string", None)  # formatted once per timestamp
        if cached is None or cached[0] is not self.run_timestamp:
            cached = self._timestamp_string = (
                self.run_timestamp,
                self.run_timestamp.strftime(utils.TIMESTAMP_FORMAT),
            )
        return cached[1]

    def get_reference_name(self) -> str:
        """``<experiment>_<run number>_<timestamp>``."""
        return f"{self.experiment_name}_{self.experiment_run_number}_{self.get_str_timestamp()}"

    def get_artifact_filename(
        self,
        obj_name: str,
        record: Record,
        prefix: str | None = None,
        stage_name: str | None = None,
    ) -> str:
        """``[prefix]_[hash]_[stage]_[obj_name]`` for a record."""
        prefix = self._get_name() if prefix is None else prefix
        stage_name = self.current_stage_name if stage_name is None else stage_name
        return f"{prefix}_{record.get_hash()}_{stage_name}_{obj_name}"

    def get_artifact_path(
        self,
        obj_name: str,
        record: Record,
        subdir: str | None = None,
        prefix: str | None = None,
        stage_name: str | None = None,
        store: bool = False,
    ) -> str:
        """The full path of an artifact in the cache (or, with ``store``, the run folder)."""
        filename = self.get_artifact_filename(obj_name, record, prefix, stage_name)
        base_path = (
            os.path.join(self.get_run_output_path(), "artifacts") if store else str(self.cache_path)
        )
        directory = os.path.join(base_path, subdir) if subdir is not None else base_path
        path = os.path.join(directory, filename)
        effective_prefix = self._get_name() if prefix is None else prefix
        _ensure_inside(base_path, path, obj_name, subdir, effective_prefix)
        if (store or not (self.dry or self.dry_cache)) and directory not in self._made_dirs:
            os.makedirs(directory, exist_ok=True)
            self._made_dirs.add(directory)
        return path

    def get_run_output_path(self, obj_name: str | None = None) -> str:
        """The --store-full folder of this run (created), or a path inside it."""
        output_path = os.path.join(str(self.runs_path), self.get_reference_name())
        target = output_path if obj_name is None else os.path.join(output_path, obj_name)
        os.makedirs(os.path.dirname(target) if obj_name is not None else target, exist_ok=True)
        return target

    def lock(self) -> None:
        """Acquire the parallel lock, if one was given (curifactory compatibility)."""
        if self.parallel_lock is not None:
            self.parallel_lock.acquire()

    def unlock(self) -> None:
        """Release the parallel lock, if one was given."""
        if self.parallel_lock is not None:
            self.parallel_lock.release()

    def __repr__(self) -> str:
        return f"ArtifactManager({self.get_reference_name()!r}, status={self.status!r})"


def _platform() -> dict[str, str]:
    """Platform facts of this process (computed once)."""
    global _PLATFORM
    if _PLATFORM is None:
        from . import provenance

        _PLATFORM = provenance.platform_info()
    return _PLATFORM


_PLATFORM: dict[str, str] | None = None


def _make_folder(path: Any, key: str) -> None:
    """Create a configured folder, or say which setting names a folder that cannot exist."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the {key} folder {str(path)!r}: {exc.strerror or exc}",
            hint=f"set {key} in curifactory_config.json (or the matching command-line option) "
            "to a folder this user can create and write",
        ) from exc


def _ensure_inside(
    base_path: str, path: str, obj_name: str, subdir: str | None, prefix: str | None
) -> None:
    """Refuse artifact names, prefixes and subdirs that would leave the cache directory."""
    if subdir is None and "/" not in obj_name and "\\" not in obj_name and (
        prefix is None or ("/" not in prefix and "\\" not in prefix)
    ):
        return  # a plain file name in the base directory cannot escape it
    base = os.path.normpath(os.path.abspath(base_path))
    target = os.path.normpath(os.path.abspath(path))
    parts = [str(p) for p in (obj_name, subdir, prefix) if p]
    traversal = any(".." in p.replace("\\", "/").split("/") for p in parts)
    absolute = any(os.path.isabs(p) for p in (subdir, prefix) if p)
    if traversal or absolute or os.path.commonpath([base, target]) != base or target == base:
        raise CachePathError(
            f"artifact path {path!r} (name {obj_name!r}, subdir {subdir!r}, prefix {prefix!r}) "
            f"escapes the cache directory {base_path!r}; use names without '..' or absolute paths"
        )
