"""The cohort panel: the subjects of an opened dataset, with their label, modalities and the
model's prediction once there is one. Selecting a row shows that subject.

A `QAbstractTableModel` over the cohort's `Subject` list, so a dataset of thousands of scans costs
nothing to show; predictions are added per scan key as they arrive.
"""

from __future__ import annotations

from collections import Counter

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from smmt_core.data.subject import ALL_MODALITIES
from smmt_gui import strings

SHORT_MODALITY = {"mri": "MRI", "clinical": "clin", "categorical": "cat"}
PREDICTION_COLUMN, PROBABILITY_COLUMN = 4, 5  # see strings.COHORT_COLUMNS


class CohortModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.subjects: list = []
        # scan key -> (label, probability); label None: nothing was predicted (every modality off)
        self.predictions: dict[str, tuple[str | None, float]] = {}
        self.switched_off: dict[str, tuple[str, ...]] = {}  # scan key -> modalities the user had switched off

    def set_subjects(self, subjects) -> None:
        self.beginResetModel()
        self.subjects = list(subjects)
        self.predictions, self.switched_off = {}, {}
        self.endResetModel()

    def set_prediction(self, key: str, label: str | None, probability: float = float("nan"),
                       switched_off=()) -> None:
        self.predictions[key] = (label, probability)
        self.switched_off[key] = tuple(switched_off)
        for row, subject in enumerate(self.subjects):
            if subject.key == key:
                self.dataChanged.emit(self.index(row, PREDICTION_COLUMN), self.index(row, PROBABILITY_COLUMN))

    def clear_predictions(self) -> None:
        """Forget every prediction (they came from a model that is no longer loaded)."""
        if self.predictions:
            self.predictions.clear()
            self.switched_off.clear()
            if self.subjects:
                self.dataChanged.emit(self.index(0, PREDICTION_COLUMN),
                                      self.index(len(self.subjects) - 1, PROBABILITY_COLUMN))

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.subjects)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(strings.COHORT_COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt API
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return strings.COHORT_COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:  # short headers say in full what they hold
            return strings.COHORT_COLUMN_TIPS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        subject = self.subjects[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.UserRole:
            return subject
        prediction = self.predictions.get(subject.key)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(subject, col, prediction)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if col == 0:
            return subject.subject_id
        if col == 1:
            return subject.session or ""
        if col == 2:
            return subject.label or "?"
        if col == 3:
            return " ".join(SHORT_MODALITY[m.value] for m in ALL_MODALITIES if subject.has(m))
        if prediction is None:
            return ""
        label, probability = prediction
        if label is None:
            return strings.COHORT_NOTHING_PREDICTED if col == PREDICTION_COLUMN else ""
        if col == PREDICTION_COLUMN:
            return label + (strings.COHORT_REDUCED_MARK if self.switched_off.get(subject.key) else "")
        return f"{probability * 100:.0f}%"

    def _tooltip(self, subject, col: int, prediction) -> str | None:
        """A prediction made with modalities switched off says so, the mark alone is not enough."""
        if col in (PREDICTION_COLUMN, PROBABILITY_COLUMN) and prediction is not None:
            label, switched_off = prediction[0], self.switched_off.get(subject.key)
            if label is None:
                return strings.COHORT_NOTHING_PREDICTED_TIP
            if switched_off:
                names = ", ".join(strings.MODALITY_NAMES.get(m, m).split(" (")[0] for m in switched_off)
                return strings.COHORT_REDUCED_TIP.format(off=names)
        return "\n".join(subject.notes) if subject.notes else None


class CohortPanel(QWidget):
    """Table of subjects; `subject_selected(Subject)` when the user picks one."""

    subject_selected = Signal(object)
    predict_all_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cohort = None
        self.model = CohortModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.summary = QLabel(strings.COHORT_EMPTY)
        self.summary.setWordWrap(True)
        self.synthetic_badge = QLabel(strings.SYNTHETIC_BADGE)
        self.synthetic_badge.setObjectName("syntheticBadge")
        self.synthetic_badge.setToolTip(strings.SYNTHETIC_TOOLTIP)
        self.synthetic_badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.synthetic_badge.setVisible(False)
        self.hint = QLabel(strings.DROP_HINT)
        self.hint.setObjectName("dropHint")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.predict_all_button = QPushButton(strings.COHORT_PREDICT_ALL)
        self.predict_all_button.setToolTip(strings.COHORT_PREDICT_ALL_TIP)
        self.predict_all_button.setEnabled(False)
        self.predict_all_button.clicked.connect(self.predict_all_requested.emit)
        # Every column as wide as its contents except the subject id, which takes what is left (and
        # elides when the dock is narrow): the prediction columns on the right stay in view at the
        # default window width instead of scrolling off.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        header.setTextElideMode(Qt.TextElideMode.ElideRight)  # never a clipped middle ("ıbje")
        # The stretched subject id never narrower than its header (the others fit their contents).
        margin = header.style().pixelMetric(header.style().PixelMetric.PM_HeaderMargin)
        header.setMinimumSectionSize(header.fontMetrics().horizontalAdvance(strings.COHORT_COLUMNS[0]) + 2 * margin + 4)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # sub-ADNI…0295: both ends stay readable
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.selectionModel().currentRowChanged.connect(self._on_row)
        self.table.setColumnHidden(1, True)  # no sessions until a dataset that has them
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.synthetic_badge)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.predict_all_button)
        layout.addWidget(self.hint)

    def _show_subjects(self, subjects) -> None:
        self.model.set_subjects(subjects)
        self.table.setColumnHidden(1, not any(s.session for s in subjects))

    def set_cohort(self, cohort) -> None:
        self.cohort = cohort
        self._show_subjects(cohort.subjects if cohort is not None else [])
        self.synthetic_badge.setVisible(bool(cohort is not None and cohort.synthetic))
        if cohort is None:
            self.summary.setText(strings.COHORT_EMPTY)
            return
        counts = Counter(s.label or "unlabelled" for s in cohort.subjects)
        labels = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        name = cohort.name or cohort.root.name
        self.summary.setText(strings.COHORT_SUMMARY.format(name=name, n=len(cohort), labels=labels))

    def set_single_subject(self, subject) -> None:
        """A lone subject (dropped folder or file) still appears in the table."""
        self.cohort = None
        self._show_subjects([subject])
        self.synthetic_badge.setVisible(bool(subject.synthetic))
        self.summary.setText(subject.key)

    def select_row(self, row: int) -> None:
        index = self.proxy.index(row, 0)
        if index.isValid():
            self.table.setCurrentIndex(index)

    def set_prediction(self, key: str, label: str | None, probability: float = float("nan"),
                       switched_off=()) -> None:
        """Show a scan's prediction; `label` None: nothing was predicted (every modality off);
        `switched_off`: the modalities the user had switched off, marked in the row."""
        self.model.set_prediction(key, label, probability, switched_off)

    def clear_predictions(self) -> None:
        self.model.clear_predictions()

    def subjects(self) -> list:
        return list(self.model.subjects)

    def _on_row(self, current, _previous) -> None:
        if current.isValid():
            subject = self.proxy.data(current, Qt.ItemDataRole.UserRole)
            if subject is not None:
                self.subject_selected.emit(subject)
