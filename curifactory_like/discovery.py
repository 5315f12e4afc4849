"""Listing a project's experiments and parameter files (``experiment ls``; curifactory's
``list_experiments`` / ``list_params``)."""

from __future__ import annotations

import importlib
import os
import re
import sys

from . import utils


def regex_lister(module_name: str, regex: str, try_import: bool = True) -> list[str]:
    """Names of modules under ``module_name`` with a line matching ``regex``, with docstrings."""
    path = module_name.replace(".", "/")
    if not os.path.exists(path):
        print(f"\t[WARNING - path: '{path}' does not exist. Double check curifactory_config.json]")
        return []
    pattern = re.compile(regex)
    names = []
    for dirpath, _, filenames in os.walk(path):
        for filename in filenames:
            if not filename.endswith(".py"):
                continue
            full = os.path.join(dirpath, filename)
            with open(full, encoding="utf-8") as infile:
                text = infile.read()
            if not any(pattern.search(line) for line in text.splitlines()):
                continue
            name = os.path.relpath(full[:-3], path).replace(os.sep, ".")
            entry = name
            if try_import:
                try:
                    importlib.import_module(f"{module_name}.{name}")
                    comment = _opening_docstring(text)
                    entry = f"{name} - {comment}" if comment else name
                except Exception as exc:
                    entry = f"{name} [ERROR - {exc}]"
            names.append(entry)
    return names


def _opening_docstring(text: str) -> str:
    import ast

    try:
        doc = ast.get_docstring(ast.parse(text))
    except SyntaxError:
        return ""
    return doc.strip().splitlines()[0] if doc else ""


def list_experiments() -> list[str]:
    """Experiments (modules with ``def run(``) of the configured experiments module."""
    config = utils.get_configuration()
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    return sorted(regex_lister(config["experiments_module_name"], r"^def run\(.*\)"))


def list_params() -> list[str]:
    """Parameter files (modules with ``def get_params(``) in the params and experiments modules."""
    config = utils.get_configuration()
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    names = regex_lister(config["params_module_name"], r"^def get_params\(.*\)")
    names.extend(regex_lister(config["experiments_module_name"], r"^def get_params\(.*\)"))
    return sorted(names)
