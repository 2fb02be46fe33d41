"""The `smmt` command: everything the GUI can do, headless (servers, clusters, scripts).

Each area registers its own sub-commands (see the `*_commands.py` modules beside this file), so
the data, model and training layers can grow their commands without touching one another.

Exit codes: 0 success, 1 the work ran but failed for a reason that is not the input's fault
(e.g. `TrainingError`: the loss diverged), 2 bad or unusable input or usage, including a file or
folder that cannot be read or written (one line on stderr naming the file and the problem, never
a traceback), 130 interrupted (Ctrl-C or SIGTERM).

Start-up: building the parser (and `smmt --help`, `smmt COMMAND --help`) imports only light
modules: the command modules, the settings declarations they read their flags from
(`smmt_core.train.config` and its sections, `demo_defaults`, `bench.attention_options`, ...),
never torch, scipy, scikit-learn, nilearn or pandas. Each command imports its implementation when
it runs (the imports inside the `_handler` functions are there for that reason only).
`tests/core/test_startup_imports.py` checks it; `benchmarks/cli_startup.py` measures it.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from contextlib import contextmanager

from smmt_core import __version__
from smmt_core.cli import (
    bench_commands,
    data_commands,
    demo_commands,
    experiment_commands,
    intake_commands,
    train_commands,
)
from smmt_core.cli.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NEGATIVE, EXIT_OK  # noqa: F401
from smmt_core.device import prefer_passive_openmp
from smmt_core.errors import SMMTError, TrainingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smmt",
        description=(
            "SMMT Studio command line: build the synthetic demo cohort, validate data, train SMMT "
            "and the 3MT baseline, predict for a subject, run experiment grids and benchmarks. "
            "Research use only; not a medical device."
        ),
    )
    parser.add_argument("--version", action="version", version=f"smmt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (demo_commands, data_commands, intake_commands, train_commands, experiment_commands, bench_commands):
        module.add_commands(sub)
    return parser


def os_error_line(error: OSError) -> str:
    """'PATH: Permission denied' rather than "[Errno 13] Permission denied: 'PATH'"; one line."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.filename is not None and error.filename2 is not None:
        text = f"{error.filename} -> {error.filename2}: {reason}"
    elif error.filename is not None:
        text = f"{error.filename}: {reason}"
    else:
        text = reason
    return " ".join(text.split())


@contextmanager
def _terminate_as_interrupt():
    """SIGTERM (`kill`, a scheduler ending a job) ends a command as Ctrl-C does, through its clean-up
    (temporary files and folders removed, a run labelled) and exit 130, rather than where it
    stands. Commands that handle signals themselves (training) install their own handlers inside."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL):
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    prefer_passive_openmp()  # before any command imports torch
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        with _terminate_as_interrupt():
            return int(args.handler(args) or 0)
    except TrainingError as error:
        print(f"smmt {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except SMMTError as error:
        print(f"smmt {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a file or folder the OS refused (permissions, disk full, read-only, ...)
        print(f"smmt {args.command}: error: {os_error_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"smmt {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def command(argv: list[str] | None = None) -> int:
    """The `smmt` program: `main`, then what is left is frozen so that the interpreter's exit does not
    collect it object by object (torch's objects once a model was loaded: about 0.6-0.9 s of a
    fresh `smmt predict`, measured). Only for a process that ends next: `main` stays plain for
    callers that go on (tests, scripts)."""
    code = main(argv)
    gc.freeze()
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(command())
