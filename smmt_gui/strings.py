"""Every user-facing string of the desktop app, in one place (FSLeyes does the same).

Why: wording stays consistent across windows, a reviewer can read all of it at once, and a later
translation has one file to work on. Strings with fields use `str.format` names.
"""

APP_NAME = "SMMT Studio"
APP_ID = "smmt-studio"  # desktop file name, QSettings application name
ORGANISATION = "smmt-studio"

RESEARCH_BADGE = "Research use only — not a medical device"
RESEARCH_TOOLTIP = (
    "SMMT Studio is research software. Its predictions have not been validated for clinical use "
    "and must not be used to diagnose or treat anyone."
)
SYNTHETIC_BADGE = "SYNTHETIC"
SYNTHETIC_TOOLTIP = (
    "This data (or the model trained on it) is the synthetic demo cohort: made-up subjects built "
    "from the MNI152 template. Nothing shown here is about a real person."
)
DISCLAIMER = (
    "Research use only. Not a medical device. Not for diagnosis or treatment. Predictions come from "
    "a research model and may be wrong."
)
MNI_NOTICE = (
    "MNI ICBM152 template: Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, "
    "Montreal Neurological Institute, McGill University."
)

# --- toolbar and menus ---------------------------------------------------------------------
ACTION_OPEN_FOLDER = "Open folder…"
ACTION_OPEN_FILE = "Open T1 file…"
ACTION_OPEN_MODEL = "Open model…"
ACTION_TRAIN = "Train…"
ACTION_DEMO_TRAIN = "Train demo model"
ACTION_DEMO_DATA = "Open demo cohort"
ACTION_EXPORT = "Export report…"
ACTION_RESET_VIEW = "Reset view"
ACTION_ABOUT = "About SMMT Studio"
ACTION_QUIT = "Quit"
ACTION_LOG = "Show log"
MENU_FILE = "&File"
MENU_VIEW = "&View"
MENU_HELP = "&Help"
MENU_RECENT_FOLDERS = "Recent folders"
MENU_RECENT_MODELS = "Recent models"
MODEL_LABEL = "Model:"
NO_MODEL = "(no model)"
DEVICE_LABEL = "device: {device}"

TAB_VIEWER = "Viewer"
TAB_TRAINING = "Training"
TAB_ROBUSTNESS = "Robustness"
DOCK_COHORT = "Cohort"
DOCK_PREDICTION = "Prediction"
DOCK_LOG = "Log"

# --- first launch / welcome ----------------------------------------------------------------
WELCOME_TITLE = "Welcome to SMMT Studio"
WELCOME_TEXT = (
    "Drop a subject folder, a single T1 image or a dataset folder anywhere on this window.\n"
    "No data at hand? Open the synthetic demo cohort (built once, about a minute) and train a "
    "demo model in a few minutes on this computer."
)
WELCOME_DEMO_BUTTON = "Open the demo cohort"
WELCOME_TRAIN_BUTTON = "Train a demo model"
DROP_HINT = "Drop a subject folder, T1 file or dataset folder here"

# --- status messages -----------------------------------------------------------------------
STATUS_READY = "Ready"
STATUS_LOADING = "Loading {path}…"
STATUS_LOADING_MODEL = "Loading model {path}…"
STATUS_PREDICTING = "Predicting {subject}…"
STATUS_BUILDING_DEMO = "Building the synthetic demo cohort…"
STATUS_TRAINING = "Training {name}…"
STATUS_LOADED_SUBJECT = "Loaded subject {subject}"
STATUS_LOADED_COHORT = "Loaded {n} subjects ({layout}) from {path}"
STATUS_LOADED_MODEL = "Model {name} loaded"
STATUS_EXPORTED = "Report written: {files}"
STATUS_STOPPING = "Stopping background jobs…"

