"""``RunReportingMixin``: ``ArtifactManager``'s reportables, run report and notebook display
(curifactory's method names, delegating to ``reporting`` and ``notebook``)."""

from __future__ import annotations

from typing import Any

from .record import Record


class RunReportingMixin:
    """The reportable, report and display half of ``ArtifactManager`` (see ``manager.py``)."""

    # provided by ArtifactManager (declared here for type checking only; no values)
    run_info: Any
    report_path: Any
    live_report_path_generated: Any
    dry: Any
    error: Any
    manager_cache_path: Any
    records: Any
    reportables: Any
    reports_path: Any
    status: Any
    stored: Any
    get_reference_name: Any
    _run_info_fields: Any

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
            # run_ending.finish_run), so it shows the status the run is about to record
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
