"""Every user-facing string of the desktop app, in one place (FSLeyes does the same).

Why: wording stays consistent across windows, a reviewer can read all of it at once, and a later
translation has one file to work on. Strings with fields use `str.format` names.
One section per screen: the app-wide ones first, then the training wizard (WIZARD_*), the training
dashboard (TRAINING_*) and the robustness tab (ROBUSTNESS_*).
"""

from smmt_core import report
from smmt_core.data.demo_defaults import DEFAULT_SUBJECTS as DEMO_SUBJECTS

APP_NAME = "SMMT Studio"
APP_ID = "smmt-studio"  # desktop file name, QSettings application name
ORGANISATION = "smmt-studio"

RESEARCH_BADGE = "Research use only — not a medical device"
SPLASH_STARTING = "Starting…"
SPLASH_WINDOW = "Building the window…"
WINDOW_TITLE = f"{APP_NAME} — {RESEARCH_BADGE}"  # the app name once (no display name is appended)
RESEARCH_TOOLTIP = (
    "SMMT Studio is research software. Its predictions have not been validated for clinical use "
    "and must not be used to diagnose or treat anyone."
)
SYNTHETIC_BADGE = "SYNTHETIC"
SYNTHETIC_TOOLTIP = (
    "This data (or the model trained on it) is the synthetic demo cohort: made-up subjects built "
    "from the MNI152 template. Nothing shown here is about a real person."
)
DISCLAIMER = report.DISCLAIMER  # the report states it too: one text, owned by the core
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
ACTION_DIAGNOSTICS = "Copy diagnostics"
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
DOCK_CLUSTERS = "Clusters (whole brain)"

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
STATUS_SHOWN_NO_MODEL = "Showing {subject}: no prediction, no model is loaded (load or train one)"
STATUS_SHOWN_REFUSED = "Showing {subject}: no prediction ({message})"
STATUS_LOADED_MODEL = "Model {name} loaded"
STATUS_EXPORTED = "Report written: {files}"
EXPORTED_NOTICE = 'Report written ({files}) to <a href="{url}">{folder}</a>'  # the link opens the folder
STATUS_DIAGNOSTICS_COPIED = "Diagnostics copied to the clipboard: paste them into your bug report"
STATUS_STOPPING = "Stopping background jobs…"

# --- errors ---------------------------------------------------------------------------------
ERROR_TITLE = "SMMT Studio"
ERROR_DROP = "Could not open what was dropped:\n{message}"
# How the user asked to open something -> what a failure says.
ERROR_OPEN = {
    "drop": ERROR_DROP,
    "file": "Could not open the T1 file:\n{message}",  # the message names the file
    "folder": "Could not open the folder:\n{message}",
    "path": "Could not open {path}:\n{message}",
}
ERROR_NO_SUBJECTS = "{path}: no subjects found"
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
VIEWER_WHOLE_BRAIN_MODEL = "Whole-brain model (3D patches, no slices): its clusters are in the views and the Clusters dock"
# Whole-brain (volume preset) models: the K-Means clusters as a 3D parcellation in all three views.
PARCELLATION_TITLE = "Attention clusters (whole brain, K-Means per layer)"
PARCELLATION_LAYER = "Layer"
PARCELLATION_LAYER_TIP = "Intra-modal layer whose K-Means clusters are shown"
PARCELLATION_ENTRY = "cluster {cluster} · {size} tokens"
PARCELLATION_HOVER = "cluster {cluster} · {size} tokens (layer {layer})"
PARCELLATION_NO_TOKEN = "no token here (outside the brain)"
PARCELLATION_EMPTY = "No 3D clusters (a whole-brain SMMT model shows them here)"
VIEWER_RESET = "Reset"
VIEWER_CURSOR = "voxel ({i}, {j}, {k})   {x:.1f}, {y:.1f}, {z:.1f} mm   intensity {value}"
VIEWER_CURSOR_MNI = "   = MNI {x:.1f}, {y:.1f}, {z:.1f} mm"
VIEWER_CURSOR_MODEL = "   model voxel ({i}, {j}, {k}) {value:.3f}"
VIEWER_CURSOR_MODEL_SAME = "   model input {value:.3f}"
VIEWER_SPACE = "Space"
VIEWER_SPACE_NAMES = {"mni": "MNI", "native": "native"}
VIEWER_SPACE_TIP = ("MNI: the scan registered to MNI152, at its own resolution, with the model's grid over it. "
                    "Native: the scan as acquired (after the intake); the crosshair follows the same anatomy "
                    "through the intake's transform, so you can check the registration.")
