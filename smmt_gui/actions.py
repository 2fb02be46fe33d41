"""The main window's actions: its menus, toolbar and shortcuts, and what they do.

`install(window)` builds the QActions (kept on the window as `act_*`, where the tests and the
docs trigger them), the toolbar (with the model selector, the device label and the badges) and the
menus. The handlers here only ask the user something (a file dialog, the training wizard, the About
box) or put something together (the report, the diagnostics) and then call the window's public
methods, which do the work. They are kept apart from the window so that the window only lays out
its widgets and draws what the session and the controller say; one module for all actions, as
each is a few lines (FSLeyes keeps one file per action).
"""

from __future__ import annotations

import html
import platform
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QFileDialog, QLabel, QMessageBox, QSizePolicy, QToolBar, QWidget

from smmt_core import __version__
from smmt_core.errors import SMMTError
from smmt_gui import shortcuts, strings
from smmt_gui.export import ReportContext, export_report
from smmt_gui.settings import runs_dir
from smmt_gui.workers import describe_error

T1_FILTER = "T1 images (*.nii *.nii.gz *.mgz *.hdr *.img);;All files (*)"


def install(window) -> None:
    """The window's actions, toolbar and menus (its docks and viewer exist already)."""
    _build_actions(window)
    _build_toolbar(window)
    _build_menus(window)


def _action(window, text: str, slot, shortcut: str | None = None) -> QAction:
    action = QAction(text, window)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(lambda _checked=False: slot())
    window.addAction(action)
    return action


def _build_actions(window) -> None:
    w = window
    w.act_open_folder = _action(w, strings.ACTION_OPEN_FOLDER, lambda: choose_folder(w), shortcuts.OPEN_FOLDER)
    w.act_open_file = _action(w, strings.ACTION_OPEN_FILE, lambda: choose_file(w), shortcuts.OPEN_FILE)
    w.act_open_model = _action(w, strings.ACTION_OPEN_MODEL, lambda: choose_model(w), shortcuts.OPEN_MODEL)
    w.act_train = _action(w, strings.ACTION_TRAIN, w.open_training_wizard, shortcuts.TRAIN)
    w.act_demo_data = _action(w, strings.ACTION_DEMO_DATA, w.open_demo_cohort)
    w.act_demo_train = _action(w, strings.ACTION_DEMO_TRAIN, lambda: train_demo_model(w))
    w.act_export = _action(w, strings.ACTION_EXPORT, lambda: choose_export(w), shortcuts.EXPORT)
    w.act_export.setEnabled(False)
    w.act_reset = _action(w, strings.ACTION_RESET_VIEW, w.viewer.reset_view, shortcuts.RESET_VIEW)
    w.act_about = _action(w, strings.ACTION_ABOUT, w.show_about)
    w.act_diagnostics = _action(w, strings.ACTION_DIAGNOSTICS, lambda: copy_diagnostics(w))
    w.act_quit = _action(w, strings.ACTION_QUIT, w.close, shortcuts.QUIT)
    w.act_log = w.log_dock.toggleViewAction()
    w.act_log.setText(strings.ACTION_LOG)
    w.act_log.setShortcut(QKeySequence(shortcuts.TOGGLE_LOG))
    for index, key in enumerate((shortcuts.TAB_VIEWER, shortcuts.TAB_TRAINING, shortcuts.TAB_ROBUSTNESS)):
        _action(w, f"tab {index + 1}", lambda i=index: w.tabs.setCurrentIndex(i), key)
    for name, key in (("mri", shortcuts.TOGGLE_MRI), ("clinical", shortcuts.TOGGLE_CLINICAL),
                      ("categorical", shortcuts.TOGGLE_CATEGORICAL)):
        _action(w, f"toggle {name}", lambda n=name: toggle_modality(w, n), key)


