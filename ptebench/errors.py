"""Exceptions shared across rooms.

``UserError`` and its subclasses are mistakes in what the user gave (a config, a task file, a
name): the CLI prints their message and exits 2, without a traceback. Everything else is a bug
or an environment failure and keeps its traceback.
"""

from __future__ import annotations


class PtebenchError(Exception):
    """Base of ptebench's own exceptions."""


class UserError(PtebenchError):
    """Bad input from the user: the message names the file, the field and the fix."""


class ConfigError(UserError):
    """An experiment, task or model file that does not validate."""


class MissingExtra(UserError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this feature needs the optional package {module!r}: "
            f"pip install 'ptebench[{extra}]'"
        )


class ModelError(PtebenchError):
    """A model call failed for good (after retries, or a non-retryable provider error)."""


class ContextLengthError(ModelError):
    """The provider refused the request as longer than the model's context window."""


class SandboxError(PtebenchError):
    """The sandbox could not run what was asked (engine error, dead container, ...)."""


def require(module: str, extra: str) -> object:
    """Import an optional dependency or raise MissingExtra naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtra(module, extra) from e
