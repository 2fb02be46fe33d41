"""What SMMT Studio remembers between sessions, on top of QSettings.

Why a wrapper: the keys and their types live in one place, lists of recent items are kept
short and free of duplicates, and `$SMMT_SETTINGS_DIR` (used by tests and portable installs)
redirects everything to an INI file in that folder instead of the user's settings.
Also home to the default folders (`runs_dir()`).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from smmt_gui import strings

MAX_RECENT = 8
KEY_GEOMETRY = "window/geometry"
KEY_STATE = "window/state"
KEY_RECENT_FOLDERS = "recent/folders"
KEY_RECENT_MODELS = "recent/models"
KEY_LAST_OPEN_DIR = "recent/last_open_dir"
KEY_COLORMAP = "viewer/colormap"
KEY_OVERLAY_OPACITY = "viewer/overlay_opacity"
KEY_RADIOLOGICAL = "viewer/radiological"
WIZARD_PREFIX = "wizard/"  # the training wizard stores its last values under this group


def runs_dir() -> Path:
    """Where trained runs live: $SMMT_RUNS_DIR or ~/.local/share/smmt-studio/runs."""
    env = os.environ.get("SMMT_RUNS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "smmt-studio" / "runs"


def open_settings() -> QSettings:
    """The app's QSettings (an INI file under $SMMT_SETTINGS_DIR when that is set)."""
    folder = os.environ.get("SMMT_SETTINGS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / f"{strings.APP_ID}.ini"), QSettings.Format.IniFormat)
    return QSettings(strings.ORGANISATION, strings.APP_ID)


class AppSettings:
    """Typed access to the remembered values."""

    def __init__(self, qsettings: QSettings | None = None):
        self.qsettings = qsettings or open_settings()

    # --- recent lists ---------------------------------------------------------------------
    def _recent(self, key: str) -> list[str]:
        value = self.qsettings.value(key, [])
        if isinstance(value, str):  # QSettings returns a bare string for one-element lists
            value = [value]
        return [str(v) for v in (value or []) if v]

    def _push_recent(self, key: str, path: str | Path) -> list[str]:
        path = str(Path(path).expanduser().resolve())
        items = [path] + [p for p in self._recent(key) if p != path]
        items = items[:MAX_RECENT]
        self.qsettings.setValue(key, items)
        return items

    def recent_folders(self) -> list[str]:
        return self._recent(KEY_RECENT_FOLDERS)

    def add_recent_folder(self, path: str | Path) -> list[str]:
        return self._push_recent(KEY_RECENT_FOLDERS, path)

    def recent_models(self) -> list[str]:
        return self._recent(KEY_RECENT_MODELS)

    def add_recent_model(self, path: str | Path) -> list[str]:
        return self._push_recent(KEY_RECENT_MODELS, path)

    # --- window layout ----------------------------------------------------------------------
    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.qsettings.setValue(KEY_GEOMETRY, geometry)
        self.qsettings.setValue(KEY_STATE, state)

    def window_geometry(self) -> QByteArray | None:
        value = self.qsettings.value(KEY_GEOMETRY)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        value = self.qsettings.value(KEY_STATE)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    # --- viewer -------------------------------------------------------------------------------
    def save_viewer(self, colormap: str, overlay_opacity: float) -> None:
        self.qsettings.setValue(KEY_COLORMAP, str(colormap))
        self.qsettings.setValue(KEY_OVERLAY_OPACITY, float(overlay_opacity))

    def viewer_colormap(self) -> str | None:
        """The colormap name last used (the caller checks it is still one it knows), or None."""
        value = self.qsettings.value(KEY_COLORMAP)
        return str(value) if value else None

    def overlay_opacity(self) -> float | None:
        """The cluster overlay opacity last used, in [0, 1]; None if unset or unreadable."""
        try:
            value = float(self.qsettings.value(KEY_OVERLAY_OPACITY))
        except (TypeError, ValueError):
            return None
        return value if 0.0 <= value <= 1.0 else None  # also rejects NaN

    def viewer_radiological(self) -> bool:
        """Whether the viewer was last left in radiological display (default: neurological)."""
        return bool(self.get(KEY_RADIOLOGICAL, False, bool))

    def save_viewer_radiological(self, on: bool) -> None:
        self.qsettings.setValue(KEY_RADIOLOGICAL, bool(on))

    # --- plain values ---------------------------------------------------------------------------
    def get(self, key: str, default=None, type_=None):
        value = self.qsettings.value(key, default)
        if value is None or type_ is None:
            return value
        try:
            if type_ is bool:
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            return type_(value)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value) -> None:
        self.qsettings.setValue(key, value)

    def sync(self) -> None:
        self.qsettings.sync()
