"""Code fingerprints of stages: did the code behind a cached artifact change?

A stage's fingerprint covers its own source and, transitively, the project-local functions,
classes and module-level constants it uses. Sources are compared as normalised ASTs, so comments,
docstrings and formatting do not count; default argument values do (they are part of the
source, and names used in them are followed like any other). Names are followed through the
function's closure and globals and through attributes of project modules. Code in the standard
library or in installed packages (site-packages) is not fingerprinted; the versions of the
installed packages a stage references are recorded instead. ``@stage(..., version="2")`` pins
the fingerprint by hand.

Everything is computed once per process per function (cached by function object), so a run
pays for a stage's fingerprint once, not once per call.

The sidecar of every artifact a stage writes carries ``code_fingerprint`` (the stage's digest),
``code_parts`` (the digest of each function / class / constant it covers, which lets a change be
named) and ``library_versions``. An artifact cached before fingerprints existed has none: its
code state is unknown and it is used as is.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import logging
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("curifactory_like.fingerprint")

POLICIES = ("rerun", "warn", "ignore")
"""What a changed stage fingerprint does: recompute, log a warning and load, or nothing."""
DEFAULT_POLICY = "rerun"

_FRAMEWORK = __name__.split(".")[0]
_DATA_TYPES = (int, float, complex, str, bytes, bool, type(None), range)


@dataclass(frozen=True)
class StageFingerprint:
    """The code fingerprint of one stage function."""

    digest: str
    """Digest over every part (or over the pinned version)."""
    parts: dict[str, str] = field(default_factory=dict)
    """``"function:mod.name"`` / ``"class:..."`` / ``"constant:..."`` -> digest of that part."""
    version: str | None = None
    """The ``version=`` pin of the stage, if any (then ``parts`` is empty)."""
    libraries: dict[str, str] = field(default_factory=dict)
    """Installed packages the stage's code references -> their versions."""

    def sidecar_fields(self) -> dict[str, Any]:
        """The fields stored in the sidecar of each artifact the stage writes.

        The nested dicts are one copy shared by every artifact of the stage (thousands, in a
        large run), read-only like the nested values of a sidecar read back from disk.
        """
        parts, libraries = self._shared_copies
        return {
            "code_fingerprint": self.digest,
            "code_version": self.version,
            "code_parts": parts,
            "library_versions": libraries,
        }

    @functools.cached_property
    def _shared_copies(self) -> tuple[dict[str, str], dict[str, str]]:
        return dict(self.parts), dict(self.libraries)


# ---------------------------------------------------------------------------- public API


def stage_fingerprint(function: Callable[..., Any], version: str | None = None) -> StageFingerprint:
    """The fingerprint of a stage function (computed once per process and function)."""
    key = (function, version)
    cached = _STAGE_CACHE.get(key)
    if cached is None:
        cached = _compute_stage_fingerprint(function, version)
        _STAGE_CACHE[key] = cached
    return cached


def definition_fingerprint(definition: Any) -> StageFingerprint:
    """The fingerprint of a ``StageDefinition`` (honours its ``version`` pin)."""
    return stage_fingerprint(definition.function, getattr(definition, "version", None))


def code_change(metadata: dict[str, Any] | None, current: StageFingerprint) -> str | None:
    """Why the code differs from the one that wrote ``metadata`` (a sidecar), or ``None``.

    ``None`` also when the sidecar has no fingerprint (cached before fingerprints existed):
    that artifact's code state is unknown, and it is not recomputed for that.
    """
    if not metadata:
        return None
    old_digest = metadata.get("code_fingerprint")
    if not old_digest or old_digest == current.digest:
        return None
    return "stage code changed (" + describe_difference(
        metadata.get("code_parts") or {},
        current.parts,
        metadata.get("code_version"),
        current.version,
    ) + ")"


def describe_difference(
    old_parts: dict[str, str],
    new_parts: dict[str, str],
    old_version: str | None = None,
    new_version: str | None = None,
) -> str:
    """Name what differs between two fingerprints, e.g. ``function lib.helpers.scale``."""
    if old_version != new_version:
        if new_version is None:
            return f"version pin {old_version!r} removed"
        if old_version is None:
            return f"version pinned to {new_version!r}"
        return f"version {old_version!r} -> {new_version!r}"
    changed = [k for k in new_parts if k in old_parts and old_parts[k] != new_parts[k]]
    added = [k for k in new_parts if k not in old_parts]
    removed = [k for k in old_parts if k not in new_parts]
    pieces = [_label(k) for k in changed]
    pieces += [f"{_label(k)} now used" for k in added]
    pieces += [f"{_label(k)} no longer used" for k in removed]
    if not pieces:
        return "code differs"
    shown = ", ".join(pieces[:3])
    return shown + (f" and {len(pieces) - 3} more" if len(pieces) > 3 else "")