# --- errors ---------------------------------------------------------------------------------
ERROR_TITLE = "SMMT Studio"
ERROR_DROP = "Could not open what was dropped:\n{message}"
ERROR_DROP_NOT_LOCAL = "Only local files and folders can be opened."
ERROR_DROP_MANY = "Drop one folder or file at a time ({n} were dropped)."
ERROR_MODEL = "Could not load the model:\n{message}"
ERROR_PREDICT = "Could not predict for {subject}:\n{message}"
ERROR_EXPORT = "Could not write the report:\n{message}"
ERROR_DEMO = "Could not build the demo cohort:\n{message}"
ERROR_NO_PREDICTION = "Nothing to export yet: load a model and a subject first."
ERROR_TRAINING_UNAVAILABLE = "The training view is not available: {message}"

# --- viewer ------------------------------------------------------------------------------------
PLANE_NAMES = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal"}
VIEWER_EMPTY = "No image loaded"
VIEWER_COLORMAP = "Colormap"
VIEWER_OVERLAY = "Attention clusters"
VIEWER_OVERLAY_LAYER = "Layer"
VIEWER_OVERLAY_OPACITY = "Opacity"
VIEWER_OVERLAY_NONE = "No clusters (load a model)"
VIEWER_RESET = "Reset"
VIEWER_CURSOR = "voxel ({i}, {j}, {k})   {x:.1f}, {y:.1f}, {z:.1f} mm   intensity {value:.3f}"
VIEWER_CURSOR_OUTSIDE = "outside the image"
VIEWER_MODEL_INPUT = "What the model saw ({plane} slices {indices}) with its K-Means attention clusters"
VIEWER_HOVER_CLUSTER = "slice {slice}, patch ({row}, {col}): cluster {cluster} of {n}"
VIEWER_SPACE_NOTE = "{space}"
SPACE_MNI = "MNI space, RAS (as the model sees it)"
SPACE_RAW = "scanner space, RAS"

# --- prediction panel -------------------------------------------------------------------------
PRED_NONE = "No prediction yet"
PRED_NEED_MODEL = "Load or train a model to predict"
PRED_NEED_SUBJECT = "Load a subject to predict"
PRED_TITLE = "{subject}: {label}"
PRED_PROBABILITIES = "Class probabilities"
PRED_MODALITIES = "Modalities"
PRED_MODALITIES_HELP = "Switch one off to see the prediction without it."
PRED_CONTRIBUTIONS = "Contributions"
PRED_CONTRIBUTIONS_HELP = "Change in the predicted class's logit when the modality is left out."
PRED_MISSING = "not available for this subject"
PRED_USED = "Used: {used}"
PRED_NONE_USED = "Used: nothing (every modality is off or missing)"
PRED_WARNINGS = "Warnings"
PRED_UPDATING = "updating…"
MODALITY_NAMES = {"mri": "MRI", "clinical": "Clinical scores", "categorical": "Categorical (sex, APOE4)"}
LABEL_NAMES = {"CN": "cognitively normal (CN)", "MCI": "mild cognitive impairment (MCI)", "AD": "Alzheimer's disease (AD)"}

# --- cohort panel ---------------------------------------------------------------------------
COHORT_EMPTY = "No dataset open"
COHORT_COLUMNS = ["Subject", "Session", "Label", "Modalities", "Prediction", "P(predicted)"]
COHORT_SUMMARY = "{name}: {n} scans · {labels}"
COHORT_PREDICT_ALL = "Predict all"
COHORT_PREDICT_ALL_TIP = "Predict every scan in the table with the loaded model (all modalities on)."
COHORT_PREDICT_ALL_RUNNING = "Stop predicting"
STATUS_PREDICTED_ALL = "Predicted {done} of {n} scans ({failed} could not be predicted; see the log)"

# --- export -----------------------------------------------------------------------------------
EXPORT_DIALOG = "Export prediction report (base name)"
EXPORT_TITLE = "SMMT Studio prediction report"
EXPORT_FILTER = "Report (*.pdf *.png *.csv *.json)"

# --- about ------------------------------------------------------------------------------------
ABOUT_TEXT = (
    "<b>SMMT Studio</b> {version}<br>"
    "Sparse Multi-Modal Transformer with Masking for telling Alzheimer's disease from cognitively "
    "normal subjects from a T1 MRI and clinical scores (after Lu &amp; Tsai, arXiv 2512.14491).<br><br>"
    "<b>Research use only — not a medical device.</b><br><br>"
    "Python {python} · PyTorch {torch} · Qt {qt}<br>{mni}"
)
