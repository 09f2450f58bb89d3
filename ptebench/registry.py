"""One registry for every pluggable component.

Components register themselves with ``@register(kind, name)``. Three sources are searched,
in order, when a name is looked up:

1. the built-in modules of the kind (imported lazily, so optional extras stay optional);
2. the ``ptebench`` entry-point group, whose entries are named ``<kind>.<name>`` and point at
   ``module:object`` (another package's ``pyproject.toml`` declares them);
3. a dotted import path, ``package.module:object`` or ``package.module.object``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Generator
from contextlib import contextmanager
from importlib import metadata
from typing import Any, Literal, TypeVar, get_args

from ptebench.errors import UserError

Kind = Literal["model", "scaffold", "task", "sandbox"]
KINDS: tuple[str, ...] = get_args(Kind)

T = TypeVar("T")

_REGISTRY: dict[str, dict[str, Any]] = {k: {} for k in KINDS}

# Modules that register the built-in components of each kind (imported on first lookup).
_BUILTINS: dict[str, tuple[str, ...]] = {
    "model": ("ptebench.models",),
    "scaffold": ("ptebench.scaffolds",),
    "task": ("ptebench.tasks",),
    "sandbox": ("ptebench.sandbox",),
}
_loaded: set[str] = set()


class UnknownComponent(UserError):
    """A name that no built-in, entry point or import path provides."""


def register(kind: Kind, name: str) -> Callable[[T], T]:
    """Register ``obj`` under ``(kind, name)``; registering a different object twice is an error."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; expected one of {KINDS}")

    def deco(obj: T) -> T:
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing is not obj:
            qual = getattr(existing, "__qualname__", existing)
            raise ValueError(f"{kind} {name!r} is already registered (by {qual})")
        _REGISTRY[kind][name] = obj
        return obj

    return deco


@contextmanager
def isolated() -> Generator[None]:
    """Undo, on exit, every registration made inside (plugins a test registers must not
    outlive it: a later ``scaffolds list`` in the same process would meet them)."""
    saved = {k: dict(v) for k, v in _REGISTRY.items()}
    try:
        yield
    finally:
        for k, v in saved.items():
            _REGISTRY[k].clear()
            _REGISTRY[k].update(v)


def _load_builtins(kind: str) -> None:
    if kind in _loaded:
        return
    _loaded.add(kind)
    for mod in _BUILTINS[kind]:
        importlib.import_module(mod)


def _entry_points(kind: str) -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group="ptebench"):
        k, _, n = ep.name.partition(".")
        if k == kind and n:
            found[n] = ep
    return found


def _import_path(path: str) -> Any:
    if ":" in path:
        mod_name, _, attr = path.partition(":")
    else:
        mod_name, _, attr = path.rpartition(".")
    if not mod_name or not attr:
        raise ImportError(f"{path!r} is not a dotted path")
    obj: Any = importlib.import_module(mod_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def get(kind: Kind, name: str) -> Any:
    """Return the component registered as ``(kind, name)``.

    Raises:
        UnknownComponent: no built-in, entry point or importable dotted path matches,
            with the accepted names listed.
    """
    _load_builtins(kind)
    if name in _REGISTRY[kind]:
        return _REGISTRY[kind][name]
    eps = _entry_points(kind)
    if name in eps:
        obj = eps[name].load()
        _REGISTRY[kind].setdefault(name, obj)
        return obj
    if "." in name or ":" in name:
        try:
            return _import_path(name)
        except (ImportError, AttributeError) as e:
            raise UnknownComponent(f"cannot import {kind} {name!r}: {e}") from e
    raise UnknownComponent(
        f"unknown {kind} {name!r}; accepted: {', '.join(names(kind)) or '(none)'}"
        " (or a dotted import path like 'mypkg.module:Class')"
    )


def names(kind: Kind) -> list[str]:
    """All names of ``kind``: built-ins plus entry points, sorted."""
    _load_builtins(kind)
    return sorted(set(_REGISTRY[kind]) | set(_entry_points(kind)))


def items(kind: Kind) -> list[tuple[str, Any]]:
    """(name, object) for every component of ``kind``, entry points loaded."""
    return [(n, get(kind, n)) for n in names(kind)]