def changed_parts(old_parts: dict[str, str], new_parts: dict[str, str]) -> list[str]:
    """Labels (``function mod.name``) of the parts that differ, were added or were removed."""
    keys = [k for k in new_parts if old_parts.get(k) != new_parts[k]]
    keys += [k for k in old_parts if k not in new_parts]
    return [_label(k) for k in keys]


def check_policy(policy: str | None, where: str) -> str:
    """Validate a ``code_changes`` policy (None means the default)."""
    from .errors import ConfigurationError

    if policy is None:
        return DEFAULT_POLICY
    if policy not in POLICIES:
        raise ConfigurationError(
            f"{where}: code_changes is {policy!r}; use one of {', '.join(POLICIES)}"
        )
    return policy


def clear_cache() -> None:
    """Forget every computed fingerprint (e.g. after reloading modules in a notebook)."""
    _STAGE_CACHE.clear()
    _PART_CACHE.clear()
    _LOCAL_MODULES.clear()


# ---------------------------------------------------------------------------- computation

_STAGE_CACHE: dict[tuple[Any, str | None], StageFingerprint] = {}
_PART_CACHE: dict[int, tuple[Any, _Part | None]] = {}
_LOCAL_MODULES: dict[str, bool] = {}


@dataclass
class _Part:
    """One function, class or constant: its own digest and what it references."""

    key: str
    digest: str
    references: list[Any]
    """Project-local objects (and ``(module, name)`` constants) it uses."""
    libraries: set[str]
    """Top-level names of installed packages it uses."""


def _label(key: str) -> str:
    kind, _, name = key.partition(":")
    return f"{kind} {name}"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _compute_stage_fingerprint(function: Callable[..., Any], version: str | None) -> StageFingerprint:
    function = _unwrap(function)
    parts: dict[str, str] = {}
    libraries: set[str] = set()
    pending: list[Any] = [function]
    seen: set[int] = set()
    while pending:
        obj = pending.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        part = _part(obj)
        if part is None:
            continue
        parts[part.key] = part.digest
        libraries |= part.libraries
        pending.extend(part.references)
    versions = _library_versions(libraries)
    if version is not None:
        return StageFingerprint(_sha(f"version:{version}"), {}, str(version), versions)
    digest = _sha("\n".join(f"{k}={v}" for k, v in sorted(parts.items())))
    return StageFingerprint(digest, parts, None, versions)


def _unwrap(obj: Any) -> Any:
    while True:
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is None or not callable(wrapped):
            return obj
        obj = wrapped


def _part(obj: Any) -> _Part | None:
    cached = _PART_CACHE.get(id(obj))
    if cached is not None and cached[0] is obj:
        return cached[1]
    if isinstance(obj, _Constant):
        return obj.part()
    part = _code_part(obj) if isinstance(obj, (types.FunctionType, type)) else None
    _PART_CACHE[id(obj)] = (obj, part)
    return part


def _code_part(obj: Any) -> _Part | None:
    """A function's or class's normalised source and the names it uses."""
    kind = "class" if isinstance(obj, type) else "function"
    module_name = getattr(obj, "__module__", None) or "?"
    key = f"{kind}:{module_name}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"
    tree = _source_tree(obj)
    if tree is None:
        code = getattr(obj, "__code__", None)
        fallback = repr((code.co_code, code.co_consts, code.co_names)) if code else key
        return _Part(key, _sha(fallback), [], set())
    namespace = _namespace(obj)
    references: list[Any] = []
    libraries: set[str] = set()
    for chain in _name_chains(tree):
        _resolve(chain, namespace, module_name, references, libraries)
    return _Part(key, _sha(ast.dump(tree, annotate_fields=False, include_attributes=False)),
                 references, libraries)


def _source_tree(obj: Any) -> ast.AST | None:
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        module = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    if not module.body:
        return None
    node = module.body[0]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        node.decorator_list = []  # the stage declaration is the wiring, not the computation
    _strip_docstrings(node)
    return node


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]


def _name_chains(tree: ast.AST) -> list[list[str]]:
    """Every loaded name with the attribute names read from it: ``a.b.c`` -> ``[a, b, c]``."""
    chains: list[list[str]] = []
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            attributes: list[str] = []
            current: ast.AST = node
            while isinstance(current, ast.Attribute):
                attributes.append(current.attr)
                inner.add(id(current.value))
                current = current.value
            if isinstance(current, ast.Name):
                inner.add(id(current))
                chains.append([current.id, *reversed(attributes)])
        elif isinstance(node, ast.Name) and id(node) not in inner and isinstance(node.ctx, ast.Load):
            chains.append([node.id])
    return chains


def _namespace(obj: Any) -> dict[str, Any]:
    """Names visible to ``obj``'s code: closure cells, then its module's globals."""
    namespace: dict[str, Any] = {}
    if isinstance(obj, types.FunctionType):
        namespace.update(obj.__globals__)
        for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or (), strict=False):
            try:
                namespace[name] = cell.cell_contents
            except ValueError:  # an empty cell
                continue
    else:
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        namespace.update(vars(module) if module is not None else {})
    return namespace


