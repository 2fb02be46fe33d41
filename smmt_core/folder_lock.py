"""One writer per folder: a second process that wants to write a folder already being written is
refused with a message naming the folder and the first writer.

Why: two writers of one folder (two `smmt experiment --out X` with different settings, two
`smmt demo-data X`, two resumptions of one run) each believe the folder is theirs; what remains
mixes both or is the last one's, and both report success.

How: an advisory `flock` on a hidden lock file beside the folder, `.<name>.lock`. Beside, not
inside: a folder that is built elsewhere and renamed into place (the demo cohort) does not exist
while it is being written, and a finished folder keeps no trace of its lock. The kernel drops a
flock when its process ends, however it ends (SIGKILL, a crash), so a dead writer never leaves a
folder locked. The lock file names its holder (pid, host, command, start time) for the message.
The holder removes the file before it unlocks; a process that locked a file removed meanwhile
tries again on the new one, so two processes never both hold a lock on one folder.

A flock belongs to one open file, not to a process: a second lock of the same folder is refused
even within the process that holds the first. A holder's own child processes write other folders
(an experiment's cells are run folders inside it, each locked by the process that trains it), so
they never meet their parent's lock. Works where flock works: local disks, and NFS (where Linux
maps it onto NFS locks).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from smmt_core.errors import ConfigError, SMMTError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; folders are not locked there
    fcntl = None

POLL_S = 0.2  # how often a waiting writer looks again


class FolderInUse(SMMTError):
    """Another process (or another part of this one) is writing the folder."""


def lock_path(folder: str | Path) -> Path:
    """The lock file of `folder`: `.<name>.lock` in its parent."""
    folder = Path(folder).expanduser().absolute()
    return folder.parent / f".{folder.name}.lock"


def _command() -> str:
    args = list(sys.argv)
    if args and Path(args[0]).name in ("smmt", "__main__.py"):
        args[0] = "smmt"
    elif args and args[0] == "-c":
        args[0] = "python -c"
    return " ".join(args)[:300]


def _holder_text() -> bytes:
    import psutil

    started = datetime.fromtimestamp(psutil.Process().create_time(), timezone.utc).isoformat(timespec="seconds")
    return (json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": _command(),
                        "started": started}) + "\n").encode()


def read_holder(folder: str | Path) -> dict:
    """What the lock file of `folder` says about its holder ({} when absent or unreadable)."""
    try:
        data = json.loads(lock_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_holder(holder: dict) -> str:
    """'process 123 on host (smmt experiment ..., since 2026-12-07T19:41:00+00:00)'."""
    if not holder:
        return "another process"
    text = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
    details = [f"`{holder['command']}`" if holder.get("command") else "",
               f"since {holder['started']}" if holder.get("started") else ""]
    details = [d for d in details if d]
    return text + (f" ({', '.join(details)})" if details else "")


class FolderLock:
    """The lock on one folder while this process writes it; a context manager.
    `release()` (or leaving the `with` block) gives it back; releasing twice is harmless."""

    def __init__(self, folder: Path, fd: int | None):
        self.folder, self._fd = folder, fd
        self._pid = os.getpid()  # a forked child (a data-loader worker) shares the lock but never releases it

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None or os.getpid() != self._pid:
            return
        try:
            lock_path(self.folder).unlink(missing_ok=True)  # removed while still held: see the module docstring
        except OSError:
            pass
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)  # also for forked children that share the open file
            finally:
                os.close(fd)

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):  # a lock dropped without release (an exception in its owner's set-up)
        try:
            self.release()
        except Exception:
            pass


def _try_lock(path: Path) -> int | None:
    """An open, locked descriptor of the lock file at `path`, or None when another holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            now = os.stat(path)
            mine = os.fstat(fd)
            if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder removed this file before unlocking it: lock the new one


def lock_folder(folder: str | Path, what: str = "folder", *, wait: bool = False,
                stop: threading.Event | None = None) -> FolderLock:
    """Lock `folder` (which need not exist yet) for this process, or raise FolderInUse naming the
    folder and its holder. `wait`: wait until the holder is done instead (for callers that only
    need the folder finished by someone, such as the app's default demo cohort); setting `stop`
    ends the wait with FolderInUse. ConfigError naming the folder when no lock file can be made
    beside it (a read-only or missing parent that cannot be created)."""
    folder = Path(folder).expanduser().absolute()
    if fcntl is None:  # pragma: no cover
        return FolderLock(folder, None)
    path = lock_path(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _try_lock(path)
        while fd is None and wait and not (stop is not None and stop.is_set()):
            if stop is not None:
                stop.wait(POLL_S)
            else:
                time.sleep(POLL_S)
            fd = _try_lock(path)
    except OSError as error:
        raise ConfigError(f"cannot lock the {what} for writing ({error.strerror or error})", folder) from None
    if fd is None:
        raise FolderInUse(f"the {what} is being written by {describe_holder(read_holder(folder))}; "
                          "wait for it to finish or choose another folder", folder)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_text(), 0)
    except OSError:
        pass  # the lock holds without its description; a refused writer then reads "another process"
    return FolderLock(folder, fd)