VIEWER_MODEL_LAYER = "What the model saw"
VIEWER_MODEL_LAYER_TIP = ("Draw the model's own input over the scan (key M): its 2 mm MNI grid, only the slices it "
                          "was given (dashed lines mark them in the other views); in native space, mapped back "
                          "through the intake's transform.")
VIEWER_MODEL_LAYER_OPACITY = "Opacity of what the model saw"
VIEWER_RADIOLOGICAL = "Radiological"
VIEWER_RADIOLOGICAL_TIP = ("Radiological display: the patient's right on the screen's left in the axial and coronal "
                           "views. Unticked: neurological (left on the left).")
VIEWER_LINK_ZOOM = "Link zoom"
VIEWER_LINK_ZOOM_TIP = "Zooming or panning one view zooms and pans the other two alike"
VIEWER_CURSOR_OUTSIDE = "outside the image"
VIEWER_MODEL_INPUT = "What the model saw ({plane} slices {indices}) with its K-Means attention clusters"
VIEWER_SLICE_TITLE = "{plane} {index}/{count}"  # slice numbers as the cursor readout counts them
VIEWER_WINDOW_LEVEL_TIP = "Drag the two bars to set the window (contrast) and level (brightness)"
VIEWER_HOVER_CLUSTER = "{slice}, patch row {row}, column {col}: cluster {cluster} of {n}"
VIEWER_SPACE_NOTE = "{space}"
NOTICE_SCAN_NOT_SHOWN = "The scan is shown on the model's 2 mm grid only: {message}"
SPACE_MNI = "the model's grid, as the model sees it"
SPACE_MNI_SCAN = "scan {voxel} · model grid {model}"
SPACE_MNI_SCAN_ON_GRID = "scan {voxel}, on the model's grid"
SPACE_NATIVE_SCAN = "scan as acquired, {voxel}"

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
PRED_NOTHING_TO_PREDICT = "Nothing to predict from: switch on at least one modality."
PRED_ENSEMBLE = "Mean of an ensemble of {n} models; their probabilities of this class spread by ±{spread:.1f} points (SD)"
PRED_BORDERLINE = "borderline (leaning {label})"  # calibrated top probability ≤ 0.6: too close to call
PRED_GUESS_NOTE = "⚠ {note}"  # the run's own test set is at chance from the modalities used
PRED_WARNINGS = "Warnings"
PRED_UPDATING = "updating…"
MODALITY_NAMES = {"mri": "MRI", "clinical": "Clinical scores", "categorical": "Categorical (sex, APOE4)"}
LABEL_NAMES = {"CN": "cognitively normal (CN)", "MCI": "mild cognitive impairment (MCI)", "AD": "Alzheimer's disease (AD)"}

