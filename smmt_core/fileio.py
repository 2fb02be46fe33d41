"""Atomic file writing, used for every file SMMT Studio writes (runs, caches, tables, plots, reports).

A reader (or a crash) sees either the old file or the complete new one, never half of it: the
content goes to a temporary file beside the target, then `os.replace` renames it into place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def new_file_mode() -> int:
    """Permissions of an ordinary new file (0o666 less the umask); mkstemp alone would give 0o600."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)  # no /proc (macOS, Windows): read the umask by setting it back
    os.umask(umask)
    return 0o666 & ~umask


def temporary_sibling(path: Path, suffix: str = ".tmp") -> Path:
    """An empty, uniquely named hidden file in the target's folder (same file system: rename works)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def atomic_write(path: str | Path, write: Callable[[Path], None], *, suffix: str = ".tmp") -> Path:
    """Call `write(temporary_path)`, then move the result onto `path`; on any error remove the temp."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, suffix)
    try:
        write(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    return atomic_write(path, write)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_all_or_nothing(jobs: list[tuple[Path, Callable[[Path], None]]]) -> list[Path]:
    """Write every (target, write) pair to a temporary file beside its target, then rename them all.

    For a set of files that belong together (a report): when one write fails, every temporary
    file is removed and no target is touched.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for target, write in jobs:
            target = Path(target)
            tmp = temporary_sibling(target, ".part")
            temps.append((tmp, target))
            write(tmp)
        mode = new_file_mode()  # temporary files are private; the written files are ordinary documents
        for tmp, target in temps:
            os.chmod(tmp, mode)
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    return [target for _, target in temps]
