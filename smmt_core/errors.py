"""One exception type for every problem a user can cause with their input.

The CLI prints `str(error)` as a single line and exits non-zero; the GUI shows it in a message.
Always name the file and the problem, so the user knows what to fix.
"""

from __future__ import annotations

from pathlib import Path


class SMMTError(Exception):
    """A problem with user input (a file, a folder, a column, a checkpoint, a setting)."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.problem = problem
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class DataError(SMMTError):
    """Unreadable, malformed or unusable data (images, tables, layouts)."""


class CheckpointError(SMMTError):
    """A checkpoint that is missing, corrupt or does not match the data or model."""


class ConfigError(SMMTError):
    """An invalid setting (unknown variant, fraction outside (0, 1], ...)."""