# --- cohort panel ---------------------------------------------------------------------------
COHORT_EMPTY = "No dataset open"
COHORT_COLUMNS = ["Subject", "Session", "Label", "Modalities", "Prediction", "P"]
COHORT_COLUMN_TIPS = [
    "Subject identifier",
    "Session (visit) of the scan",
    "Diagnosis in the dataset (? when it has none)",
    "Modalities the scan has: MRI, clinical scores (clin), categorical variables (cat)",
    "The model's prediction (* : made with modalities switched off; – : nothing to predict from)",
    "P: the calibrated probability of the predicted class",
]
COHORT_NOTHING_PREDICTED = "–"
COHORT_NOTHING_PREDICTED_TIP = "Nothing predicted: every modality is switched off."
COHORT_REDUCED_MARK = " *"
COHORT_REDUCED_TIP = "Predicted with {off} switched off"
COHORT_SUMMARY = "{name}: {n} scans · {labels}"
COHORT_PREDICT_ALL = "Predict all"
COHORT_PREDICT_ALL_TIP = "Predict every scan in the table with the loaded model (all modalities on)."
COHORT_PREDICT_ALL_RUNNING = "Stop predicting"
STATUS_PREDICTED_ALL = "Predicted {done} of {n} scans"
STATUS_PREDICTED_ALL_FAILED = "Predicted {done} of {n} scans ({failed} could not be predicted; see the log)"

# --- export -----------------------------------------------------------------------------------
EXPORT_DIALOG = "Export prediction report (base name)"
EXPORT_TITLE = report.REPORT_TITLE
EXPORT_FILTER = "Report (*.pdf *.png *.csv *.json)"
EXPORT_PNG_CAPTION = "{subject}: {label} · model {model}"
EXPORT_PNG_SYNTHETIC = "SYNTHETIC: made-up data or a model trained on it; nothing here is about a real person."
EXPORT_QC_CAPTION = ("Registration QC: the MNI152 brain outline (red) and grey/white boundary (yellow) over "
                     "the registered scan")

# --- about ------------------------------------------------------------------------------------
ABOUT_TEXT = (
    "<b>SMMT Studio</b> {version}<br>"
    "Sparse Multi-Modal Transformer with Masking for telling Alzheimer's disease from cognitively "
    "normal subjects from a T1 MRI and clinical scores (after Lu &amp; Tsai, arXiv 2512.14491).<br><br>"
    "<b>Research use only — not a medical device.</b><br><br>"
    "Python {python} · PyTorch {torch} · Qt {qt}<br>{mni}"
)

# ==============================================================================================
# Training wizard (smmt_gui/wizard): four pages that build a TrainConfig.
# ==============================================================================================
WIZARD_TITLE = "Train a model"
WIZARD_FINISH = "Start training"
WIZARD_CHECK_SETTINGS = "Check the settings"
WIZARD_BROWSE = "Browse…"

