"""`smmt-gui [PATH] [--model RUN] [--screenshot FILE.png]`: start SMMT Studio.

PATH (a subject folder, a single T1 file or a dataset folder) and RUN (a run folder) are opened
on worker threads as if the user had dropped / chosen them. With --screenshot the window is
rendered once every job has finished, saved as a PNG and the app exits (docs and checks use it);
the exit code is non-zero when something failed to load or the image could not be written.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path

from smmt_core.device import prefer_passive_openmp
from smmt_gui import strings
from smmt_gui.memory import freeze_long_lived

SCREENSHOT_TIMEOUT_S = 300
CLOSE_TIMEOUT_S = 120  # after the screenshot: how long to let still-running jobs stop before exiting


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smmt-gui",
        description=f"{strings.APP_NAME}: see and test SMMT models on T1 MRI and clinical data. "
                    f"{strings.RESEARCH_BADGE}.",
    )
    parser.add_argument("path", nargs="?", help="subject folder, T1 image file or dataset folder to open")
    parser.add_argument("--model", metavar="RUN", help="run folder of a trained model to load")
    parser.add_argument("--screenshot", metavar="FILE.png", help="save a PNG of the window once loaded, then exit")
    parser.add_argument("--size", default="1500x900", help="window size WxH (default 1500x900)")
    parser.add_argument("--tab", choices=("viewer", "training", "robustness"), default="viewer",
                        help="tab to show (mostly for --screenshot)")
    parser.add_argument("--no-runs", action="store_true", help="do not load the newest model from the runs folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    return parser


def _style_sheet() -> str:
    path = Path(__file__).parent / "resources" / "style.qss"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


SPLASH_SIZE = (460, 250)


class Splash:
    """A small window with the app's icon and name, shown within a moment of launch, before the
    heavy imports (pyqtgraph, the window's panels): the main window takes seconds to build on a busy
    machine, and a black screen for that long reads as a crash. Needs only PySide6."""

    def __init__(self):
        from PySide6.QtCore import QRect, Qt
        from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
        from PySide6.QtWidgets import QApplication, QSplashScreen

        from smmt_gui.widgets import window_icon

        self.app = QApplication.instance() or QApplication([sys.argv[0]])
        self.alignment = Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter
        self.colour = QColor(230, 230, 230)
        width, height = SPLASH_SIZE
        pixmap = QPixmap(width, height)
        pixmap.fill(QColor(30, 32, 38))
        painter = QPainter(pixmap)
        icon = window_icon()
        if icon is not None:
            painter.drawPixmap(24, 40, icon.pixmap(128, 128))
        painter.setPen(self.colour)
        title = QFont()
        title.setPointSize(20)
        title.setBold(True)
        painter.setFont(title)
        painter.drawText(QRect(170, 60, width - 180, 40), Qt.AlignmentFlag.AlignLeft, strings.APP_NAME)
        small = QFont()
        small.setPointSize(9)
        painter.setFont(small)
        painter.drawText(QRect(170, 105, width - 180, 60), Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap,
                         strings.RESEARCH_BADGE)
        painter.end()
        self.screen = QSplashScreen(pixmap)
        self.screen.show()
        self.say(strings.SPLASH_STARTING)

    def say(self, message: str) -> None:
        self.screen.showMessage(message, self.alignment, self.colour)
        self.app.processEvents()

    def finish(self, window) -> None:
        self.screen.finish(window)


class StartupTrace:
    """With $SMMT_GUI_STARTUP_TRACE set to a file: the wall-clock times (time.time()) at which the
    splash and the window were shown and the window first answered events ("usable": its event loop
    has run once), one line each; then the app quits. benchmarks/gui_startup.py reads it. Without
    the variable it does nothing."""

    ENV = "SMMT_GUI_STARTUP_TRACE"

    def __init__(self, path: Path | None):
        self.path = path

    @classmethod
    def from_environment(cls) -> "StartupTrace":
        import os

        value = os.environ.get(cls.ENV)
        return cls(Path(value) if value else None)

    def mark(self, event: str) -> None:
        import time

        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(f"{event} {time.time():.6f}\n")

    def when_usable(self, app) -> None:
        if self.path is None:
            return
        from PySide6.QtCore import QTimer

        def usable() -> None:
            self.mark("usable")
            app.closeAllWindows()
            app.quit()

        QTimer.singleShot(0, usable)


def create_app(argv: list[str] | None = None):
    """The QApplication with SMMT Studio's names, icon, style and plot options (reuses a running
    one; benchmarks build theirs here too, so that they draw what the app draws)."""
    import pyqtgraph as pg
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from smmt_gui.widgets import window_icon

    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    QCoreApplication.setOrganizationName(strings.ORGANISATION)
    QCoreApplication.setApplicationName(strings.APP_ID)
    # No application display name: Qt would append it to every window title, and the main
    # window's title already starts with the app's name.
    QGuiApplication.setDesktopFileName(strings.APP_ID)
    icon = window_icon()
    if icon is not None:
        app.setWindowIcon(icon)
    app.setStyleSheet(_style_sheet())
    pg.setConfigOptions(antialias=True)
    return app


def run(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QEventLoop

    trace = StartupTrace.from_environment()
    splash = None if args.screenshot else Splash()
    trace.mark("splash")
    app = create_app()
    if splash is not None:
        splash.say(strings.SPLASH_WINDOW)
    from smmt_gui.main_window import MainWindow

    window = MainWindow(scan_runs=not (args.no_runs or args.model))
    if args.size:
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
            window.resize(width, height)
        except ValueError:
            print(f"smmt-gui: error: --size must look like 1500x900, got {args.size!r}", file=sys.stderr)
            return 2
    window.tabs.setCurrentIndex({"viewer": 0, "training": 1, "robustness": 2}[args.tab])
    errors: list[str] = []
    if args.screenshot:
        original = window.show_error

        def remember(message: str) -> None:
            errors.append(message)
            original(message)

        window.show_error = remember  # record load errors for the exit code
    if args.model:
        window.load_model(args.model)
    if args.path:
        # open the data once the model (if any) is in, so the first view is already a prediction
        if args.model and window.is_busy():
            loop = QEventLoop()
            window.idle.connect(loop.quit)
            loop.exec()
        window.open_path(args.path)
    window.show()
    if splash is not None:
        splash.finish(window)
    trace.mark("window")
    freeze_long_lived()  # modules, widgets: full garbage collections skip them from now on
    if not args.screenshot:
        trace.when_usable(app)
        code = app.exec()
        _dispose(window, app)
        return code
    return _screenshot(app, window, Path(args.screenshot), errors)


def _screenshot(app, window, target: Path, errors: list[str]) -> int:
    import time

    from PySide6.QtCore import QEventLoop

    deadline = time.monotonic() + SCREENSHOT_TIMEOUT_S
    quiet_since = None
    while time.monotonic() < deadline:  # wait until nothing has run for a short while
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if window.is_busy():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.5:
            break
        time.sleep(0.02)
    else:
        print(f"smmt-gui: error: still loading after {SCREENSHOT_TIMEOUT_S} s", file=sys.stderr)
    for _ in range(5):
        app.processEvents()
    ok = _save_png(window.grab().toImage(), target)
    _close(app, window, time.monotonic() + CLOSE_TIMEOUT_S)
    _dispose(window, app)
    if not ok:
        print(f"smmt-gui: error: could not write {target}", file=sys.stderr)
        return 2
    print(f"smmt-gui: saved {target}")
    for message in errors:
        print(f"smmt-gui: {message}", file=sys.stderr)
    return 1 if errors else 0


def _save_png(image, target: Path) -> bool:
    """Write `image` to `target` as a PNG, atomically (never a truncated file); False on failure."""
    from smmt_core.fileio import atomic_write

    def write(tmp: Path) -> None:
        if not image.save(str(tmp), "PNG"):  # the format explicitly: the temp name ends in .tmp
            raise OSError(f"Qt could not write a PNG to {tmp}")

    try:
        atomic_write(target, write)
    except OSError as error:
        print(f"smmt-gui: {error}", file=sys.stderr)
        return False
    return True


def _close(app, window, deadline: float) -> None:
    """Close the window; if a job still has to stop, keep the event loop running until it has."""
    import time

    from PySide6.QtCore import QEventLoop

    if window.close():
        return
    while not window.is_closed() and time.monotonic() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.02)


def _dispose(window, app) -> None:
    """Delete the window while Qt and Python are both alive (avoids teardown-order crashes), then
    freeze what is left: the interpreter's exit skips collecting it (torch's objects, once a model
    was loaded, took 2-3 s). Settings are saved and every job has ended by now."""
    window.deleteLater()
    app.processEvents()
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    import multiprocessing

    prefer_passive_openmp()  # before torch loads; the training process inherits it
    multiprocessing.freeze_support()  # a frozen (PyInstaller) app can spawn its training process
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