def _build_toolbar(window) -> None:
    bar = QToolBar("Main")
    bar.setObjectName("mainToolbar")
    bar.setMovable(False)
    bar.setIconSize(QSize(18, 18))
    bar.addAction(window.act_open_folder)
    bar.addAction(window.act_open_file)
    bar.addAction(window.act_train)
    bar.addSeparator()
    bar.addWidget(QLabel(f" {strings.MODEL_LABEL} "))
    window.model_box = QComboBox()
    window.model_box.setObjectName("modelSelector")
    window.model_box.setMinimumWidth(220)
    window.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    window.model_box.activated.connect(lambda index: _on_model_chosen(window, index))
    bar.addWidget(window.model_box)
    bar.addAction(window.act_open_model)
    window.device_label = QLabel(strings.DEVICE_LABEL.format(device="…"))
    window.device_label.setObjectName("deviceLabel")
    bar.addWidget(window.device_label)
    bar.addSeparator()
    bar.addAction(window.act_export)
    spacer = QWidget()
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    bar.addWidget(spacer)
    window.synthetic_badge = QLabel(strings.SYNTHETIC_BADGE)
    window.synthetic_badge.setObjectName("syntheticBadge")
    window.synthetic_badge.setToolTip(strings.SYNTHETIC_TOOLTIP)
    window.synthetic_badge_action = bar.addWidget(window.synthetic_badge)
    window.research_badge = QLabel(strings.RESEARCH_BADGE)
    window.research_badge.setObjectName("researchBadge")
    window.research_badge.setToolTip(strings.RESEARCH_TOOLTIP)
    bar.addWidget(window.research_badge)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    window.toolbar = bar


def _build_menus(window) -> None:
    menu = window.menuBar().addMenu(strings.MENU_FILE)
    for action in (window.act_open_folder, window.act_open_file, window.act_open_model, window.act_demo_data):
        menu.addAction(action)
    window.recent_folders_menu = menu.addMenu(strings.MENU_RECENT_FOLDERS)
    window.recent_models_menu = menu.addMenu(strings.MENU_RECENT_MODELS)
    menu.addSeparator()
    menu.addAction(window.act_train)
    menu.addAction(window.act_demo_train)
    menu.addAction(window.act_export)
    menu.addSeparator()
    menu.addAction(window.act_quit)
    view = window.menuBar().addMenu(strings.MENU_VIEW)
    view.addAction(window.act_reset)
    for dock in (window.cohort_dock, window.prediction_dock):
        view.addAction(dock.toggleViewAction())
    view.addAction(window.act_log)
    help_menu = window.menuBar().addMenu(strings.MENU_HELP)
    help_menu.addAction(window.act_diagnostics)
    help_menu.addAction(window.act_about)
    fill_recent_menus(window)


def fill_recent_menus(window) -> None:
    """The File menu's recent folders and models, from the settings."""
    settings = window.settings
    for menu, items, slot in ((window.recent_folders_menu, settings.recent_folders(), window.open_path),
                              (window.recent_models_menu, settings.recent_models(), window.load_model)):
        menu.clear()
        for item in items:
            action = menu.addAction(item)
            action.triggered.connect(lambda _checked=False, p=item, s=slot: s(p))
        menu.setEnabled(bool(items))