# --- page 1: data ---------------------------------------------------------------------------
WIZARD_DATA_TITLE = "Data"
WIZARD_DATA_SUBTITLE = "Choose the cohort to train on. It is checked before you go on."
WIZARD_DATA_SOURCE_BOX = "Source"
# (key, button text, hint shown under the path field)
WIZARD_DATA_SOURCES: list[tuple[str, str, str]] = [
    ("demo", "Demo cohort (SYNTHETIC)",
     f"{DEMO_SUBJECTS} synthetic subjects made from the MNI152 template; built on first use. For trying the app, "
     "not for science."),
    ("bids", "BIDS dataset",
     "A folder with dataset_description.json, participants.tsv and sub-*/[ses-*/]anat/*_T1w.nii[.gz]."),
    ("adni", "ADNI download + ADNIMERGE",
     "The ADNI/ download folder as LONI IDA delivers it (or the folder holding it). The ADNIMERGE*.csv "
     "table is found in that folder or beside the subject folders; if it lives elsewhere, choose it below."),
    ("oasis", "OASIS-1",
     "The OAS1_XXXX_MR1 folders (Analyze images) with the OASIS cross-sectional CSV beside them."),
    ("folders", "Folder of subject folders",
     "One sub-folder per subject, each with one T1 volume and optionally clinical.json or a one-row CSV/TSV."),
]
WIZARD_DATA_PATH_LABEL = "Dataset folder:"
WIZARD_ADNIMERGE_LABEL = "ADNIMERGE table (only if it is not inside the download):"
WIZARD_ADNIMERGE_PLACEHOLDER = "found automatically when empty"
WIZARD_ADNIMERGE_DIALOG = "Choose the ADNIMERGE table"
WIZARD_ADNIMERGE_FILTER = "CSV tables (*.csv);;All files (*)"
WIZARD_DATA_PATH_PLACEHOLDER = "Folder of the dataset"
WIZARD_DATA_SUMMARY_PLACEHOLDER = "The validation summary appears here."
WIZARD_DATA_BROWSE_DIALOG = "Choose the dataset folder"
WIZARD_DATA_DEMO_PENDING = "✓ The SYNTHETIC demo cohort will be built when training starts."
WIZARD_DATA_DEMO_PENDING_SUMMARY = (
    "Demo cohort folder: {folder}\nNot built yet: " + f"{DEMO_SUBJECTS}" + " synthetic subjects, about two minutes to make."
)
WIZARD_DATA_CHOOSE = "Choose a folder."
WIZARD_DATA_NOT_FOUND = "✗ This folder does not exist."
WIZARD_DATA_CHECKING = "Checking the data…"
WIZARD_DATA_USABLE = "✓ Usable: {n} subjects{note}."
WIZARD_DATA_OTHER_LAYOUT = " (found a {layout} layout)"
WIZARD_DATA_UNUSABLE = "✗ Not usable for training: see the problems below."
WIZARD_DATA_NOT_FOR_TRAINING = "✗ Usable for prediction, not for training: {reason}."
WIZARD_DATA_ERROR = "✗ {message}"

# --- page 2: features -----------------------------------------------------------------------
WIZARD_FEATURES_TITLE = "Features"
WIZARD_FEATURES_SUBTITLE = "Which clinical scores and variables the model sees besides the MRI."
WIZARD_FEATURES_CLASSES = "Classes:"
WIZARD_FEATURES_PRESETS = "Presets:"
WIZARD_FEATURES_NUMERIC_BOX = "Clinical scores"
WIZARD_FEATURES_CATEGORICAL_BOX = "Categorical"
# How the page names the canonical clinical columns (ADNIMERGE names; the lists come from the core).
WIZARD_FEATURE_TEXT: dict[str, str] = {
    "MMSE": "MMSE (Mini-Mental State Examination)",
    "CDGLOBAL": "Global CDR (Clinical Dementia Rating)",
    "CDRSB": "CDR sum of boxes",
    "FAQ": "FAQ (Functional Activities Questionnaire)",
    "ADAS13": "ADAS-Cog 13",
    "AGE": "Age",
    "PTEDUCAT": "Years of education",
    "PTGENDER": "Sex",
    "APOE4": "APOE ε4 alleles (0/1/2)",
}
WIZARD_FEATURE_TIP = "column {name}"
WIZARD_FEATURE_TIP_CIRCULAR = "column {name} — part of how the diagnosis is made (circular)"
# Preset buttons: (key in smmt_core.data.features.FEATURE_PRESETS, button text)
WIZARD_PRESET_BUTTONS = [("paper", "Paper set"), ("non-circular", "Non-circular"), ("all", "All"), ("none", "MRI only")]
WIZARD_MRI_ONLY = "No clinical inputs: the model sees the MRI only."
WIZARD_FEATURES_COUNT = "{n} selected: {names}"
WIZARD_LABEL_SET_TEXT = {"ad-cn": "AD vs CN (as in the paper; MCI subjects left out)", "cn-mci-ad": "CN vs MCI vs AD"}
WIZARD_CIRCULAR_WARNING = (
    "<b>Circular features selected.</b> ADNI assigns its diagnostic groups partly from MMSE and "
    "CDR, so a model given them scores near-perfectly, and the score says little about the MRI. "
    "Use <i>Non-circular</i> to see what the images and risk factors alone achieve."
)

