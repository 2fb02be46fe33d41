"""The four pages of the training wizard.

Each page owns a slice of `TrainConfig` and knows how to read (`values()`) and restore
(`restore(values)`) it as plain JSON-friendly values, so the wizard can remember the last choices
in QSettings without knowing what is on each page. Anything slow (checking a dataset) runs on a
`FunctionWorker`; the page only shows what comes back. Every text it shows is in `smmt_gui.strings`
(the WIZARD_* section).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from smmt_core.data.feature_sets import (
    CATEGORICAL_FEATURES,
    CIRCULAR_FEATURES,
    DEFAULT_FEATURE_PRESET,
    FEATURE_PRESETS,
    KNOWN_FEATURES,
)
from smmt_core.train.config import LABEL_SETS, PRESETS, preset_value, setting_accepts, setting_bounds
from smmt_core.variants import MASK_MODES, VARIANT_NAMES, variant
from smmt_gui import strings
from smmt_gui.settings import runs_dir
from smmt_gui.workers import FunctionWorker

# --- slider steps (the texts are in smmt_gui.strings); the ranges are the config's ------------------
FRACTION_STEP = 5  # percent per slider step
MASK_STEP = 0.05  # mask ratio per slider step
LR_DECIMALS = 5  # the learning rate box's precision: its lowest value above the config's bound of 0
LR_MAX = 1.0  # the config declares no upper bound (a diverging run is a run the user asked for)


def slider_range(name: str, step: float) -> tuple[int, int]:
    """The first and last slider position (values `position * step`) that the setting's declaration
    accepts: an exclusive bound (fraction > 0) keeps the slider one step inside it."""
    low, high = setting_bounds(name)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    while not setting_accepts(name, round(first * step, 10)):
        first += 1
    while not setting_accepts(name, round(last * step, 10)):
        last -= 1
    return first, last


def parse_seeds(text: str) -> list[int]:
    """'0', '0, 1, 2', '0-4' or '0 2 5-7' -> a sorted list of distinct seeds; ValueError when malformed."""
    seeds: set[int] = set()
    for part in re.split(r"[,\s;]+", text.strip()):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(strings.WIZARD_SEED_NOT_A_SEED.format(part=part))
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise ValueError(strings.WIZARD_SEED_BACKWARDS.format(part=part))
        if last - first >= 100:
            raise ValueError(strings.WIZARD_SEED_TOO_MANY.format(part=part))
        seeds.update(range(first, last + 1))
    if not seeds:
        raise ValueError(strings.WIZARD_SEED_NONE)
    return sorted(seeds)


def _hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setObjectName("hint")
    label.setStyleSheet("color: palette(mid);")
    return label


def _browse_row(edit: QLineEdit, button: QPushButton) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    layout.addWidget(button)
    return row


# --- page 1: data ---------------------------------------------------------------------------------
class DataPage(QWizardPage):
    """Where the data comes from, checked with `validate_path` on a worker as soon as it is chosen."""

    validated = Signal(object)  # the ValidationReport (or None after an error), for tests and the summary

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle(strings.WIZARD_DATA_TITLE)
        self.setSubTitle(strings.WIZARD_DATA_SUBTITLE)
        self._group = QButtonGroup(self)
        self.source_buttons: dict[str, QRadioButton] = {}
        sources = QGroupBox(strings.WIZARD_DATA_SOURCE_BOX)
        grid = QVBoxLayout(sources)
        for key, text, _ in strings.WIZARD_DATA_SOURCES:
            button = QRadioButton(text)
            button.setObjectName(f"source-{key}")
            self._group.addButton(button)
            self.source_buttons[key] = button
            grid.addWidget(button)
            button.toggled.connect(self._source_changed)

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText(strings.WIZARD_DATA_PATH_PLACEHOLDER)
        self.browse_button = QPushButton(strings.WIZARD_BROWSE)
        self.browse_button.clicked.connect(self._browse)
        self.source_hint = _hint("")
        # ADNI only: the ADNIMERGE table when it is not inside the download folder.
        self.adnimerge_edit = QLineEdit()
        self.adnimerge_edit.setPlaceholderText(strings.WIZARD_ADNIMERGE_PLACEHOLDER)
        self.adnimerge_button = QPushButton(strings.WIZARD_BROWSE)
        self.adnimerge_button.clicked.connect(self._browse_adnimerge)
        self.adnimerge_label = QLabel(strings.WIZARD_ADNIMERGE_LABEL)
        self.adnimerge_row = _browse_row(self.adnimerge_edit, self.adnimerge_button)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setMinimumHeight(120)
        self.summary.setPlaceholderText(strings.WIZARD_DATA_SUMMARY_PLACEHOLDER)

        layout = QVBoxLayout(self)
        layout.addWidget(sources)
        layout.addWidget(QLabel(strings.WIZARD_DATA_PATH_LABEL))
        layout.addWidget(_browse_row(self.path_edit, self.browse_button))
        layout.addWidget(self.source_hint)
        layout.addWidget(self.adnimerge_label)
        layout.addWidget(self.adnimerge_row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.summary, 1)

        # Typing a path re-validates after a short pause, not on every key.
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(400)
        self._debounce.timeout.connect(self.validate_now)
        self.path_edit.textChanged.connect(lambda _text: self._schedule_validation())
        self.adnimerge_edit.textChanged.connect(lambda _text: self._schedule_validation())

        self._workers: list[FunctionWorker] = []
        self._generation = 0  # results of an older request are ignored
        # A check still running when the wizard is closed must not touch the deleted widgets.
        alive = self._alive = [True]
        self.destroyed.connect(lambda *_: alive.__setitem__(0, False))
        self.report = None  # the last ValidationReport for the current choice
        self._complete = False
        self._active = False  # no checks before the page is first shown
        self.source_buttons["demo"].setChecked(True)

    def initializePage(self) -> None:  # noqa: N802 - Qt API: the wizard shows this page
        self._active = True
        self.validate_now()

    # --- values ----------------------------------------------------------------------------------
    def source(self) -> str:
        for key, button in self.source_buttons.items():
            if button.isChecked():
                return key
        return "demo"

    def data_value(self) -> str:
        """What goes into TrainConfig.data."""
        return "demo" if self.source() == "demo" else self.path_edit.text().strip()

    def adnimerge_value(self) -> str | None:
        """What goes into TrainConfig.adnimerge: the chosen table for an ADNI download, else None."""
        text = self.adnimerge_edit.text().strip()
        return text if self.source() == "adni" and text else None

    def values(self) -> dict:
        return {"source": self.source(), "path": self.path_edit.text().strip(),
                "adnimerge": self.adnimerge_edit.text().strip()}

    def restore(self, values: dict) -> None:
        self.path_edit.setText(str(values.get("path", "")))
        self.adnimerge_edit.setText(str(values.get("adnimerge", "")))
        source = values.get("source", "demo")
        if source in self.source_buttons:
            self.source_buttons[source].setChecked(True)

    # --- validation --------------------------------------------------------------------------------
    def isComplete(self) -> bool:  # noqa: N802 - Qt API
        return self._complete

    def _set_complete(self, complete: bool) -> None:
        if complete != self._complete:
            self._complete = complete
            self.completeChanged.emit()

    def _source_changed(self, checked: bool) -> None:
        if not checked:
            return
        source = self.source()
        demo = source == "demo"
        self.path_edit.setEnabled(not demo)
        self.browse_button.setEnabled(not demo)
        for widget in (self.adnimerge_label, self.adnimerge_row):
            widget.setVisible(source == "adni")
        self.source_hint.setText(dict((k, h) for k, _, h in strings.WIZARD_DATA_SOURCES)[source])
        self._schedule_validation(immediately=True)

    def _schedule_validation(self, immediately: bool = False) -> None:
        self._generation += 1
        self.report = None
        self._set_complete(False)
        if not self._active:
            return
        if immediately:
            self._debounce.stop()
            self.validate_now()
        else:
            self._debounce.start()

    def validate_now(self) -> None:
        """Check the current choice on a worker thread; the result arrives in `_on_report`."""
        self._debounce.stop()
        self._generation += 1
        generation = self._generation
        self.report = None
        self._set_complete(False)
        if self.source() == "demo":
            from smmt_core.data.demo import default_demo_dir

            demo_dir = default_demo_dir()
            if not (demo_dir / "participants.tsv").is_file():
                self.status_label.setText(strings.WIZARD_DATA_DEMO_PENDING)
                self.summary.setPlainText(strings.WIZARD_DATA_DEMO_PENDING_SUMMARY.format(folder=demo_dir))
                self._set_complete(True)
                self.validated.emit(None)
                return
            path = str(demo_dir)
        else:
            path = self.path_edit.text().strip()
            if not path:
                self.status_label.setText(strings.WIZARD_DATA_CHOOSE)
                self.summary.clear()
                return
            if not Path(path).exists():
                self.status_label.setText(strings.WIZARD_DATA_NOT_FOUND)
                self.summary.clear()
                return
        from smmt_core.data.validate import validate_path

        self.status_label.setText(strings.WIZARD_DATA_CHECKING)
        self.summary.clear()
        # Our own demo images need no reading; a user's dataset gets every image opened once.
        check_images = self.source() != "demo"
        worker = FunctionWorker(validate_path, path, check_images=check_images, adnimerge=self.adnimerge_value(),
                                stop_kw="stop", name="validate")
        worker.result.connect(lambda report, g=generation: self._on_report(g, report))
        worker.error.connect(lambda message, g=generation: self._on_error(g, message))
        worker.finished.connect(lambda w=worker: self._forget(w))
        self._workers.append(worker)
        worker.start()

    def _forget(self, worker: FunctionWorker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)

    def _on_report(self, generation: int, report) -> None:
        if not self._alive[0] or generation != self._generation:
            return  # the user has moved on, or closed the wizard
        self.report = report
        lines = list(report.summary_lines())
        self.summary.setPlainText("\n".join(lines))
        if report.usable_for_training:
            note = ""
            if self.source() not in ("demo", report.layout) and not (
                self.source() == "folders" and report.layout in ("folders", "folder")
            ):
                note = strings.WIZARD_DATA_OTHER_LAYOUT.format(layout=report.layout.upper())
            self.status_label.setText(strings.WIZARD_DATA_USABLE.format(n=report.n_subjects, note=note))
        elif report.usable:  # readable, but not a training set (e.g. one class only)
            self.status_label.setText(strings.WIZARD_DATA_NOT_FOR_TRAINING.format(reason=report.training_reason))
        else:
            self.status_label.setText(strings.WIZARD_DATA_UNUSABLE)
        self._set_complete(bool(report.usable_for_training))
        self.validated.emit(report)

    def _on_error(self, generation: int, message: str) -> None:
        if not self._alive[0] or generation != self._generation:
            return
        self.status_label.setText(strings.WIZARD_DATA_ERROR.format(message=message))
        self.summary.clear()
        self._set_complete(False)
        self.validated.emit(None)

    def is_checking(self) -> bool:
        return any(w.is_running() for w in self._workers)

    def stop_workers(self) -> None:
        """Ask running checks to stop and return at once (never wait on the GUI thread: reading a
        large ADNI tree can take minutes). A check's late result is dropped (generation and the
        `alive` flag); the worker itself is kept alive by `smmt_gui.workers` until its thread
        ends, and the main window waits for it before it closes."""
        self._debounce.stop()
        self._generation += 1
        for worker in list(self._workers):
            worker.request_stop()

    def _browse(self) -> None:
        start = self.path_edit.text().strip() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, strings.WIZARD_DATA_BROWSE_DIALOG, start)
        if folder:
            self.path_edit.setText(folder)

    def _browse_adnimerge(self) -> None:
        start = self.adnimerge_edit.text().strip() or self.path_edit.text().strip() or str(Path.home())
        table, _ = QFileDialog.getOpenFileName(self, strings.WIZARD_ADNIMERGE_DIALOG, start,
                                               strings.WIZARD_ADNIMERGE_FILTER)
        if table:
            self.adnimerge_edit.setText(table)


# --- page 2: features ---------------------------------------------------------------------------
class FeaturesPage(QWizardPage):
    """Which clinical columns the model sees, with the circularity warning in plain words."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle(strings.WIZARD_FEATURES_TITLE)
        self.setSubTitle(strings.WIZARD_FEATURES_SUBTITLE)
        self.label_set_combo = QComboBox()
        for key in LABEL_SETS:
            self.label_set_combo.addItem(strings.WIZARD_LABEL_SET_TEXT.get(key, key), key)

        presets = QHBoxLayout()
        presets.addWidget(QLabel(strings.WIZARD_FEATURES_PRESETS))
        self.preset_buttons: dict[str, QPushButton] = {}
        for key, text in strings.WIZARD_PRESET_BUTTONS:
            names = FEATURE_PRESETS[key]
            button = QPushButton(text)
            button.setToolTip(", ".join(names) if names else strings.WIZARD_MRI_ONLY)
            button.clicked.connect(lambda _checked=False, names=names: self.set_features(names))
            self.preset_buttons[key] = button
            presets.addWidget(button)
        presets.addStretch(1)

        self.checks: dict[str, QCheckBox] = {}
        boxes = QHBoxLayout()
        numeric = [name for name in KNOWN_FEATURES if name not in CATEGORICAL_FEATURES]
        categorical = [name for name in KNOWN_FEATURES if name in CATEGORICAL_FEATURES]
        groups = ((strings.WIZARD_FEATURES_NUMERIC_BOX, numeric),
                  (strings.WIZARD_FEATURES_CATEGORICAL_BOX, categorical))
        for title, names in groups:
            box = QGroupBox(title)
            column = QVBoxLayout(box)
            for name in names:
                check = QCheckBox(strings.WIZARD_FEATURE_TEXT.get(name, name))
                tip = strings.WIZARD_FEATURE_TIP_CIRCULAR if name in CIRCULAR_FEATURES else strings.WIZARD_FEATURE_TIP
                check.setToolTip(tip.format(name=name))
                check.toggled.connect(self._features_changed)
                self.checks[name] = check
                column.addWidget(check)
            column.addStretch(1)
            boxes.addWidget(box)

        self.warning = QLabel(strings.WIZARD_CIRCULAR_WARNING)
        self.warning.setWordWrap(True)
        self.warning.setObjectName("circularWarning")
        self.warning.setStyleSheet(
            "QLabel#circularWarning { background: #fff4ce; color: #5c4400; border: 1px solid #e0c060;"
            " border-radius: 4px; padding: 6px; }"
        )
        self.count_label = QLabel()

        form = QFormLayout()
        form.addRow(strings.WIZARD_FEATURES_CLASSES, self.label_set_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(presets)
        layout.addLayout(boxes)
        layout.addWidget(self.count_label)
        layout.addWidget(self.warning)
        layout.addStretch(1)
        self.set_features(FEATURE_PRESETS[DEFAULT_FEATURE_PRESET])

    def features(self) -> list[str]:
        return [name for name in KNOWN_FEATURES if self.checks[name].isChecked()]

    def set_features(self, names) -> None:
        wanted = set(names)
        for name, check in self.checks.items():
            check.setChecked(name in wanted)
        self._features_changed()

    def circular_selected(self) -> list[str]:
        return [name for name in self.features() if name in CIRCULAR_FEATURES]

    def _features_changed(self, *_args) -> None:
        chosen = self.features()
        self.warning.setVisible(bool(self.circular_selected()))
        self.count_label.setText(
            strings.WIZARD_FEATURES_COUNT.format(n=len(chosen), names=", ".join(chosen)) if chosen
            else strings.WIZARD_MRI_ONLY
        )

    def values(self) -> dict:
        return {"features": self.features(), "label_set": self.label_set_combo.currentData()}

    def restore(self, values: dict) -> None:
        features = values.get("features")
        if isinstance(features, (list, tuple)):
            self.set_features([f for f in features if f in self.checks])
        index = self.label_set_combo.findData(values.get("label_set"))
        if index >= 0:
            self.label_set_combo.setCurrentIndex(index)


# --- page 3: model ------------------------------------------------------------------------------
class ModelPage(QWizardPage):
    """Variant, data fraction and mask ratio: the paper's three experimental knobs."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle(strings.WIZARD_MODEL_TITLE)
        self.setSubTitle(strings.WIZARD_MODEL_SUBTITLE)
        self._group = QButtonGroup(self)
        self.variant_buttons: dict[str, QRadioButton] = {}
        variants = QGroupBox(strings.WIZARD_VARIANT_BOX)
        grid = QGridLayout(variants)
        for row, key in enumerate(VARIANT_NAMES):
            title, text = strings.WIZARD_VARIANT_TEXT.get(key, (key, ""))
            button = QRadioButton(title)
            button.setObjectName(f"variant-{key}")
            self._group.addButton(button)
            self.variant_buttons[key] = button
            grid.addWidget(button, row, 0)
            grid.addWidget(_hint(text), row, 1)
            button.toggled.connect(self._variant_changed)
        grid.setColumnStretch(1, 1)

        self.fraction_slider = QSlider(Qt.Orientation.Horizontal)
        self.fraction_slider.setRange(*slider_range("fraction", FRACTION_STEP / 100.0))
        self.fraction_slider.setPageStep(2)
        self.fraction_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.fraction_slider.setTickInterval(2)
        self.fraction_label = QLabel()
        self.fraction_label.setMinimumWidth(60)
        self.fraction_slider.valueChanged.connect(self._update_labels)

        self.mask_slider = QSlider(Qt.Orientation.Horizontal)
        self.mask_slider.setRange(*slider_range("mask_ratio", MASK_STEP))
        self.mask_slider.setPageStep(2)
        self.mask_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.mask_slider.setTickInterval(2)
        self.mask_label = QLabel()
        self.mask_label.setMinimumWidth(60)
        self.mask_slider.valueChanged.connect(self._update_labels)
        self.mask_mode_combo = QComboBox()
        for key in MASK_MODES:
            self.mask_mode_combo.addItem(strings.WIZARD_MASK_MODE_TEXT.get(key, key), key)
        self.mask_note = _hint("")

        sliders = QGroupBox(strings.WIZARD_SLIDERS_BOX)
        form = QGridLayout(sliders)
        form.addWidget(QLabel(strings.WIZARD_FRACTION_LABEL), 0, 0)
        form.addWidget(self.fraction_slider, 0, 1)
        form.addWidget(self.fraction_label, 0, 2)
        form.addWidget(_hint(strings.WIZARD_FRACTION_HINT), 1, 1, 1, 2)
        form.addWidget(QLabel(strings.WIZARD_MASK_LABEL), 2, 0)
        form.addWidget(self.mask_slider, 2, 1)
        form.addWidget(self.mask_label, 2, 2)
        form.addWidget(QLabel(strings.WIZARD_MASK_MODE_LABEL), 3, 0)
        form.addWidget(self.mask_mode_combo, 3, 1)
        form.addWidget(self.mask_note, 4, 1, 1, 2)
        form.setColumnStretch(1, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(variants)
        layout.addWidget(sliders)
        layout.addStretch(1)
        self.variant_buttons["smmt"].setChecked(True)
        self.set_fraction(preset_value("fraction"))
        self.set_mask_ratio(preset_value("mask_ratio"))

    def variant(self) -> str:
        for key, button in self.variant_buttons.items():
            if button.isChecked():
                return key
        return "smmt"

    def fraction(self) -> float:
        return round(self.fraction_slider.value() * FRACTION_STEP / 100.0, 4)

    def set_fraction(self, fraction: float) -> None:
        self.fraction_slider.setValue(round(float(fraction) * 100 / FRACTION_STEP))  # clamped to the range

    def mask_ratio(self) -> float:
        return round(self.mask_slider.value() * MASK_STEP, 4)

    def set_mask_ratio(self, ratio: float) -> None:
        self.mask_slider.setValue(round(float(ratio) / MASK_STEP))

    def masking_used(self) -> bool:
        return variant(self.variant()).masking

    def _variant_changed(self, checked: bool) -> None:
        if checked:
            self._update_labels()

    def _update_labels(self, *_args) -> None:
        self.fraction_label.setText(strings.WIZARD_FRACTION_VALUE.format(percent=self.fraction() * 100))
        self.mask_label.setText(strings.WIZARD_MASK_VALUE.format(ratio=self.mask_ratio()))
        used = self.masking_used()
        self.mask_slider.setEnabled(used)
        self.mask_mode_combo.setEnabled(used)
        self.mask_note.setText(
            strings.WIZARD_MASK_NOTE if used
            else strings.WIZARD_MASK_UNUSED.format(variant=strings.WIZARD_VARIANT_TEXT[self.variant()][0])
        )

    def values(self) -> dict:
        return {
            "variant": self.variant(),
            "fraction": self.fraction(),
            "mask_ratio": self.mask_ratio(),
            "mask_mode": self.mask_mode_combo.currentData(),
        }

    def restore(self, values: dict) -> None:
        variant = values.get("variant")
        if variant in self.variant_buttons:
            self.variant_buttons[variant].setChecked(True)
        try:
            self.set_fraction(float(values.get("fraction", self.fraction())))
            self.set_mask_ratio(float(values.get("mask_ratio", self.mask_ratio())))
        except (TypeError, ValueError):
            pass
        index = self.mask_mode_combo.findData(values.get("mask_mode"))
        if index >= 0:
            self.mask_mode_combo.setCurrentIndex(index)
        self._update_labels()


# --- page 4: run settings -----------------------------------------------------------------------
class RunPage(QWizardPage):
    """Preset, epochs, batch size, learning rate, seeds, ensemble size, device and where the run folder goes."""

    def __init__(self, parent=None, cuda_available: bool | None = None):
        super().__init__(parent)
        self.setTitle(strings.WIZARD_RUN_TITLE)
        self.setSubTitle(strings.WIZARD_RUN_SUBTITLE)
        self.preset_combo = QComboBox()
        for key in PRESETS:
            self.preset_combo.addItem(strings.WIZARD_PRESET_NAMES.get(key, key.capitalize()), key)
        self.preset_note = _hint("")
        self.preset_combo.currentIndexChanged.connect(self._preset_changed)

        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(*(int(v) for v in setting_bounds("epochs")))
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(*(int(v) for v in setting_bounds("batch_size")))
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(LR_DECIMALS)
        self.lr_spin.setRange(max(setting_bounds("lr")[0], 10.0 ** -LR_DECIMALS), LR_MAX)
        self.lr_spin.setSingleStep(0.0001)
        self.seeds_edit = QLineEdit("0")
        self.seeds_edit.setPlaceholderText(strings.WIZARD_SEEDS_PLACEHOLDER)
        self.seeds_edit.textChanged.connect(self._seeds_changed)
        self.seeds_note = QLabel()
        self.ensemble_spin = QSpinBox()
        self.ensemble_spin.setRange(*(int(v) for v in setting_bounds("ensemble")))
        self.ensemble_spin.setToolTip(strings.WIZARD_ENSEMBLE_TIP)

        # Whether CUDA exists comes from the main window's device check (torch is never imported
        # on the GUI thread): None while that check runs; set_cuda_available() gives the answer.
        self.cuda_available: bool | None = None
        self.device_combo = QComboBox()
        for key, text in strings.WIZARD_DEVICES:
            self.device_combo.addItem(text, key)
        self.set_cuda_available(cuda_available)

        self.out_edit = QLineEdit(str(runs_dir()))
        self.out_button = QPushButton(strings.WIZARD_BROWSE)
        self.out_button.clicked.connect(self._browse_out)
        self.run_name_edit = QLineEdit()
        self.run_name_edit.setPlaceholderText(strings.WIZARD_RUN_NAME_PLACEHOLDER)

        form = QFormLayout(self)
        form.addRow(strings.WIZARD_PRESET_LABEL, self.preset_combo)
        form.addRow("", self.preset_note)
        form.addRow(strings.WIZARD_EPOCHS_LABEL, self.epochs_spin)
        form.addRow(strings.WIZARD_BATCH_LABEL, self.batch_spin)
        form.addRow(strings.WIZARD_LR_LABEL, self.lr_spin)
        form.addRow(strings.WIZARD_SEEDS_LABEL, self.seeds_edit)
        form.addRow("", self.seeds_note)
        form.addRow(strings.WIZARD_ENSEMBLE_LABEL, self.ensemble_spin)
        form.addRow(strings.WIZARD_DEVICE_LABEL, self.device_combo)
        form.addRow(strings.WIZARD_RUNS_FOLDER_LABEL, _browse_row(self.out_edit, self.out_button))
        form.addRow(strings.WIZARD_RUN_NAME_LABEL, self.run_name_edit)
        self._preset_changed()
        self._seeds_changed()

    def preset(self) -> str:
        return self.preset_combo.currentData()

    def _preset_changed(self, *_args) -> None:
        preset = self.preset()
        self.epochs_spin.setValue(int(preset_value("epochs", preset)))
        self.batch_spin.setValue(int(preset_value("batch_size", preset)))
        self.lr_spin.setValue(float(preset_value("lr", preset)))
        self.preset_note.setText(strings.WIZARD_PRESET_TEXT.get(self.preset(), ""))

    def seeds(self) -> list[int]:
        return parse_seeds(self.seeds_edit.text())

    def _seeds_changed(self, *_args) -> None:
        try:
            seeds = self.seeds()
        except ValueError as error:
            self.seeds_note.setText(strings.WIZARD_SEEDS_INVALID.format(error=error))
        else:
            self.seeds_note.setText(
                strings.WIZARD_SEEDS_ONE if len(seeds) == 1 else strings.WIZARD_SEEDS_MANY.format(n=len(seeds))
            )
        self.completeChanged.emit()

    def device(self) -> str:
        return self.device_combo.currentData()

    def set_cuda_available(self, available: bool | None) -> None:
        """Offer the GPU only when there is one (None: not known yet, shown as "checking…")."""
        self.cuda_available = available
        item = self.device_combo.model().item(self.device_combo.findData("cuda"))
        item.setEnabled(bool(available))
        item.setText(dict(strings.WIZARD_DEVICES)["cuda"] if available else
                     strings.WIZARD_CUDA_CHECKING if available is None else strings.WIZARD_CUDA_UNAVAILABLE)
        if not available and self.device() == "cuda":
            self.device_combo.setCurrentIndex(self.device_combo.findData("auto"))

    def isComplete(self) -> bool:  # noqa: N802 - Qt API
        try:
            self.seeds()
        except ValueError:
            return False
        return bool(self.out_edit.text().strip())

    def values(self) -> dict:
        return {
            "preset": self.preset(),
            "epochs": self.epochs_spin.value(),
            "batch_size": self.batch_spin.value(),
            "lr": self.lr_spin.value(),
            "seeds": self.seeds_edit.text().strip(),
            "ensemble": self.ensemble_spin.value(),
            "device": self.device(),
            "out": self.out_edit.text().strip(),
            "run_name": self.run_name_edit.text().strip(),
        }

    def restore(self, values: dict) -> None:
        index = self.preset_combo.findData(values.get("preset"))
        if index >= 0:
            self.preset_combo.setCurrentIndex(index)
        try:
            self.epochs_spin.setValue(int(values.get("epochs", self.epochs_spin.value())))
            self.batch_spin.setValue(int(values.get("batch_size", self.batch_spin.value())))
            self.lr_spin.setValue(float(values.get("lr", self.lr_spin.value())))
            self.ensemble_spin.setValue(int(values.get("ensemble", self.ensemble_spin.value())))
        except (TypeError, ValueError):
            pass
        if values.get("seeds"):
            self.seeds_edit.setText(str(values["seeds"]))
        device = values.get("device")
        index = self.device_combo.findData(device)
        if index >= 0 and (device != "cuda" or self.cuda_available):
            self.device_combo.setCurrentIndex(index)
        if values.get("out"):
            self.out_edit.setText(str(values["out"]))
        self.run_name_edit.setText(str(values.get("run_name", "")))

    def _browse_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, strings.WIZARD_RUNS_FOLDER_DIALOG, self.out_edit.text().strip())
        if folder:
            self.out_edit.setText(folder)
