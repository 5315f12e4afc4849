"""Shell-completion helpers: experiment and parameter-file names (for argcomplete users)."""

from __future__ import annotations

import subprocess
from typing import Any

from .. import utils


def _grep_modules(module_name: str, pattern: str) -> list[str]:
    """Dotted module names under ``module_name`` whose source has a line matching ``pattern``."""
    path = module_name.replace(".", "/")
    try:
        completed = subprocess.run(
            ["grep", "-rl", "--include=*.py", pattern, "."],
            cwd=path,
            capture_output=True,
        )
    except (OSError, ValueError):
        return []
    stdout = completed.stdout
    text = stdout.decode("utf-8") if isinstance(stdout, bytes) else str(stdout)
    names = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("./"):
            line = line[2:]
        if line.endswith(".py"):
            names.append(line[:-3].replace("/", "."))
    return names


def completer_experiments(**kwargs: Any) -> list[str]:
    """Experiment names: modules of the experiments module that define ``run(``."""
    config = utils.get_configuration()
    return sorted(_grep_modules(config["experiments_module_name"], "^def run("))


def completer_params(**kwargs: Any) -> list[str]:
    """Parameter file names: modules of the experiments and params modules with ``get_params(``."""
    config = utils.get_configuration()
    names = _grep_modules(config["experiments_module_name"], "^def get_params(")
    names += _grep_modules(config["params_module_name"], "^def get_params(")
    return sorted(names)