# --- page 3: model --------------------------------------------------------------------------
WIZARD_MODEL_TITLE = "Model"
WIZARD_MODEL_SUBTITLE = "The variant to train, how much of the training data to use, and how much to mask."
WIZARD_VARIANT_BOX = "Variant"
# variant key -> (button text, hint beside it)
WIZARD_VARIANT_TEXT: dict[str, tuple[str, str]] = {
    "smmt": ("SMMT", "Cluster-sparse attention and modality masking (the paper's model)."),
    "3mt": ("3MT baseline", "Dense attention, no masking (Liu et al. 2023)."),
    "smmt-no-sparse": ("SMMT without sparse attention", "Ablation: dense attention, with masking."),
    "smmt-no-mask": ("SMMT without masking", "Ablation: sparse attention, no masking."),
}
WIZARD_SLIDERS_BOX = "Data and masking"
WIZARD_FRACTION_LABEL = "Training data fraction:"
WIZARD_FRACTION_HINT = ("Shrinks the training and validation persons together; the test persons never change, "
                        "so runs with different fractions are compared on the same people.")
WIZARD_FRACTION_VALUE = "{percent:.0f} %"
WIZARD_MASK_LABEL = "Mask ratio:"
WIZARD_MASK_VALUE = "{ratio:.2f}"
WIZARD_MASK_MODE_LABEL = "Masking:"
WIZARD_MASK_MODE_TEXT = {"dimension": "Per dimension (the paper)", "modality": "Whole modality"}
WIZARD_MASK_NOTE = "The paper's best ratio is 0.30; above about 0.6 accuracy falls to the majority-class rate."
WIZARD_MASK_UNUSED = "{variant} trains without masking; the ratio is not used."

# --- page 4: run settings -------------------------------------------------------------------
WIZARD_RUN_TITLE = "Run settings"
WIZARD_RUN_SUBTITLE = "Training schedule, seeds and device. One run is trained per seed."
WIZARD_PRESET_LABEL = "Preset:"
WIZARD_PRESET_NAMES = {"demo": "Demo", "paper": "Paper", "volume": "Whole brain"}  # other presets: the key, capitalised
WIZARD_PRESET_TEXT = {
    "demo": "Demo: small model (d = 128, 64×64 slices), 12 epochs: minutes on a laptop CPU.",
    "paper": "Paper: d = 512, 256×256 3-channel slices, 50 epochs: hours, a GPU is advisable.",
    "volume": "Whole brain: ~4000 3D patch tokens (8 mm at 2 mm), d = 128, 2 layers: where sparse attention pays off.",
}
WIZARD_EPOCHS_LABEL = "Epochs:"
WIZARD_BATCH_LABEL = "Batch size:"
WIZARD_LR_LABEL = "Learning rate:"
WIZARD_SEEDS_LABEL = "Seed(s):"
WIZARD_SEEDS_PLACEHOLDER = "0   or   0, 1, 2   or   0-4"
WIZARD_SEEDS_ONE = "1 run"
WIZARD_SEEDS_MANY = "{n} runs, one after another"
WIZARD_SEEDS_INVALID = "✗ {error}"
WIZARD_ENSEMBLE_LABEL = "Ensemble (models per run):"
WIZARD_ENSEMBLE_TIP = ("Train this many models (seeds seed, seed+1, …) on the same persons and predict with their "
                       "mean probability; the spread between them is shown. Takes that many times longer.")
