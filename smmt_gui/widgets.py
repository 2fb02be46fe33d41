"""Small widgets of the main window that hold no state of the session, and the app's icon.

`MessageBar`: the dismissable line at the top of the window where errors and notices go (never a
modal dialog that would block a drop). `WelcomePage`: what the Viewer tab shows before anything is
open. `window_icon`: the app icon from the repository's resources or the PyInstaller bundle.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from smmt_gui import strings


class ElidedLabel(QLabel):
    """One line of text that ends in "…" where the row is too narrow for it (instead of being cut
    mid-letter), with the whole text in its tooltip above `tip`. text() is the whole text."""

    def __init__(self, tip: str = "", parent=None):
        super().__init__(parent)
        self._whole, self._tip = "", tip
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setToolTip(tip)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        self._whole = text
        self.setToolTip(f"{text}\n\n{self._tip}" if text and self._tip else (text or self._tip))
        self._elide()

    def text(self) -> str:
        return self._whole

    def is_elided(self) -> bool:
        return super().text() != self._whole

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        super().setText(self.fontMetrics().elidedText(self._whole, Qt.TextElideMode.ElideRight, max(self.width(), 0)))


class MessageBar(QWidget):
    """A dismissable one-line message at the top of the window (errors and notices)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("messageBar")
        # A plain QWidget ignores a style sheet's background unless told to paint it.
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                           | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.label.setOpenExternalLinks(True)  # the export notice links to the report's folder
        close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(28)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str, error: bool = True, rich: bool = False) -> None:
        """Show `text` (plain text, so a path with '<' stays readable; `rich` for our own links)."""
        self.setProperty("error", error)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def link(self) -> str:
        """The first link in the message ("" when there is none)."""
        match = re.search(r'href="([^"]+)"', self.label.text()) if self.isVisible() else None
        return html.unescape(match.group(1)) if match else ""


class WelcomePage(QWidget):
    """What the Viewer tab shows before anything is open: the demo and training offers."""

    def __init__(self, parent=None):
        super().__init__(parent)
        title = QLabel(strings.WELCOME_TITLE)
        title.setObjectName("welcomeTitle")
        text = QLabel(strings.WELCOME_TEXT)
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.demo_button = QPushButton(strings.WELCOME_DEMO_BUTTON)
        self.train_button = QPushButton(strings.WELCOME_TRAIN_BUTTON)
        for button in (self.demo_button, self.train_button):
            button.setMinimumHeight(36)
            button.setMinimumWidth(220)
        hint = QLabel(strings.DROP_HINT)
        hint.setObjectName("dropHint")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.demo_button)
        buttons.addWidget(self.train_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(title, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(text)
        layout.addSpacing(12)
        layout.addLayout(buttons)
        layout.addSpacing(24)
        layout.addWidget(hint)
        layout.addStretch(3)



def icon_folders() -> list[Path]:
    """Where the app icon can be: the repository's resources/ (source checkout, editable install)
    or the PyInstaller bundle's copy of it."""
    folders = [Path(__file__).resolve().parents[1] / "resources" / "icons"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        folders.append(Path(bundle) / "resources" / "icons")
    return folders


def window_icon() -> QIcon | None:
    """The app icon at every size found (hicolor PNGs + SVG), or None when it is not installed."""
    icon = QIcon()
    for folder in icon_folders():
        for path in sorted(folder.glob("hicolor/*/apps/smmt-studio.png")) + sorted(folder.glob("*.svg")):
            icon.addFile(str(path))
    return None if icon.isNull() else icon
