"""The optional engines behind the ray and slurm backends, imported only when a backend is made."""

from __future__ import annotations

import importlib

from smmt_core.errors import ConfigError


def require(module: str, extra: str):
    """Import an optional engine, or say which extra installs it (ConfigError)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"the {extra} backend needs {module}, which is not installed; "
                          f"pip install \"smmt-studio[{extra}]\"") from None
