"""What a prediction report says, Qt-free: the GUI's export and `smmt predict --report` share it.

`report_dict` (the JSON), `report_rows` (the CSV and the PDF's table) and `report_lines` (the
sentences a human reads first, in order) are built here from a `Prediction` and a
`ReportContext`, so the command line and the desktop app can never state different things. The
GUI adds a PNG of its views and a PDF (Qt); `write_report` writes the JSON, the CSV and a PNG of
the model's slices with its clusters (matplotlib) for the command line. When the subject went
through the intake, both also carry its QC picture (`qc_picture`: the MNI152 brain outline over
the registered scan in three views) as `<base>.qc.png`, and the PDF shows it. All files of one
report are written all-or-nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from smmt_core import __version__
from smmt_core.errors import SMMTError
from smmt_core.fileio import write_all_or_nothing

REPORT_TITLE = "SMMT Studio prediction report"
DISCLAIMER = (
    "Research use only. Not a medical device. Not for diagnosis or treatment. Predictions come from "
    "a research model and may be wrong."
)
CLI_FORMATS = ("json", "csv", "png", "qc")
FILE_SUFFIX = {"qc": "qc.png"}  # format -> what follows `<base>.` (the format's own name otherwise)


class ReportError(SMMTError):
    """The report could not be written (folder missing or not writable, nothing to report)."""


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
        "report": REPORT_TITLE,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "disclaimer": DISCLAIMER,
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
    reliability = getattr(prediction, "reliability", {}) or {}
    if reliability:
        ci = reliability.get("ci95")
        rows += [("reliability", "modalities", str(reliability.get("modalities", ""))),
                 ("reliability", "test_balanced_accuracy", _number(reliability.get("balanced_accuracy"))),
                 ("reliability", "test_balanced_accuracy_ci95", f"{ci[0]:.4f}-{ci[1]:.4f}" if ci else ""),
                 ("reliability", "at_chance", str(bool(reliability.get("at_chance"))).lower())]
        if reliability.get("note"):
            rows.append(("reliability", "note", reliability["note"]))
    rows += [("warning", str(i + 1), w) for i, w in enumerate(prediction.warnings)]
    intake = getattr(prediction, "intake", None)  # quality control of the intake (registration to MNI)
    if intake:
        rows += [("qc", key, str(intake[key])) for key in ("qc", "score", "steps", "reason", "picture")
                 if intake.get(key) is not None]
        if intake.get("device"):
            rows.append(("qc", "brain_extraction_device", str(intake["device"])))
    rows += [
        ("model", "name", context.model_name),
        ("model", "folder", context.model_dir),
        ("model", "trained_on_synthetic_data", str(bool(context.synthetic_model)).lower()),
        ("data", "path", context.data_path),
        ("data", "synthetic", str(bool(context.synthetic_data)).lower()),
        ("software", "smmt_studio", __version__),
        ("disclaimer", "", DISCLAIMER),
    ]
    return rows


def report_lines(prediction, context: ReportContext) -> list[tuple[str, str]]:
    """(kind, sentence) in reading order; kind is title, disclaimer, synthetic, result, note, warning, detail."""
    lines = [("title", REPORT_TITLE), ("disclaimer", DISCLAIMER)]
    if context.synthetic:
        lines.append(("synthetic", "SYNTHETIC: the data or the model's training data is the synthetic demo cohort; "
                                   "nothing here is about a real person."))
    lines.append(("result", f"Subject {prediction.subject_id}: {getattr(prediction, 'verdict', prediction.prediction)}"))
    probs = " · ".join(f"{k} {v * 100:.1f}%" for k, v in prediction.probabilities.items())
    lines.append(("detail", f"Probabilities: {probs}"))
    note = getattr(prediction, "guess_note", None)
    if note:
        lines.append(("note", note[0].upper() + note[1:]))
    if getattr(prediction, "borderline", False):
        lines.append(("note", "Borderline: the probabilities are too close to call (top class at most 60 %); "
                              "this is not a classification."))
    ensemble = getattr(prediction, "ensemble", None)
    if ensemble:
        spread = ", ".join(f"{c} ±{v * 100:.1f}" for c, v in ensemble["spread"].items())
        lines.append(("detail", f"Mean of an ensemble of {ensemble['members']} models (SD of their probabilities, "
                                f"points: {spread})"))
    lines.append(("detail", f"Modalities used: {', '.join(prediction.modalities_used) or 'none'}"
                            + (f"; missing: {', '.join(prediction.modalities_missing)}"
                               if prediction.modalities_missing else "")))
    if prediction.contributions:
        lines.append(("detail", "Contributions (logit change when left out): "
                                + ", ".join(f"{k} {v:+.3f}" for k, v in prediction.contributions.items())))
    lines += [("warning", f"Warning: {w}") for w in prediction.warnings]
    intake = getattr(prediction, "intake", None)
    if intake and intake.get("qc"):
        lines.append(("detail", f"Registration QC: {intake['qc']} (score {intake.get('score', '?')})"
                                + (f" — {intake['reason']}" if intake.get("reason") else "")
                                + (f"; brain extraction on {intake['device']}" if intake.get("device") else "")))
    lines.append(("detail", f"Model: {context.model_name} ({context.model_dir})"))
    lines.append(("detail", f"Data: {context.data_path}"))
    lines.append(("detail", f"SMMT Studio {__version__} · {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"))
    return lines


def qc_picture(prediction) -> Path | None:
    """The intake's QC picture of the subject (PNG), when the intake drew one and it still exists."""
    picture = (getattr(prediction, "intake", None) or {}).get("picture")
    return Path(picture) if picture and Path(picture).is_file() else None