WIZARD_SEED_NOT_A_SEED = "{part!r} is not a seed or a range like 0-4"
WIZARD_SEED_BACKWARDS = "range {part!r} runs backwards"
WIZARD_SEED_TOO_MANY = "range {part!r} has more than 100 seeds"
WIZARD_SEED_NONE = "enter at least one seed"
WIZARD_DEVICE_LABEL = "Device:"
# (TrainConfig.device value, combo text)
WIZARD_DEVICES: list[tuple[str, str]] = [
    ("auto", "Automatic (GPU when available)"),
    ("cpu", "CPU"),
    ("cuda", "GPU (CUDA)"),
]
WIZARD_CUDA_UNAVAILABLE = "GPU (CUDA) — not available on this computer"
WIZARD_CUDA_CHECKING = "GPU (CUDA) — checking…"
WIZARD_RUNS_FOLDER_LABEL = "Runs folder:"
WIZARD_RUNS_FOLDER_DIALOG = "Folder for the runs"
WIZARD_RUN_NAME_LABEL = "Run name:"
WIZARD_RUN_NAME_PLACEHOLDER = "automatic (variant, fraction, seed, time)"

# ==============================================================================================
# Training dashboard (smmt_gui/panels/training.py): live curves, then the test results.
# ==============================================================================================
TRAINING_IDLE_TITLE = "No training running"
TRAINING_IDLE_HINT = "Use Train… to configure a run; its curves appear here live."
TRAINING_DEFAULT_NAME = "{variant}, {fraction:.0%} data, seed {seed}"  # a run without a name, until it starts
TRAINING_TITLE_RUN = "Training {name}"
TRAINING_TITLE_SERIES = "Training {name} (run {index} of {total})"
TRAINING_TITLE_DONE = "Finished {name}"
TRAINING_TITLE_CANCELLED = "Cancelled {name}"
TRAINING_TITLE_FAILED = "Training failed"
TRAINING_INFO_RUN = (
    "{n_train} training · {n_val} validation · {n_test} test subjects · {device} · {variant}, {epochs} epochs"
    " · data fraction {fraction:.0%} · {masking}"
)
TRAINING_INFO_MASK = "mask ratio {ratio:.2f} ({mode})"
TRAINING_INFO_NO_MASK = "no masking"
TRAINING_INFO_BEST = " · best so far: epoch {epoch} (its checkpoint is kept)"
TRAINING_STATUS_PREPARING = "Preparing data and model…"
TRAINING_STATUS_DATA = "Preparing data: {stage} {done}/{total} scans"
TRAINING_STATUS_BATCH = "Epoch {epoch}/{epochs} · batch {batch}/{batches} · loss {loss:.3f}"
TRAINING_STATUS_CANCELLING = "Cancelling: stopping after the current batch…"
TRAINING_STATUS_STOPPED_EVALUATING = "Stopped after {batches} batches; evaluating the best epoch on the test set…"
TRAINING_STATUS_CANCELLED = "Cancelled after {duration}; the best checkpoint so far is in {run_dir}"
TRAINING_STATUS_DONE = "Done in {duration} · {energy} · run folder {run_dir}"
TRAINING_NO_RESULT = "training ended without reporting a result"
TRAINING_ETA = "{done:.0f} % · {left} left"
TRAINING_ETA_STOPPING = "stopping…"
TRAINING_ETA_UNKNOWN = "{done:.0f} % · estimating time left…"
TRAINING_CIRCULAR_NOTE = (
    "Trained with {names}, which are part of how the diagnosis is made: expect near-perfect test "
    "scores that say little about the MRI. The non-circular feature preset shows what is left without them."
)
TRAINING_ENERGY = "{energy} · {watts:.0f} W"
TRAINING_ENERGY_WH = "{wh:.3g} Wh"  # three significant digits: 0.0412 Wh, 3.51 Wh, 512 Wh
TRAINING_ENERGY_KWH = "{kwh:.3g} kWh"
TRAINING_ENERGY_BELOW = "< 0.001 Wh"
TRAINING_ENERGY_ESTIMATED = " (estimated: no power sensors)"
TRAINING_ENERGY_NOT_MEASURED = "energy not measured"
TRAINING_CANCEL = "Cancel"
TRAINING_CANCELLING = "Cancelling…"
TRAINING_CANCEL_TIP = "Stop after the current batch; the checkpoints written so far are kept."
# Plots: (title, y axis, x axis); legend entries.
TRAINING_PLOT_LOSS = ("Loss", "cross-entropy", "epoch")
TRAINING_PLOT_ACCURACY = ("Accuracy", "accuracy", "epoch")
TRAINING_PLOT_ENERGY = ("Energy (codecarbon)", "Wh", "minutes")  # Wh: a demo run's kWh read "5e-05"
TRAINING_PLOT_POWER = ("Power", "W", "minutes")
TRAINING_PLOT_POWER_ESTIMATED = "Power (estimated)"
TRAINING_PLOT_ROC = ("ROC curve (test set)", "true positive rate", "false positive rate")
TRAINING_LEGEND_BATCH = "batch"
TRAINING_LEGEND_TRAIN = "train"
TRAINING_LEGEND_VAL = "validation"
# Results of the test set.
TRAINING_METRICS_BOX = "Test-set metrics (per subject)"
# (key in compute_metrics' dict, row header)
# Test metrics per person; where a 95 % bootstrap CI exists it is shown beside the value.
TRAINING_METRIC_ROWS = [
    ("accuracy", "Accuracy"),
    ("balanced_accuracy", "Balanced accuracy"),
    ("sensitivity", "Sensitivity"),
    ("specificity", "Specificity"),
    ("precision", "Precision"),
    ("f1", "F1"),
    ("roc_auc", "ROC AUC"),
    ("brier", "Brier score"),
    ("ece", "ECE (10 bins)"),
]
TRAINING_METRICS_COLUMN = "seed {seed}"
TRAINING_METRIC_TIP = "{name}: {text}"
TRAINING_METRIC_TIP_CI = "{name}: {text}\n(in brackets: the 95 % bootstrap confidence interval over the test persons)"
TRAINING_METRIC_WITH_CI = "{value} [{lo:.3f}–{hi:.3f}]"  # 95 % bootstrap CI over the test persons
TRAINING_CONFUSION_BOX = "Confusion matrix (test set)"
TRAINING_CONFUSION_CAPTION = "rows: true class · columns: predicted"
TRAINING_CONFUSION_COLUMN = "→ {name}"
TRAINING_CONFUSION_TIP = "true {true}, predicted {predicted}: {share:.0%} of the {true} subjects"
TRAINING_ROC_AUC = "AUC {auc}"
TRAINING_PLOT_RELIABILITY = ("Reliability (test set)", "observed share positive", "mean predicted probability")
TRAINING_RELIABILITY_ECE = "ECE {ece}"
TRAINING_ROC_NONE = "no ROC curve (one class only in the test set)"

