"""``ArtifactManager``: the public face of a run (curifactory's names and attributes).

It owns the run's identity (reference name, run number, provenance), its paths and options,
and the lists a run accumulates (records, artifacts, reportables). The work is delegated:
stage calls to ``runtime.StageRuntime``, the DAG to ``dag``, the registry to ``store``,
provenance to ``provenance``. Two mixins hold the rest of its methods: ``run_record``
(registry rows, ``--store-full`` environment output) and ``run_reporting`` (reportables,
report, notebook display).
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
from .config import PATH_KEYS
from .dag import DAG
from .errors import CachePathError, ConfigurationError
from .record import Record
from .run_record import RunRecordMixin
from .run_reporting import RunReportingMixin
from .runtime import StageRuntime

logger = logging.getLogger("curifactory_like.manager")


class ArtifactManager(RunRecordMixin, RunReportingMixin):
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
        self.graph_prefetch: Any = None
        """The report's stage graph being drawn from the plan while the run executes
        (``reporting.graph_prefetch``); the report takes it, or it is discarded at the end."""
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

        # a dry run records nothing: the commit and dirty flag it shows are enough
        collect = provenance.git_summary if self.dry else provenance.git_info
        self.git_info = collect(os.getcwd())
        self.git_commit_hash = self.git_info.commit or "No git repository found"
        self.git_workdir_dirty = self.git_info.dirty

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
        # the map pass's cachers now point at the mapped copies, so the pass's own records
        # (state dicts and all, ~2 MB at N=1000) are freed once the experiment's run() returns
        mapped_of = {id(r): m for r, m in zip(self.records, self.map.records, strict=True)}
        for artifact in self.artifacts:
            cacher = getattr(artifact, "cacher", None)
            if cacher is not None and id(cacher.record) in mapped_of:
                cacher.record = mapped_of[id(cacher.record)]
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
