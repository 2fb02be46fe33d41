"""File writing and reading guarded against faults: used for every file SMMT Studio writes or parses.

Writing is atomic (runs, caches, tables, plots, reports): a reader (or a crash) sees either the old
file or the complete new one, never half of it: the content goes to a temporary file beside the
target, then `os.replace` renames it into place.

An interrupt (Ctrl-C, the app's abort, which arrives the same way, or SIGTERM from `kill` or a
scheduler) waits until a write is done or undone: otherwise it could land between the creation of
the temporary file and its rename or removal and leave the temporary file behind (seen once in a
test of the app's abort).

Reading (`read_json`, `read_table`) is bounded: every JSON/CSV/TSV the project reads either loads
or raises the caller's SMMTError naming the file, whatever the bytes.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
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


DEFERRED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


@contextmanager
def interrupts_deferred():
    """SIGINT or SIGTERM received inside the block is handled when the block ends, as it would
    have been (the handler set before, or the default action: SIGTERM's ends the process). Main
    thread only; other threads never receive signals in Python, so there is nothing to defer there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[tuple[int, object]] = []
    previous = {}
    try:
        for signum in DEFERRED_SIGNALS:
            if signal.getsignal(signum) is None:  # a handler set outside Python, which could not be put back
                continue
            previous[signum] = signal.signal(signum, lambda number, frame: received.append((number, frame)))
    except ValueError:  # not the main interpreter: signals are not ours to handle
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in dict(received).items():  # each signal once, in the order of arrival
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


def temporary_sibling(path: Path, suffix: str = ".tmp") -> Path:
    """An empty, uniquely named hidden file in the target's folder (same file system: rename works)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def atomic_write(path: str | Path, write: Callable[[Path], None], *, suffix: str = ".tmp") -> Path:
    """Call `write(temporary_path)`, then move the result onto `path`; on any error remove the temp."""
    path = Path(path)
    with interrupts_deferred():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_sibling(path, suffix)
        except OSError as error:
            raise _naming(error, path) from None
        try:
            write(tmp)
            os.chmod(tmp, new_file_mode())
            os.replace(tmp, path)
        except OSError as error:  # disk full, quota, permissions: name the file the user asked for
            tmp.unlink(missing_ok=True)
            raise _naming(error, path) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def _naming(error: OSError, path: Path) -> OSError:
    """The same error (errno and reason) naming `path` rather than a temporary file or nothing:
    "No space left on device" alone does not tell the user which file could not be written."""
    named = OSError(error.errno, error.strerror or str(error), str(path))
    return named


def check_writable(path: str | Path, what: str = "output file") -> Path:
    """ConfigError naming `path` unless a file can be written there; run before long work so that
    an unwritable output fails at once, not after it (nothing is left behind)."""
    from smmt_core.errors import ConfigError

    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what} is a folder; give a file name", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary_sibling(path, ".check").unlink()
    except OSError as error:
        raise ConfigError(f"cannot write the {what} here ({error.strerror or error})", path) from None
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
    with interrupts_deferred():
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


# -- guarded reading -----------------------------------------------------------------------------
# Every JSON/CSV/TSV SMMT Studio reads goes through `read_json` or `read_table`, so that a hostile
# or broken file (nested 100,000 levels deep, a 5,000-digit number, gigabytes, binary junk) ends as
# the project's own error naming the file, never a RecursionError, MemoryError or a traceback.

MAX_JSON_BYTES = 64 * 1024 * 1024  # a run's JSON is kilobytes; a clinical record far less
MAX_TABLE_BYTES = 512 * 1024 * 1024  # ADNIMERGE is ~20 MB
# ADNIMERGE, the longest table a cohort comes with, has ~16,000 rows (visits); a table much longer
# than that is not a cohort, and every row would become a subject (a million took 30 GB to train).
MAX_TABLE_ROWS = 100_000
MAX_JSON_DEPTH = 64  # the deepest file we write nests about 8 levels
MAX_INT_DIGITS = 40  # larger than any count or seed; far below Python's 4300-digit limit


class _JSONLimit(Exception):
    """A limit hit while decoding (raised from a json.loads hook, turned into the caller's error)."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _JSONLimit(f"holds an integer with {digits} digits (at most {MAX_INT_DIGITS} are accepted)")
    return int(text)


def _depth_problem(data, limit: int) -> str | None:
    """'nested more than N levels deep' when `data` is, else None (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return f"is nested more than {limit} levels deep"
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return None


def _check_size(path: Path, limit: int, what: str, error: type[Exception]) -> None:
    size = path.stat().st_size
    if size > limit:
        raise error(f"{what} is too large ({size / 2**20:.0f} MiB; at most {limit / 2**20:.0f} MiB are read)", path)


def read_regular_bytes(path: str | Path, what: str = "file", *, error: type[Exception] | None = None,
                       max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, or `error` (default DataError) naming it. A FIFO, a device or
    a socket in a file's place is refused without reading it: reading one waits forever for a
    writer (a FIFO) or never ends (/dev/zero). Opened without blocking, then checked, then read.
    FileNotFoundError passes through for callers that word it themselves."""
    import stat

    from smmt_core.errors import DataError

    error = error or DataError
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{what} is a folder, not a file", path)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} is not a regular file (a pipe, device or socket); it is not read", path)
        if max_bytes is not None and info.st_size > max_bytes:
            raise error(f"{what} is too large ({info.st_size / 2**20:.0f} MiB; at most {max_bytes / 2**20:.0f} MiB "
                        "are read)", path)
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    finally:
        os.close(fd)


def check_regular_file(path: str | Path, what: str, error: type[Exception]) -> None:
    """`error` naming `path` when it exists and is not a regular file (see `read_regular_bytes`)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the caller's read says so in its own words
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise error(f"{what} is not a regular file (a pipe, device or socket); it is not read", Path(path))


def read_json(path: str | Path, what: str = "file", *, error: type[Exception] | None = None,
              max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> dict:
    """A JSON object from `path`, or `error` (default DataError) naming the file and the problem.

    Refused: a missing or unreadable file, a file over `max_bytes`, text that is not UTF-8 JSON,
    anything but an object at the top, nesting deeper than `max_depth`, integers longer than
    MAX_INT_DIGITS. NaN and Infinity (which Python writes) are read as floats; the caller decides.
    """
    from smmt_core.errors import DataError

    error = error or DataError
    path = Path(path)
    try:
        raw = read_regular_bytes(path, what, error=error, max_bytes=max_bytes)
    except FileNotFoundError:
        raise error(f"{what} is missing", path) from None
    except IsADirectoryError:
        raise error(f"{what} is a folder, not a file", path) from None
    except OSError as problem:
        raise error(f"{what} cannot be read ({problem.strerror or problem})", path) from None
    return parse_json(raw, what, path, error=error, max_depth=max_depth)


def parse_json(raw: bytes, what: str, path: str | Path | None, *, error: type[Exception] | None = None,
               max_depth: int = MAX_JSON_DEPTH) -> dict:
    """A JSON object from bytes already read (e.g. the header of a weights file), with `read_json`'s
    limits on nesting and integers; `error` naming `path` otherwise."""
    from smmt_core.errors import DataError

    error = error or DataError
    try:
        text = raw.decode("utf-8-sig")
        data = json.loads(text, parse_int=_parse_int)
    except _JSONLimit as problem:
        raise error(f"{what} {problem}", path) from None
    except RecursionError:
        raise error(f"{what} is nested more than {max_depth} levels deep", path) from None
    except UnicodeDecodeError as problem:
        raise error(f"{what} is not UTF-8 text (byte {problem.start})", path) from None
    except json.JSONDecodeError as problem:
        raise error(f"{what} is not valid JSON ({problem.msg} at line {problem.lineno}, column {problem.colno})",
                    path) from None
    except ValueError as problem:  # e.g. a number Python will not convert
        raise error(f"{what} is not valid JSON ({' '.join(str(problem).split())[:200]})", path) from None
    if not isinstance(data, dict):
        raise error(f"{what}: expected a JSON object ({{...}}), found a {type(data).__name__}", path)
    depth = _depth_problem(data, max_depth)
    if depth:
        raise error(f"{what} {depth}", path)
    return data


def read_table(path: str | Path, what: str = "table", *, error: type[Exception] | None = None,
               sep: str | None = None, as_strings: bool = True, max_bytes: int = MAX_TABLE_BYTES,
               max_rows: int | None = None):
    """A CSV/TSV as a DataFrame, or `error` (default DataError) naming the file and the problem.

    At most `max_rows` data rows (default MAX_TABLE_ROWS): pandas stops one row past the limit, so
    an absurdly long table costs no more than a long one before it is refused.

    `as_strings`: every cell a string, nothing guessed or turned into NaN (clinical tables, where
    the loaders parse each value themselves); otherwise pandas' usual types (our own tables).
    A row with more fields than the header is refused (it would silently become an index).
    """
    import warnings

    import pandas as pd

    from smmt_core.errors import DataError

    error = error or DataError
    max_rows = MAX_TABLE_ROWS if max_rows is None else max_rows
    path = Path(path)
    if sep is None:
        sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    options = dict(dtype=str, keep_default_na=False, na_filter=False) if as_strings else {}
    check_regular_file(path, what, error)
    try:
        _check_size(path, max_bytes, what, error)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", index_col=False, nrows=max_rows + 1, **options)
    except pd.errors.ParserWarning:
        raise error(f"{what}: {_first_ragged_line(path, sep)} has more fields than the header", path) from None
    except FileNotFoundError:
        raise error(f"{what} is missing", path) from None
    except IsADirectoryError:
        raise error(f"{what} is a folder, not a file", path) from None
    except pd.errors.EmptyDataError:
        raise error(f"{what} is empty", path) from None
    except OSError as problem:
        raise error(f"{what} cannot be read ({problem.strerror or problem})", path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OverflowError, MemoryError,
            RecursionError) as problem:
        first = " ".join(str(problem).split())[:200] or type(problem).__name__
        raise error(f"cannot read the {what}: {first}", path) from None
    if len(frame) > max_rows:
        raise error(f"{what} has more than {max_rows:,} rows; a table this long is not a cohort "
                    f"(split it, or keep the rows of the subjects you have images or scores for)", path)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _first_ragged_line(path: Path, sep: str) -> str:
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            rows = csv.reader(handle, delimiter=sep)
            width = len(next(rows, []))
            for number, row in enumerate(rows, start=2):
                if len(row) > width:
                    return f"line {number}"
    except (OSError, csv.Error):
        pass
    return "a line"


def hash_file_into(digest, path: str | Path, what: str = "file") -> None:
    """Feed a file's bytes into a hashlib object in 1 MiB chunks; DataError naming it when unreadable."""
    from smmt_core.errors import DataError

    check_regular_file(path, what, DataError)
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"cannot read {what} ({exc.strerror or exc})", path) from None
