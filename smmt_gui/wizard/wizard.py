"""`TrainingWizard`: four pages that build a validated `TrainConfig` (one per seed).

Why a wizard: a first-time user should meet the decisions in the order they matter (which data,
which clinical inputs and why MMSE/CDR are circular, which model, how long), and never see a
half-valid configuration: the last page's button is only enabled when `TrainConfig.build`
would accept the result. The last values are remembered in QSettings (key `wizard/last_values`).
"""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox, QWizard

from smmt_core.errors import SMMTError
from smmt_core.train.config import TrainConfig
from smmt_gui import strings
from smmt_gui.settings import WIZARD_PREFIX, open_settings
from smmt_gui.wizard.pages import DataPage, FeaturesPage, ModelPage, RunPage

# One JSON object {"data": {...}, "features": {...}, "model": {...}, "run": {...}} under the wizard's settings prefix.
SETTINGS_KEY = WIZARD_PREFIX + "last_values"


class TrainingWizard(QWizard):
    """Data → Features → Model → Run settings; `config()` / `configs()` read the result."""

    def __init__(self, parent=None, settings: QSettings | None = None, cuda_available: bool | None = None):
        super().__init__(parent)
        self.setWindowTitle(strings.WIZARD_TITLE)
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setButtonText(QWizard.WizardButton.FinishButton, strings.WIZARD_FINISH)
        self.setMinimumSize(640, 560)
        self._settings = settings if settings is not None else open_settings()
        self.data_page = DataPage(self)
        self.features_page = FeaturesPage(self)
        self.model_page = ModelPage(self)
        self.run_page = RunPage(self, cuda_available=cuda_available)
        self._pages = {"data": self.data_page, "features": self.features_page, "model": self.model_page, "run": self.run_page}
        for page in self._pages.values():
            self.addPage(page)
        self.restore_settings()

    # --- the result ----------------------------------------------------------------------------
    def configs(self) -> list[TrainConfig]:
        """One validated TrainConfig per seed (ConfigError when a value is out of range)."""
        # The pages' values are flat settings; the config routes each to its section and validates.
        run = dict(self.run_page.values())
        preset = run.pop("preset")
        run.pop("seeds")
        base = run.pop("run_name")
        shared = {**run, **self.model_page.values(), **self.features_page.values(),
                  "dataset": self.data_page.data_value(), "adnimerge": self.data_page.adnimerge_value()}
        seeds = self.run_page.seeds()
        configs = []
        for seed in seeds:
            name = f"{base}-seed{seed}" if base and len(seeds) > 1 else base
            configs.append(TrainConfig.build(preset, **shared, run_name=name, seed=seed))
        return configs

    def config(self) -> TrainConfig:
        """The configuration of the first (or only) seed."""
        return self.configs()[0]

    # --- remembering -------------------------------------------------------------------------
    def values(self) -> dict:
        return {key: page.values() for key, page in self._pages.items()}

    def save_settings(self) -> None:
        self._settings.setValue(SETTINGS_KEY, json.dumps(self.values()))
        self._settings.sync()

    def restore_settings(self) -> None:
        raw = self._settings.value(SETTINGS_KEY, "")
        try:
            values = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            values = {}  # a damaged entry: start from the defaults
        if not isinstance(values, dict):
            values = {}
        for key, page in self._pages.items():
            if isinstance(values.get(key), dict):
                page.restore(values[key])

    # --- QWizard -------------------------------------------------------------------------------
    def validateCurrentPage(self) -> bool:  # noqa: N802 - Qt API
        if self.currentPage() is self.run_page:
            try:
                self.configs()
            except (SMMTError, ValueError) as error:
                QMessageBox.warning(self, strings.WIZARD_CHECK_SETTINGS, str(error))
                return False
        return super().validateCurrentPage()

    def accept(self) -> None:
        self.save_settings()
        self.data_page.stop_workers()
        super().accept()

    def done(self, result: int) -> None:
        self.data_page.stop_workers()
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.data_page.stop_workers()
        super().closeEvent(event)