# ==============================================================================================
# Robustness tab (smmt_gui/panels/robustness.py): the loaded run with modalities left out / masked.
# ==============================================================================================
ROBUSTNESS_TITLE_NONE = "Robustness"
ROBUSTNESS_TITLE_RUN = "Robustness of {name}"
ROBUSTNESS_HINT_NO_RUN = "Load or train a model: its test subjects are scored here with modalities left out and masked."
ROBUSTNESS_STATUS_WAITING = "Computed when this view is shown."
ROBUSTNESS_STATUS_ASK = "Press Compute to score the test set."
ROBUSTNESS_STATUS_COMPUTING = "Scoring the test subjects… {done}/{total} passes"
ROBUSTNESS_STATUS_DONE = "{n} test subjects · classes {classes} · {repeats} masking repeats per ratio{synthetic}"
ROBUSTNESS_STATUS_SYNTHETIC = " · SYNTHETIC demo model"
ROBUSTNESS_STATUS_STOPPED = "Cancelled: showing the {n} results computed so far."
ROBUSTNESS_SHOW = "Show:"
ROBUSTNESS_COMPUTE = "Compute"
ROBUSTNESS_RECOMPUTE = "Recompute"
ROBUSTNESS_CANCEL = "Cancel"
# (column of evaluate_robustness's frame, combo text and y-axis label)
ROBUSTNESS_METRICS = [("balanced_accuracy", "Balanced accuracy"), ("accuracy", "Accuracy")]
ROBUSTNESS_SHORT_NAMES = {"mri": "MRI", "clinical": "Clin", "categorical": "Cat"}
ROBUSTNESS_ALL = "All"
ROBUSTNESS_ALL_LONG = "All ({names})"
ROBUSTNESS_PLOT_SUBSETS = ("Modalities given (no masking)", "modalities given to the model")  # (title, x axis)
ROBUSTNESS_PLOT_SWEEP = ("Test-time masking (all modalities)", "mask ratio")
ROBUSTNESS_TABLE_COLUMNS = ["Modalities", "Mask ratio", "Accuracy", "Balanced accuracy", "Test subjects"]
ROBUSTNESS_CHANCE_CLASSES = "dashed line: chance level (1/{n} classes)"
ROBUSTNESS_CHANCE_MAJORITY = "dashed line: always guessing the larger class ({rate:.0%})"
# The model beside the simple baselines with a share of the test persons lacking a modality.
ROBUSTNESS_VIEWS = ("Modalities and masking", "Model vs baselines, data missing")  # the panel's two views
ROBUSTNESS_MISSING_WITHOUT = "Persons lacking:"
ROBUSTNESS_MISSING_MODALITIES = [("mri", "their MRI"), ("clinical", "their clinical data")]
ROBUSTNESS_MISSING_PLOT = ("{metric}: the model and the baselines, same persons",
                           "test persons lacking it (%)")  # (title, x axis)