def fill_model_box(window, runs) -> None:
    """The model selector: the runs found (marked when stopped, failed or synthetic), the recent
    models, and the loaded one, which is the current entry ("(no model)" when none is)."""
    predictor = window.session.predictor
    current = str(predictor.run_dir) if predictor is not None else None
    entries: list[tuple[str, str]] = []
    seen = set()
    for run in runs:
        if run.has_best:
            label = run.name
            if run.status and run.status != "finished":
                label += f"  [{run.status}]"
            if run.synthetic:
                label += "  [SYNTHETIC]"
            entries.append((label, str(run.run_dir)))
            seen.add(str(Path(run.run_dir).resolve()))
    for path in window.settings.recent_models():
        if path not in seen and Path(path).is_dir():
            entries.append((Path(path).name, path))
            seen.add(path)
    if current and str(Path(current).resolve()) not in seen:
        entries.insert(0, (predictor.run_name, current))
    box = window.model_box
    box.blockSignals(True)
    box.clear()
    box.addItem(strings.NO_MODEL, "")
    for label, path in entries:
        box.addItem(label, path)
        box.setItemData(box.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
    index = box.findData(current) if current else 0
    box.setCurrentIndex(max(index, 0))
    box.blockSignals(False)


def _on_model_chosen(window, index: int) -> None:
    path = window.model_box.itemData(index)
    predictor = window.session.predictor
    if path and (predictor is None or str(predictor.run_dir) != path):
        window.load_model(path)


# --- opening -------------------------------------------------------------------------------------
def choose_folder(window) -> None:
    start = window.settings.get("recent/last_open_dir", str(Path.home()))
    path = QFileDialog.getExistingDirectory(window, strings.ACTION_OPEN_FOLDER, start)
    if path:
        window.open_path(path, how="folder")


def choose_file(window) -> None:
    start = window.settings.get("recent/last_open_dir", str(Path.home()))
    path, _ = QFileDialog.getOpenFileName(window, strings.ACTION_OPEN_FILE, start, T1_FILTER)
    if path:
        window.open_path(path, how="file")


def choose_model(window) -> None:
    path = QFileDialog.getExistingDirectory(window, strings.ACTION_OPEN_MODEL, str(runs_dir()))
    if path:
        window.load_model(path)


def dropped_path(window, urls) -> str | None:
    """The one local file or folder dropped on the window, or None after saying why it cannot be opened."""
    if len(urls) != 1:
        window.show_error(strings.ERROR_DROP.format(message=strings.ERROR_DROP_MANY.format(n=len(urls))))
        return None
    if not urls[0].isLocalFile():
        window.show_error(strings.ERROR_DROP.format(message=strings.ERROR_DROP_NOT_LOCAL))
        return None
    return urls[0].toLocalFile()


def run_intake(window, path: str, subject, raw) -> None:
    """A raw scan (DICOM, native space, skull on): the intake dialog shows each step, can be
    cancelled, and ends with the QC picture beside the prediction; then the subject opens as usual
    (its intake is cached, so the viewer and the prediction come at once)."""
    from smmt_gui.intake_dialog import IntakeDialog

    predictor = window.session.predictor
    dialog = IntakeDialog(raw, predict=lambda p: predictor.predict(p), settings=predictor.intake_settings,
                          parent=window)  # brain extraction on the model's device
    dialog.completed.connect(lambda result, _prediction: _on_intake_done(window, path, subject, result))
    dialog.start()
    dialog.open()
    window.intake_dialog = dialog


def _on_intake_done(window, path: str, subject, result) -> None:
    window.settings.add_recent_folder(path)
    if not result.qc.ok:  # refused: say why, rather than predict on the raw scan and advise registering it
        window.show_error(strings.INTAKE_REFUSED.format(name=Path(path).name, reason=result.qc.reason))
        return
    window.session.set_single_subject(subject, path)


def toggle_modality(window, name: str) -> None:
    box = window.prediction_panel.toggles[name]
    if box.isEnabled():
        box.toggle()


# --- training ------------------------------------------------------------------------------------
def train_demo_model(window) -> None:
    from smmt_core.train.config import TrainConfig

    window.start_training(TrainConfig.build("demo", dataset="demo", out=str(runs_dir())))


def open_training_wizard(window) -> None:
    try:
        from smmt_gui.wizard import TrainingWizard
    except Exception as error:  # noqa: BLE001 - a broken optional view must not stop the app
        window.show_error(strings.ERROR_TRAINING_UNAVAILABLE.format(message=error))
        return
    # The window already knows whether CUDA exists (None while its check runs; the wizard hears
    # the answer then): the wizard never imports torch on the GUI thread.
    wizard = TrainingWizard(window, settings=window.settings.qsettings, cuda_available=window.session.cuda_available)
    wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    wizard.accepted.connect(lambda w=wizard: _train_from_wizard(window, w))
    wizard.finished.connect(lambda _result: setattr(window, "wizard", None))
    window.wizard = wizard
    wizard.open()


def _train_from_wizard(window, wizard) -> None:
    try:
        configs = wizard.configs()  # one per seed
    except Exception as error:  # noqa: BLE001 - ConfigError: tell the user
        window.show_error(describe_error(error))
        return
    window.start_training(configs)


# --- export --------------------------------------------------------------------------------------
def report_context(window) -> ReportContext:
    predictor, subject, data_path = window.predictor, window.subject, window.data_path
    return ReportContext(
        model_name=predictor.run_name if predictor else "",
        model_dir=str(predictor.run_dir) if predictor else "",
        data_path=str(subject.t1_path or data_path) if subject else data_path,
        synthetic_data=window.session.data_is_synthetic(),
        synthetic_model=bool(predictor is not None and predictor.synthetic),
        device=window.device_label.text(),
    )


def choose_export(window) -> None:
    prediction = window.last_prediction
    if prediction is None:
        window.show_error(strings.ERROR_NO_PREDICTION)
        return
    start = str(Path(window.settings.get("recent/last_export_dir", str(Path.home()))) /
                f"smmt-report-{prediction.subject_id}")
    path, _ = QFileDialog.getSaveFileName(window, strings.EXPORT_DIALOG, start, strings.EXPORT_FILTER)
    if path:
        export_report_to(window, path)


def export_report_to(window, base) -> list[Path]:
    """Write the PNG/CSV/JSON/PDF report of the current prediction next to `base`."""
    try:
        files = export_report(base, window.last_prediction, window.viewer.render_views(), report_context(window))
    except SMMTError as error:
        window.show_error(strings.ERROR_EXPORT.format(message=error))
        return []
    folder = Path(base).expanduser().parent
    window.settings.set("recent/last_export_dir", str(folder))
    names = ", ".join(p.name for p in files)
    window.statusBar().showMessage(strings.STATUS_EXPORTED.format(files=names), 8000)
    # Where the files went, with a link that opens the folder, so the user need not look for them.
    link = QUrl.fromLocalFile(str(folder.resolve())).toString()
    window.message_bar.show_message(strings.EXPORTED_NOTICE.format(
        files=html.escape(names), url=html.escape(link, quote=True), folder=html.escape(str(folder))),
        error=False, rich=True)
    return files


# --- help ----------------------------------------------------------------------------------------
def copy_diagnostics(window) -> str:
    """One click: versions, device, threads, folders and the last log lines on the clipboard, for a
    bug report (the text is smmt_core.diagnostics'; torch is never imported for it)."""
    from PySide6 import __version__ as qt_version
    from PySide6.QtGui import QGuiApplication

    from smmt_core.diagnostics import diagnostics_text

    text = diagnostics_text(qt_version=qt_version, data_folder=window.session.data_path, runs_folder=runs_dir(),
                            log_lines=window.log_panel.lines())
    QGuiApplication.clipboard().setText(text)
    window.statusBar().showMessage(strings.STATUS_DIAGNOSTICS_COPIED, 5000)
    return text


def show_about(window) -> QMessageBox:
    from importlib.metadata import PackageNotFoundError, version

    from PySide6 import __version__ as qt_version

    try:  # the installed version, without importing torch on the GUI thread
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "not installed"
    box = QMessageBox(QMessageBox.Icon.Information, strings.ACTION_ABOUT,
                      strings.ABOUT_TEXT.format(version=__version__, python=platform.python_version(),
                                                torch=torch_version, qt=qt_version, mni=strings.MNI_NOTICE),
                      QMessageBox.StandardButton.Ok, window)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
