"""The exceptions SMMT Studio raises on purpose: one base type, `SMMTError`, for every problem the
user can act on (their input, or a run that failed on its own, `TrainingError`).

The CLI prints `str(error)` as a single line and exits non-zero (2 for bad input, 1 for a
TrainingError, which is not the input's fault); the GUI shows it in a message.
Always name the file and the problem, so the user knows what to fix.
"""

from __future__ import annotations

from pathlib import Path


class SMMTError(Exception):
    """A problem with user input (a file, a folder, a column, a checkpoint, a setting)."""

    def __init__(self, problem: str, path: str | Path | None = None):
        problem = " ".join(str(problem).split())  # one line, whatever a library put in its message
        self.problem = problem
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class DataError(SMMTError):
    """Unreadable, malformed or unusable data (images, tables, layouts)."""


class CheckpointError(SMMTError):
    """A checkpoint that is missing, corrupt or does not match the data or model."""


class ConfigError(SMMTError):
    """An invalid setting (unknown variant, fraction outside (0, 1], ...)."""


class TrainingError(SMMTError):
    """Training ran but failed for a reason that is not the input's fault (e.g. the loss diverged).

    Kept apart from input errors so that callers can tell "fix your data or settings" from "the
    run itself went wrong": the CLI exits 1 for it, 2 for other SMMTErrors.
    """


def reject_unknown_keys(data: dict, known, what: str = "config") -> None:
    """ConfigError listing the keys of `data` that are not in `known` (a stored or typed config)."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown {what} keys: {', '.join(unknown)}")