ROBUSTNESS_MISSING_COMPUTING = "Fitting the baselines on the run's training persons… {done}/{total} methods"
ROBUSTNESS_MISSING_WAITING = "Computed after the modality subsets and the masking sweep."
ROBUSTNESS_MISSING_DONE = (
    "{n} test persons. Who lacks a modality is drawn once from the run's split seed ({seed}): the same "
    "persons for every method, nested across shares. Baselines are refitted on the run's training persons; "
    "one that reads only the image gives a person without an MRI its training prior (chance). "
    "Bands: 95 % bootstrap CIs."
)
ROBUSTNESS_MISSING_NO_CI = " (accuracy has no CI here: choose balanced accuracy for the bands)"
ROBUSTNESS_MISSING_SKIPPED = "Not scored: {names}."
ROBUSTNESS_MISSING_FAILED = "The comparison with the baselines failed: {message}"

# --- intake of raw scans (smmt_gui/intake_dialog.py) ---------------------------------------------
INTAKE_TITLE = "Preparing {name}"
INTAKE_STEPS = {
    "convert": "Convert DICOM",
    "brain": "Brain extraction",
    "bias": "Bias-field correction",
    "register": "Registration to MNI152",
    "predict": "Prediction",
}
INTAKE_WAITING = "waiting"
INTAKE_RUNNING = "running…"
INTAKE_DONE = "done"
INTAKE_FROM_CACHE = "done (cached)"
INTAKE_SKIPPED = "skipped: {why}"
INTAKE_CANCEL = "Cancel"
INTAKE_CANCELLING = "Cancelling…"
INTAKE_CLOSE = "Close"
INTAKE_CANCELLED = "Cancelled. Nothing was saved for this scan."
INTAKE_QC = "Quality control: {verdict} (registration score {score:.2f})"
INTAKE_DEVICE = "Brain extraction ran on {device}."
INTAKE_QC_FAILED = "No prediction: the scan failed quality control. {reason}"
INTAKE_REFUSED = "{name}: no prediction, the scan failed quality control: {reason}."
INTAKE_QC_PICTURE = "QC picture: {path}"
INTAKE_PREDICTION = "Prediction: {label} (P({label}) = {p:.2f})"
