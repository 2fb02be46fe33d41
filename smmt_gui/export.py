"""Export a prediction report: a PNG of the views (with the cluster overlay), the numbers as CSV
and JSON, and a one-page PDF (Qt's own PDF writer), each naming the model, the data and the
research-use disclaimer.

Every file is written to a temporary name in the target folder and the files are renamed into
place only once all of them are written, so a failed export leaves no half-written report behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QFont, QGuiApplication, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter

from smmt_core import __version__
from smmt_core.errors import SMMTError
from smmt_core.fileio import new_file_mode, temporary_sibling
from smmt_gui import strings

FORMATS = ("png", "csv", "json", "pdf")


class ExportError(SMMTError):
    """The report could not be written (folder missing or not writable, nothing to export)."""


@dataclass
class ReportContext:
    """What the report says about where the prediction came from."""

    model_name: str = ""
    model_dir: str = ""
    data_path: str = ""
    synthetic_data: bool = False
    synthetic_model: bool = False
    device: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return self.synthetic_data or self.synthetic_model


def report_dict(prediction, context: ReportContext) -> dict:
    """Everything the report states, JSON-friendly."""
    return {
        "report": strings.EXPORT_TITLE,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "disclaimer": strings.DISCLAIMER,
        "synthetic": context.synthetic,
        "model": {"name": context.model_name, "folder": context.model_dir,
                  "trained_on_synthetic_data": context.synthetic_model},
        "data": {"path": context.data_path, "synthetic": context.synthetic_data},
        "prediction": prediction.to_dict(),
        "software": {"smmt_studio": __version__, "python": platform.python_version(), "device": context.device},
        **({"extra": context.extra} if context.extra else {}),
    }


def report_rows(prediction, context: ReportContext) -> list[tuple[str, str, str]]:
    """(section, name, value) rows: the CSV body and the PDF table."""
    rows = [
        ("subject", "id", prediction.subject_id),
        ("prediction", "class", prediction.prediction),
    ]
    rows += [("probability", name, f"{p:.4f}") for name, p in prediction.probabilities.items()]
    rows += [("modality_used", m, "yes") for m in prediction.modalities_used]
    rows += [("modality_missing", m, "yes") for m in prediction.modalities_missing]
    rows += [("contribution", m, f"{v:.4f}") for m, v in prediction.contributions.items()]
    rows += [("warning", str(i + 1), w) for i, w in enumerate(prediction.warnings)]
    intake = getattr(prediction, "intake", None)  # quality control of the intake (registration to MNI)
    if intake:
        rows += [("qc", key, str(intake[key])) for key in ("qc", "score", "steps", "reason", "picture")
                 if intake.get(key) is not None]
    rows += [
        ("model", "name", context.model_name),
        ("model", "folder", context.model_dir),
        ("model", "trained_on_synthetic_data", str(bool(context.synthetic_model)).lower()),
        ("data", "path", context.data_path),
        ("data", "synthetic", str(bool(context.synthetic_data)).lower()),
        ("software", "smmt_studio", __version__),
        ("disclaimer", "", strings.DISCLAIMER),
    ]
    return rows


def _write_all(jobs: list[tuple[Path, object]]) -> None:
    """Write every (target, write) pair to a temp file beside its target, then rename them all.

    All or nothing: when one write fails, every temp file is removed and no target is touched.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for target, write in jobs:
            tmp = temporary_sibling(target, ".part")
            temps.append((tmp, target))
            write(tmp)
        mode = new_file_mode()  # temp files are private; a report is an ordinary document
        for tmp, target in temps:
            os.chmod(tmp, mode)
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _csv_text(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "name", "value"])
    writer.writerows(rows)
    return buffer.getvalue()


def _write_png(image: QImage):
    def write(path: Path) -> None:
        if not image.save(str(path), "PNG"):
            raise ExportError("could not encode the PNG image", path)
    return write


def _write_pdf(prediction, context: ReportContext, image: QImage | None):
    def write(path: Path) -> None:
        writer = QPdfWriter(str(path))
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
        writer.setPageMargins(QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter)
        writer.setResolution(150)
        writer.setTitle(strings.EXPORT_TITLE)
        writer.setCreator(f"SMMT Studio {__version__}")
        painter = QPainter()
        if not painter.begin(writer):
            raise ExportError("could not start the PDF writer", path)
        try:
            _paint_report(painter, writer.width(), writer.height(), prediction, context, image)
        finally:
            painter.end()
    return write