def _resolve(
    chain: list[str],
    namespace: dict[str, Any],
    module_name: str,
    references: list[Any],
    libraries: set[str],
) -> None:
    """Follow ``a.b.c`` from ``namespace`` into project modules; note what it lands on."""
    if chain[0] not in namespace:
        return  # a local variable, a builtin, or a name defined later
    owner, name, obj = module_name, chain[0], namespace[chain[0]]
    for attribute in chain[1:]:
        if not (isinstance(obj, types.ModuleType) and is_project_module(obj.__name__)):
            break
        if not hasattr(obj, attribute):
            break
        owner, name, obj = obj.__name__, attribute, getattr(obj, attribute)
    _note(obj, owner, name, references, libraries)


def _note(obj: Any, owner: str, name: str, references: list[Any], libraries: set[str]) -> None:
    if isinstance(obj, types.ModuleType):
        if not is_project_module(obj.__name__):
            libraries.add(obj.__name__.split(".")[0])
        return
    if isinstance(obj, (types.FunctionType, type)) or callable(getattr(obj, "__wrapped__", None)):
        target = _unwrap(obj)
        target_module = getattr(target, "__module__", None) or ""
        if isinstance(target, (types.FunctionType, type)) and is_project_module(target_module):
            references.append(target)
        elif target_module:
            libraries.add(target_module.split(".")[0])
        return
    if callable(obj) and not is_project_module(getattr(obj, "__module__", None) or ""):
        module = getattr(obj, "__module__", None)
        if module:
            libraries.add(module.split(".")[0])
        return
    if is_project_module(owner):
        references.append(_Constant(owner, name, obj))
        value_type = type(obj)
        if is_project_module(value_type.__module__):
            references.append(value_type)
        elif value_type.__module__ != "builtins":
            libraries.add(value_type.__module__.split(".")[0])


class _Constant:
    """A module-level value a project function uses (``module.NAME``)."""

    def __init__(self, module: str, name: str, value: Any):
        self.module, self.name, self.value = module, name, value

    def part(self) -> _Part:
        return _Part(f"constant:{self.module}.{self.name}", _sha(_value_text(self.value)), [], set())


def _value_text(value: Any, depth: int = 0) -> str:
    """A stable text for a value: ``repr`` of plain data, else its type (reprs with ids vary)."""
    if depth > 20:
        return "..."
    if isinstance(value, _DATA_TYPES):
        return repr(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_value_text(v, depth + 1) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort()
        return f"{type(value).__name__}[{', '.join(items)}]"
    if isinstance(value, dict):
        items = [f"{_value_text(k, depth + 1)}: {_value_text(v, depth + 1)}" for k, v in value.items()]
        return "dict{" + ", ".join(items) + "}"
    text = repr(value)
    if " at 0x" in text or " object at " in text:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
    return text


# ---------------------------------------------------------------------------- project or library


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    import site

    for path in [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]:
        roots.add(os.path.realpath(path))
    roots.add(os.path.realpath(sys.base_prefix))
    roots.add(os.path.realpath(sys.prefix))
    return tuple(sorted(roots))


def is_project_module(module_name: str) -> bool:
    """Whether a module is part of the project (fingerprinted) rather than a library.

    Library modules are the standard library, builtins, anything installed in site-packages and
    curifactory_like itself; project modules are the others with a source file.
    """
    known = _LOCAL_MODULES.get(module_name)
    if known is not None:
        return known
    local = _is_project_module(module_name)
    _LOCAL_MODULES[module_name] = local
    return local


def _is_project_module(module_name: str) -> bool:
    top = module_name.split(".")[0]
    if not module_name or top == _FRAMEWORK or top in sys.stdlib_module_names:
        return False
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if not path:
        return module_name == "__main__"
    real = os.path.realpath(path)
    if "site-packages" in real.split(os.sep) or "dist-packages" in real.split(os.sep):
        return False
    return not any(real.startswith(root + os.sep) for root in _library_roots() if root != "/")


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib import metadata

    try:
        return dict(metadata.packages_distributions())
    except Exception:  # a broken installation must not break a run
        return {}


@functools.cache
def _package_version(top_level: str) -> str | None:
    """The installed version of an importable top-level package (None for the stdlib)."""
    from importlib import metadata

    if top_level in sys.stdlib_module_names or top_level == "builtins":
        return None
    try:  # the distribution is usually named like the package: cheap
        return metadata.version(top_level)
    except Exception:
        pass
    module = sys.modules.get(top_level)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    for distribution in _distributions().get(top_level, []):  # scans every installed package
        try:
            return metadata.version(distribution)
        except Exception:
            continue
    return None


def _library_versions(names: Iterable[str]) -> dict[str, str]:
    versions = {}
    for name in sorted(set(names)):
        if not name or name.startswith("_") and name not in sys.modules:
            continue
        version = _package_version(name)
        if version is not None:
            versions[name] = version
    return versions
