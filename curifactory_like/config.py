"""Project configuration: ``curifactory_config.json``, found from the working directory upward.

The keys and defaults are curifactory's, plus ``hash_mode`` (``"v1"``, the canonical hash, or
``"legacy"``, curifactory's exact hashes so existing caches stay usable) and ``code_changes``
(``"rerun"``, ``"warn"`` or ``"ignore"``: what a changed stage code fingerprint does).
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import ConfigurationError

CONFIGURATION_FILE = "curifactory_config.json"
"""The configuration file name looked up from the working directory upward."""

CONFIG_DEFAULTS: dict[str, Any] = {
    "experiments_module_name": "experiments",
    "params_module_name": "params",
    "manager_cache_path": "data/",
    "cache_path": "data/cache",
    "runs_path": "data/runs",
    "logs_path": "logs/",
    "notebooks_path": "notebooks/",
    "reports_path": "reports/",
    "report_css_path": "reports/style.css",
}
"""curifactory's keys and defaults. ``hash_mode`` (default ``"v1"``) is read only if present."""

PATH_KEYS = (
    "manager_cache_path",
    "cache_path",
    "runs_path",
    "logs_path",
    "notebooks_path",
    "reports_path",
    "report_css_path",
)
HASH_MODES = ("v1", "legacy")
SEARCH_DEPTH = 3
"""How many parent directories are searched for the configuration file (as curifactory)."""


def find_configuration_file(start: str | None = None) -> str | None:
    """Return the path of the nearest configuration file at or above ``start`` (default cwd)."""
    directory = os.path.abspath(start or os.getcwd())
    for _ in range(SEARCH_DEPTH + 1):
        candidate = os.path.join(directory, CONFIGURATION_FILE)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return None


def load_configuration(start: str | None = None) -> dict[str, Any]:
    """Load the configuration with defaults filled in; paths are usable from the cwd.

    A configuration found in a parent directory has its relative paths rebased so that they
    point where they would from that directory.
    """
    config = dict(CONFIG_DEFAULTS)
    path = find_configuration_file(start)
    if path is None:
        return config
    try:
        with open(path, encoding="utf-8") as infile:
            loaded = json.load(infile)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "fix the file or delete it to use the defaults"
        ) from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    if not isinstance(loaded, dict):
        raise ConfigurationError(
            f"{path} must hold a JSON object of settings, not {type(loaded).__name__}"
        )
    config.update(loaded)
    for key in PATH_KEYS:
        if config[key] is not None and not isinstance(config[key], str):
            raise ConfigurationError(f"{path}: '{key}' must be a path string, not {config[key]!r}")
    if config.get("hash_mode", "v1") not in HASH_MODES:
        raise ConfigurationError(
            f"{path}: 'hash_mode' is {config['hash_mode']!r}; use one of {', '.join(HASH_MODES)}"
        )
    if config.get("code_changes", "rerun") not in ("rerun", "warn", "ignore"):
        raise ConfigurationError(
            f"{path}: 'code_changes' is {config['code_changes']!r}; use one of rerun, warn, ignore"
        )
    config_dir = os.path.dirname(path)
    if os.path.abspath(config_dir) != os.path.abspath(start or os.getcwd()):
        base = os.path.relpath(config_dir)
        for key in PATH_KEYS:
            value = config[key]
            if value and not os.path.isabs(value):
                config[key] = os.path.join(base, value)
    return config