def report_file(base: Path, fmt: str) -> Path:
    """`<base>.<suffix>` of one report format."""
    return base.with_name(f"{base.name}.{FILE_SUFFIX.get(fmt, fmt)}")


def copy_job(source: Path):
    """A writer for `write_all_or_nothing` that copies `source` (the QC picture) to the target."""
    def write(path: Path) -> None:
        import shutil

        shutil.copyfile(source, path)
    return write


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""


def csv_text(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "name", "value"])
    writer.writerows(rows)
    return buffer.getvalue()


def check_report_folder(base: str | Path) -> Path:
    """`base` without a report extension, after checking its folder exists and is writable."""
    base = Path(base).expanduser()
    if base.suffix.lower().lstrip(".") in ("png", "csv", "json", "pdf"):
        base = base.with_suffix("")
    folder = base.parent
    if not folder.is_dir():
        raise ReportError("the folder does not exist", folder)
    if not os.access(folder, os.W_OK):
        raise ReportError("the folder is not writable", folder)
    return base


def _slices_png(prediction):
    """A matplotlib figure of what the model saw (slices, cluster outlines of the last layer)."""
    def write(path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        slices = prediction.slices
        n = slices.shape[0]
        fig = Figure(figsize=(3.2 * n, 3.6))
        axes = fig.subplots(1, n, squeeze=False)[0]
        clusters = prediction.cluster_ids[-1] if prediction.cluster_ids else None
        for i, ax in enumerate(axes):
            ax.imshow(slices[i], cmap="gray", origin="upper", vmin=0, vmax=1)
            if clusters is not None:
                h, w = slices[i].shape
                ax.imshow(clusters[i], cmap="tab10", alpha=0.35, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                          interpolation="nearest", vmin=0, vmax=9)
            ax.set_axis_off()
            ax.set_title(f"slice {i + 1}", fontsize=9)
        fig.suptitle(f"{prediction.subject_id}: {prediction.prediction} — what the model saw", fontsize=10)
        fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    return write


def _parcellation_png(prediction):
    """Volume models: the K-Means clusters of every layer as a 3D parcellation, in the three
    orthogonal planes through the brain's centre (a row per layer, distinct colours per cluster)."""
    def write(path: Path) -> None:
        import matplotlib
        import numpy as np

        matplotlib.use("Agg", force=False)
        from matplotlib.colors import ListedColormap
        from matplotlib.figure import Figure

        volume = prediction.volume
        n_layers = len(prediction.cluster_ids)
        fig = Figure(figsize=(9.6, 3.4 * n_layers))
        axes = fig.subplots(n_layers, 3, squeeze=False)
        centre = [s // 2 for s in volume.shape]
        centre[1] = int(volume.shape[1] * 0.45)  # a little behind the middle: through the hippocampi
        palette = ListedColormap(matplotlib.colormaps["tab20"].colors)
        for layer in range(n_layers):
            labels = prediction.cluster_label_volume(layer)
            sizes = prediction.cluster_sizes(layer)
            for col, (axis, name) in enumerate(((2, "axial"), (1, "coronal"), (0, "sagittal"))):
                image = np.take(volume, centre[axis], axis=axis).T[::-1]
                ids = np.take(labels, centre[axis], axis=axis).T[::-1].astype(float)
                ax = axes[layer][col]
                ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.imshow(np.ma.masked_less(ids, 0), cmap=palette, vmin=0, vmax=20, alpha=0.45,
                          interpolation="nearest")
                ax.set_axis_off()
                ax.set_title(f"layer {layer + 1}, {name}", fontsize=9)
            axes[layer][2].text(1.02, 0.5, "\n".join(f"{k}: {n} tokens" for k, n in sorted(sizes.items())),
                                transform=axes[layer][2].transAxes, fontsize=7, va="center")
        fig.suptitle(f"{prediction.subject_id}: {prediction.prediction} — K-Means attention clusters "
                     "(whole brain)", fontsize=10)
        fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    return write


def common_report_jobs(prediction, context: ReportContext, qc_copy: Path | None = None) -> dict:
    """The report files the CLI and the GUI write alike, as {format: write(path)}: the JSON, the CSV
    and (after the intake) the QC picture. Each adds its own pictures (`write_report`, the GUI's export).

    qc_copy: where the QC picture is copied beside the report; the JSON and the CSV then name that
    copy (its file name: it travels with them), not the intake cache's picture, which may be cleared."""
    picture = qc_picture(prediction)
    if picture is not None and qc_copy is not None:
        prediction = replace(prediction, intake={**prediction.intake, "picture": Path(qc_copy).name})
    jobs = {
        "json": lambda p: p.write_text(json.dumps(report_dict(prediction, context), indent=2, default=str) + "\n",
                                       encoding="utf-8"),
        "csv": lambda p: p.write_text(csv_text(report_rows(prediction, context)), encoding="utf-8"),
    }
    if picture is not None:
        jobs["qc"] = copy_job(picture)
    return jobs


def write_report(base: str | Path, prediction, context: ReportContext, formats=CLI_FORMATS) -> list[Path]:
    """Write `<base>.json`, `.csv`, (when the MRI was used) `.png`: the slices the model saw, or a
    volume model's 3D cluster parcellation, and (when the subject went through the intake)
    `.qc.png`: its QC picture; returns the paths written."""
    if prediction is None:
        raise ReportError("there is no prediction to report")
    base = check_report_folder(base)
    unknown = set(formats) - set(CLI_FORMATS)
    if unknown:
        raise ReportError(f"unknown report formats: {', '.join(sorted(unknown))}")
    jobs = common_report_jobs(prediction, context, report_file(base, "qc") if "qc" in formats else None)
    if prediction.slices is not None:
        jobs["png"] = _slices_png(prediction)
    elif getattr(prediction, "patch_grid", None) is not None and prediction.cluster_ids:
        jobs["png"] = _parcellation_png(prediction)
    planned = [(report_file(base, fmt), jobs[fmt]) for fmt in CLI_FORMATS if fmt in formats and fmt in jobs]
    try:
        return write_all_or_nothing(planned)
    except OSError as error:
        raise ReportError(f"could not write the report: {error.strerror or error}", base.parent) from error