def _paint_report(painter: QPainter, width: int, height: int, prediction, context, image) -> None:
    y = 0.0

    def text(value: str, size: float, bold: bool = False, color=Qt.GlobalColor.black, wrap: bool = True) -> None:
        nonlocal y
        font = QFont("Sans Serif")
        font.setPointSizeF(size)
        font.setBold(bold)
        painter.setFont(font)
        painter.setPen(color)
        flags = int(Qt.AlignmentFlag.AlignLeft) | (int(Qt.TextFlag.TextWordWrap) if wrap else 0)
        rect = painter.boundingRect(QRectF(0, y, width, height - y), flags, value)
        painter.drawText(rect, flags, value)
        y += rect.height() + 6

    text(strings.EXPORT_TITLE, 16, bold=True)
    text(strings.DISCLAIMER, 9, bold=True, color=Qt.GlobalColor.darkRed)
    if context.synthetic:
        text(f"{strings.SYNTHETIC_BADGE}: {strings.SYNTHETIC_TOOLTIP}", 9, bold=True, color=Qt.GlobalColor.darkMagenta)
    label = strings.LABEL_NAMES.get(prediction.prediction, prediction.prediction)
    text(f"Subject {prediction.subject_id}: {label}", 13, bold=True)
    probs = " · ".join(f"{k} {v * 100:.1f}%" for k, v in prediction.probabilities.items())
    text(f"Probabilities: {probs}", 10)
    text(f"Modalities used: {', '.join(prediction.modalities_used) or 'none'}"
         + (f"; missing: {', '.join(prediction.modalities_missing)}" if prediction.modalities_missing else ""), 10)
    if prediction.contributions:
        text("Contributions (logit change when left out): "
             + ", ".join(f"{k} {v:+.3f}" for k, v in prediction.contributions.items()), 10)
    for warning in prediction.warnings:
        text(f"Warning: {warning}", 9, color=Qt.GlobalColor.darkYellow)
    text(f"Model: {context.model_name} ({context.model_dir})", 9)
    text(f"Data: {context.data_path}", 9)
    text(f"SMMT Studio {__version__} · {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", 8,
         color=Qt.GlobalColor.darkGray)
    if image is not None and not image.isNull():
        room = height - y - 10
        if room > 50:
            scaled = image.scaled(int(width), int(room), Qt.AspectRatioMode.KeepAspectRatio,
                                  Qt.TransformationMode.SmoothTransformation)
            painter.drawImage(QRectF(0, y + 6, scaled.width(), scaled.height()), scaled)


def export_report(base: str | Path, prediction, image: QImage | None, context: ReportContext | None = None,
                  formats=FORMATS) -> list[Path]:
    """Write `<base>.png/.csv/.json/.pdf` (those in `formats`); returns the paths written.

    base: path without extension (an extension given is dropped). image: the views to include
    (e.g. `viewer.grab().toImage()`); without one the PNG is skipped and the PDF has no figure.
    Raises ExportError naming the folder or file when it cannot be written.
    """
    if prediction is None:
        raise ExportError(strings.ERROR_NO_PREDICTION)
    context = context or ReportContext(model_name=prediction.model_name, synthetic_model=prediction.synthetic_model)
    base = Path(base).expanduser()
    if base.suffix.lower().lstrip(".") in FORMATS:
        base = base.with_suffix("")
    folder = base.parent
    if not folder.is_dir():
        raise ExportError("the folder does not exist", folder)
    if not os.access(folder, os.W_OK):
        raise ExportError("the folder is not writable", folder)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ExportError(f"unknown report formats: {', '.join(sorted(unknown))}")
    if "pdf" in formats and QGuiApplication.instance() is None:
        raise ExportError("the PDF report needs a running Qt application (QApplication)")
    jobs = {
        "json": lambda p: _write_text(p, json.dumps(report_dict(prediction, context), indent=2, default=str) + "\n"),
        "csv": lambda p: _write_text(p, _csv_text(report_rows(prediction, context))),
        "pdf": _write_pdf(prediction, context, image),
    }
    if image is not None and not image.isNull():
        jobs["png"] = _write_png(image)
    planned = [(base.with_name(f"{base.name}.{fmt}"), jobs[fmt]) for fmt in FORMATS if fmt in formats and fmt in jobs]
    try:
        _write_all(planned)
    except OSError as error:
        raise ExportError(f"could not write the report: {error.strerror or error}", folder) from error
    return [target for target, _ in planned]
