"""Export a prediction report: a PNG of the views (with the cluster overlay), the numbers as CSV
and JSON, and a one-page PDF (Qt's own PDF writer), each naming the model, the data and the
research-use disclaimer (the PNG in a band below the views). What the report says is `smmt_core.report`'s (the same as
`smmt predict --report`); this module adds the pictures and the PDF. A subject that went through
the intake also gets its QC picture (the MNI152 brain outline over the registered scan), in the
PDF and as `<base>.qc.png`, as on the command line.

Every file is written to a temporary name in the target folder and the files are renamed into
place only once all of them are written, so a failed export leaves no half-written report behind.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QFont, QGuiApplication, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter

from smmt_core import __version__
from smmt_core.errors import SMMTError
from smmt_core.fileio import write_all_or_nothing
from smmt_core.report import (  # noqa: F401 (ReportContext, report_dict, report_rows: re-exported)
    ReportContext,
    ReportError,
    check_report_folder,
    common_report_jobs,
    qc_picture,
    report_dict,
    report_file,
    report_lines,
    report_rows,
)
from smmt_gui import strings

FORMATS = ("png", "csv", "json", "pdf", "qc")


class ExportError(SMMTError):
    """The report could not be written (folder missing or not writable, nothing to export)."""


def with_disclaimer(image: QImage, prediction, context: ReportContext) -> QImage:
    """The views with a band below naming the subject, the model and the research-use disclaimer
    (and SYNTHETIC when it is): a PNG shared on its own must carry them like every other file."""
    lines = [(strings.EXPORT_PNG_CAPTION.format(subject=prediction.subject_id, label=prediction.verdict,
                                                model=context.model_name or prediction.model_name), False)]
    if context.synthetic:
        lines.append((strings.EXPORT_PNG_SYNTHETIC, True))
    lines.append((strings.DISCLAIMER, True))
    font = QFont("Sans Serif")
    font.setPointSizeF(9)
    margin = 8
    width = max(image.width(), 400)
    painter = QPainter()
    scratch = QImage(1, 1, QImage.Format.Format_RGB32)
    painter.begin(scratch)
    painter.setFont(font)
    flags = int(Qt.AlignmentFlag.AlignLeft) | int(Qt.TextFlag.TextWordWrap)
    heights = [painter.boundingRect(QRectF(0, 0, width - 2 * margin, 10_000), flags, text).height()
               for text, _ in lines]
    painter.end()
    band = int(sum(heights) + margin * (len(lines) + 1))
    out = QImage(width, image.height() + band, QImage.Format.Format_RGB32)
    out.fill(Qt.GlobalColor.white)
    painter.begin(out)
    painter.drawImage(0, 0, image)
    painter.setFont(font)
    y = image.height() + margin
    for (text, warn), height in zip(lines, heights):
        painter.setPen(Qt.GlobalColor.darkRed if warn else Qt.GlobalColor.black)
        painter.drawText(QRectF(margin, y, width - 2 * margin, height), flags, text)
        y += height + margin
    painter.end()
    return out


def _write_png(image: QImage):
    def write(path: Path) -> None:
        if not image.save(str(path), "PNG"):
            raise ExportError("could not encode the PNG image", path)
    return write


def _write_pdf(prediction, context: ReportContext, image: QImage | None):
    def write(path: Path) -> None:
        picture = qc_picture(prediction)
        qc_image = QImage(str(picture)) if picture is not None else None
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
            _paint_report(painter, writer, prediction, context, image, qc_image)
        finally:
            painter.end()
    return write


# How each kind of report line (smmt_core.report.report_lines) is painted: point size, bold, colour.
_LINE_STYLE = {
    "title": (16, True, Qt.GlobalColor.black), "disclaimer": (9, True, Qt.GlobalColor.darkRed),
    "synthetic": (9, True, Qt.GlobalColor.darkMagenta), "result": (13, True, Qt.GlobalColor.black),
    "note": (10, True, Qt.GlobalColor.darkRed), "warning": (9, False, Qt.GlobalColor.darkYellow),
    "detail": (10, False, Qt.GlobalColor.black),
}


def _paint_report(painter: QPainter, writer: QPdfWriter, prediction, context, image, qc_image=None) -> None:
    """The report's lines, then the QC picture (when there is one) and the views, each scaled to the
    page width; a picture that does not fit below the text starts a new page."""
    width, height = writer.width(), writer.height()
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

    def picture(img: QImage | None, caption: str | None = None) -> None:
        nonlocal y

        def fitted():  # page wide, at most half a page high, in the room left on the page
            return img.scaled(int(width), int(max(1.0, min(height * 0.5, height - y - 50))),
                              Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)

        if img is None or img.isNull():
            return
        if fitted().height() < height * 0.2:  # too little room left below: a new page
            writer.newPage()
            y = 0.0
        if caption:
            text(caption, 9, color=Qt.GlobalColor.darkGray)
        scaled = fitted()
        painter.drawImage(QRectF(0, y + 6, scaled.width(), scaled.height()), scaled)
        y += scaled.height() + 16

    for kind, line in report_lines(prediction, context):
        size, bold, color = _LINE_STYLE[kind]
        text(line, size, bold=bold, color=color)
    picture(qc_image, strings.EXPORT_QC_CAPTION)
    picture(image)


def export_report(base: str | Path, prediction, image: QImage | None, context: ReportContext | None = None,
                  formats=FORMATS) -> list[Path]:
    """Write `<base>.png/.csv/.json/.pdf` and, after the intake, `<base>.qc.png` (those in `formats`);
    returns the paths written.

    base: path without extension (an extension given is dropped). image: the views to include
    (e.g. `viewer.grab().toImage()`); without one the PNG is skipped and the PDF has no figure.
    Raises ExportError naming the folder or file when it cannot be written.
    """
    if prediction is None:
        raise ExportError(strings.ERROR_NO_PREDICTION)
    context = context or ReportContext(model_name=prediction.model_name, synthetic_model=prediction.synthetic_model)
    try:
        base = check_report_folder(base)
    except ReportError as error:
        raise ExportError(error.problem, error.path) from None
    folder = base.parent
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ExportError(f"unknown report formats: {', '.join(sorted(unknown))}")
    if "pdf" in formats and QGuiApplication.instance() is None:
        raise ExportError("the PDF report needs a running Qt application (QApplication)")
    qc_copy = report_file(base, "qc") if "qc" in formats else None  # the JSON and CSV name this copy
    jobs = {**common_report_jobs(prediction, context, qc_copy), "pdf": _write_pdf(prediction, context, image)}
    if image is not None and not image.isNull():
        jobs["png"] = _write_png(with_disclaimer(image, prediction, context))
    planned = [(report_file(base, fmt), jobs[fmt]) for fmt in FORMATS if fmt in formats and fmt in jobs]
    try:
        write_all_or_nothing(planned)
    except OSError as error:
        raise ExportError(f"could not write the report: {error.strerror or error}", folder) from error
    return [target for target, _ in planned]
