"""``experiment reproduce --audit``: compare re-executed artifacts with the run's manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..caching.atomic import file_checksum
from ..caching.builtin import FileReferenceCacher
from . import layout
from .writer import nondeterministic_stages

EQUAL = "equal"
DIFFERENT = "different"
MISSING = "missing"
NEW = "new"


@dataclass
class AuditRow:
    """One artifact of the audit: its stored and re-executed checksums and the verdict."""

    stage: str
    name: str
    params_name: str | None
    record_hash: str
    status: str
    nondeterministic: bool
    expected: str | None
    actual: str | None

    @property
    def fails(self) -> bool:
        """A deterministic artifact that differs or was not produced again."""
        return self.status in (DIFFERENT, MISSING) and not self.nondeterministic

    @property
    def label(self) -> str:
        if self.status == DIFFERENT and self.nondeterministic:
            return "different (nondeterministic)"
        if self.status == MISSING:
            return "missing (not produced again)"
        if self.status == NEW:
            return "new (not in the manifest)"
        return self.status

    @property
    def css(self) -> str:
        return "fail" if self.fails else ("warn" if self.status != EQUAL else "ok")


@dataclass
class AuditResult:
    """Every artifact's verdict; ``failed`` when a deterministic artifact differs."""

    rows: list[AuditRow] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(row.fails for row in self.rows)

    @property
    def verdict(self) -> str:
        counts = {status: sum(r.status == status for r in self.rows)
                  for status in (EQUAL, DIFFERENT, MISSING, NEW)}
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        return f"{'FAILED' if self.failed else 'passed'} ({summary or 'no artifacts'})"

    def table(self) -> str:
        """The rows as a plain-text table."""
        header = ("result", "stage", "artifact", "param set", "record", "stored", "audit")
        lines = [header] + [
            (r.label, r.stage, r.name, r.params_name or "", r.record_hash[:10],
             (r.expected or "-")[7:19], (r.actual or "-")[7:19])
            for r in self.rows
        ]
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
        return "\n".join(
            "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)).rstrip()
            for line in lines
        )


def actual_checksum(cacher: Any, path: str) -> str | None:
    """The content checksum of an artifact as the manifest computes it."""
    if not os.path.exists(path):
        return None
    if isinstance(cacher, FileReferenceCacher):
        value = cacher.load()
        paths = value if isinstance(value, list) else [value]
        if not all(os.path.exists(p) for p in paths):
            return None
        return layout.content_checksum(paths)
    return file_checksum(path)


def compare(manifest: dict[str, Any], manager: Any) -> AuditResult:
    """Match the audit run's artifacts with the manifest's, by record hash, stage and name."""
    flags = nondeterministic_stages(manager)
    produced: dict[tuple[str, str, str], tuple[Any, str | None]] = {}
    for artifact in manager.artifacts:
        cacher = getattr(artifact, "cacher", None)
        if cacher is None or cacher.record is None:
            continue
        path = artifact.file if artifact.file not in (None, "no file") else cacher.get_path()
        key = (artifact.init_record.get_hash(), str(cacher.stage or ""), str(artifact.name))
        produced.setdefault(key, (artifact, actual_checksum(cacher, path)))
    result = AuditResult()
    for entry in manifest.get("artifacts", []):
        key = (str(entry["record_hash"]), str(entry["stage"]), str(entry["name"]))
        found = produced.pop(key, None)
        actual = found[1] if found else None
        status = MISSING if actual is None else (EQUAL if actual == entry["checksum"] else DIFFERENT)
        result.rows.append(AuditRow(
            stage=key[1], name=key[2], params_name=entry.get("params_name"), record_hash=key[0],
            status=status, nondeterministic=flags.get(key[1], bool(entry.get("nondeterministic"))),
            expected=entry["checksum"], actual=actual,
        ))
    for (record_hash, stage, name), (artifact, actual) in produced.items():
        result.rows.append(AuditRow(
            stage=stage, name=name, params_name=getattr(artifact.init_record.params, "name", None),
            record_hash=record_hash, status=NEW, nondeterministic=flags.get(stage, False),
            expected=None, actual=actual,
        ))
    return result
