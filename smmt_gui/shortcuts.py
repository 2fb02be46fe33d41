"""Every keyboard shortcut of the desktop app, in one place (as FSLeyes does).

Why: shortcuts clash silently when they are spread over many widgets; here they can be checked at
a glance (a test asserts they are unique). Values are QKeySequence strings.
"""

OPEN_FOLDER = "Ctrl+O"
OPEN_FILE = "Ctrl+Shift+O"
OPEN_MODEL = "Ctrl+M"
TRAIN = "Ctrl+T"
EXPORT = "Ctrl+E"
QUIT = "Ctrl+Q"
TOGGLE_LOG = "Ctrl+L"
RESET_VIEW = "Ctrl+0"
TAB_VIEWER = "Ctrl+1"
TAB_TRAINING = "Ctrl+2"
TAB_ROBUSTNESS = "Ctrl+3"
TOGGLE_MRI = "Alt+1"
TOGGLE_CLINICAL = "Alt+2"
TOGGLE_CATEGORICAL = "Alt+3"

# Viewer navigation (handled by the viewer's keyPressEvent, listed here so they are documented):
# Up / Down or Page Up / Page Down: next / previous slice of the view under the mouse (the last
# one clicked); A / C / S: focus axial / coronal / sagittal; O: show or hide the cluster overlay;
# M: show or hide what the model saw; R: reset zoom and window/level. Clicking a view moves the linked crosshair.
VIEWER_KEYS = {
    "next_slice": ("Up", "PgUp"),
    "previous_slice": ("Down", "PgDown"),
    "focus_axial": ("A",),
    "focus_coronal": ("C",),
    "focus_sagittal": ("S",),
    "toggle_overlay": ("O",),
    "toggle_model_layer": ("M",),
    "reset": ("R",),
}


def all_shortcuts() -> dict[str, str]:
    """Name -> key sequence for every global shortcut (for the uniqueness test and the docs)."""
    return {name: value for name, value in globals().items() if name.isupper() and isinstance(value, str)}
