"""Prediction for one subject with a trained run: probabilities plus what the model looked at.

CONTRACT (the GUI and CLI are written against this; the implementation fills it in):

    predictor = Predictor.load(run_dir, device="auto")      # CheckpointError on mismatch
    result = predictor.predict(subject_or_path, modalities={"mri", "clinical"})  # None = all present
    result.probabilities -> {"CN": 0.2, "AD": 0.8}

`subject_or_path` is a `Subject` or a path to a subject folder / single T1 file.

Why a class: loading a run (weights, encoder, preprocessing settings) happens once; predictions
then reuse it, and the preprocessed MRI of the last few subjects is kept in memory so that
switching modalities on and off in the GUI never re-reads the NIfTI file. Preprocessing is exactly
the training one: the run's `PreprocessConfig` and fitted `FeatureEncoder` come from its checkpoint.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smmt_core.data.subject import ALL_MODALITIES, Modality, Subject
from smmt_core.errors import DataError


@dataclass
class Prediction:
    subject_id: str
    prediction: str  # class name with the highest probability
    probabilities: dict[str, float]  # class name -> probability, in the model's class order
    modalities_used: list[str]  # modalities present *and* switched on
    modalities_missing: list[str]  # modalities the subject lacks
    contributions: dict[str, float]  # modality -> change in the predicted class's logit when left out
    slices: np.ndarray | None = None  # (S, H, W) float32 in [0, 1]: what the model saw (channel 0); None if MRI unused
    # per layer, (S, h, w) int patch grid; volume models: (gx, gy, gz) 3D patch grid, -1 = no token
    cluster_ids: list[np.ndarray] = field(default_factory=list)
    volume: np.ndarray | None = None  # (X, Y, Z) float32 preprocessed MNI-space volume, RAS (also when MRI is off)
    volume_affine: np.ndarray | None = None  # 4x4 voxel -> mm
    slice_indices: list[int] = field(default_factory=list)  # volume indices of the slices, along `plane`
    plane: str = "axial"
    # Volume models: where the 3D patch grid of `cluster_ids` sits on the MNI grid of `volume`:
    # (origin x, y, z in voxels, patch side in voxels); None for slice models.
    patch_grid: tuple[int, int, int, int] | None = None
    warnings: list[str] = field(default_factory=list)
    model_name: str = ""
    synthetic_model: bool = False  # trained on the SYNTHETIC demo cohort
    # How far the run's own test set supports a prediction from these modalities (see `reliability`).
    reliability: dict = field(default_factory=dict)
    # Too close to call: the top probability is at most 0.6 (two classes: P between 0.4 and 0.6).
    # Shown as "borderline", never as a diagnosis (`smmt_core.train.calibration.is_borderline`).
    borderline: bool = False
    calibrated: bool = False  # the run's probabilities were calibrated on its validation persons
    # A seed ensemble's prediction: {"members": N, "spread": {class: SD of its probability over the
    # members}}; None for a single run.
    ensemble: dict | None = None

    def cluster_label_volume(self, layer: int = -1) -> np.ndarray | None:
        """Volume models: one layer's K-Means clusters as an int32 label volume on the grid of
        `volume` (-1 where no token), for drawing a 3D parcellation; None for slice models."""
        if self.patch_grid is None or not self.cluster_ids or self.volume is None:
            return None
        from smmt_core.data.volume import grid_labels_to_mni

        *origin, patch = self.patch_grid
        return grid_labels_to_mni(self.cluster_ids[layer], origin, patch, self.volume.shape)

    def cluster_sizes(self, layer: int = -1) -> dict[int, int]:
        """Tokens per cluster id of one layer (empty without clusters)."""
        if not self.cluster_ids:
            return {}
        ids, counts = np.unique(self.cluster_ids[layer], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts) if i >= 0}

    @property
    def verdict(self) -> str:
        """What to show as the result: the class, or "borderline (leaning AD)" when too close to call."""
        return f"borderline (leaning {self.prediction})" if self.borderline else self.prediction

    @property
    def guess_note(self) -> str | None:
        """The visible note when the run is at chance from the modalities used, else None."""
        return self.reliability.get("note")
    intake: dict | None = None  # what the intake did: steps, QC verdict/score/reason, QC picture path

    def to_dict(self) -> dict:
        """JSON-friendly summary (no arrays)."""
        return {
            "subject": self.subject_id,
            "prediction": self.prediction,
            "probabilities": dict(self.probabilities),
            "modalities_used": list(self.modalities_used),
            "modalities_missing": list(self.modalities_missing),
            "contributions": dict(self.contributions),
            "warnings": list(self.warnings),
            "model": self.model_name,
            "synthetic_model": self.synthetic_model,
            "reliability": dict(self.reliability),
            "borderline": self.borderline,
            "calibrated": self.calibrated,
            "ensemble": dict(self.ensemble) if self.ensemble else None,
            "intake": self.intake,
        }


def reliability(subset_metrics: dict, used: list[str]) -> dict:
    """What the run's own test set says about predicting from the modalities `used`.

    subset_metrics: the best checkpoint's per-subset test figures (written by the trainer).
    at_chance is True when the 95 % CI of the balanced accuracy contains 0.5 (or there is no CI):
    the run cannot tell the classes apart from these modalities better than a coin, so its
    output is a guess and `note` says so. Runs trained before subset figures existed give {}.
    """
    from smmt_core.modalities import subset_name

    name = subset_name([Modality(m) for m in used]) if used else ""
    figures = subset_metrics.get(name) if isinstance(subset_metrics, dict) else None
    if not isinstance(figures, dict):
        return {}
    bacc = figures.get("balanced_accuracy")
    ci = (figures.get("ci95") or {}).get("balanced_accuracy")
    at_chance = not ci or ci[0] <= 0.5 <= ci[1] or not isinstance(bacc, (int, float))
    out = {"modalities": name, "balanced_accuracy": bacc, "ci95": ci, "n_test": figures.get("n_subjects"),
           "at_chance": bool(at_chance), "note": None}
    if at_chance:
        shown = f"{bacc * 100:.0f} %" if isinstance(bacc, (int, float)) and math.isfinite(bacc) else "undefined"
        interval = f" (95 % CI {ci[0] * 100:.0f}–{ci[1] * 100:.0f} %)" if ci else ""
        out["note"] = (f"a guess, not a finding: from {name.replace('+', ' + ')} this model's own test set is at chance "
                       f"(balanced accuracy {shown}{interval} includes 50 %)")
    return out


class _MemoryCache:
    """Keeps the last few preprocessed T1s in memory; falls back to an optional disk MRICache.

    Duck-types `MRICache.get(path, config, load_volume=...)`, which is all `encode_subject` needs.
    Entries are keyed by (resolved path, size, mtime, settings) so an edited file is re-read.
    """

    def __init__(self, disk=None, size: int = 4, intake=None):
        self.disk = disk  # an MRICache runs the intake with its own settings
        self.intake = intake  # IntakeSettings for scans that are not on disk (None: the defaults)
        self.size = size
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path, config, *, load_volume: bool = True):
        from smmt_core.data.preprocess import preprocess_scan

        path = Path(path)
        try:
            stat = path.stat()
        except OSError:
            raise DataError("T1 image file not found", path) from None
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, config.key())
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        if self.disk is not None:
            result = self.disk.get(path, config, load_volume=True)
        else:
            result = preprocess_scan(path, config, self.intake)  # the intake, with its default on-disk cache
        with self._lock:
            self._items[key] = result
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return result


def subject_from_cohort(cohort, name: str) -> Subject:
    """The scan `name` of a loaded cohort: a subject id (when the person has one scan) or an
    id/session key such as "sub-001/ses-M006". DataError listing the choices otherwise."""
    name = name.strip().rstrip("/")
    matches = [s for s in cohort.subjects if s.key == name]
    if not matches:
        matches = [s for s in cohort.subjects if s.subject_id == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        examples = ", ".join(s.key for s in cohort.subjects[:5])
        raise DataError(f"no subject {name!r} in this dataset (it holds {len(cohort.subjects)} scans, e.g. {examples})",
                        cohort.root)
    raise DataError(f"subject {name!r} has {len(matches)} scans; name one of: {', '.join(s.key for s in matches)}",
                    cohort.root)


class Predictor:
    """A trained run, ready to predict for single subjects (thread-safe: one prediction at a time)."""

    def __init__(self, loaded, disk_cache=None):
        self.run = loaded  # smmt_core.train.checkpoints.LoadedRun
        if disk_cache is True:  # the default MRI cache, its intake on this model's device
            from smmt_core.data.preprocess import MRICache

            disk_cache = MRICache(intake=self.intake_settings)
        self._cache = _MemoryCache(disk_cache, intake=self.intake_settings)
        self._lock = threading.Lock()

    @property
    def intake_settings(self):
        """The intake of a raw scan runs brain extraction on this model's device, so the device the
        user chose (`smmt predict --device cpu`, the app's "auto") holds for deepbet too."""
        from smmt_core.data.intake.pipeline import IntakeSettings

        return IntakeSettings(device="cuda" if str(self.run.device).startswith("cuda") else "cpu")

    @classmethod
    def load(cls, run_dir, device: str = "auto", *, which: str = "best", disk_cache=None) -> "Predictor":
        """Load `<which>` checkpoint of a run folder; CheckpointError when it is missing or does not match.

        disk_cache: an `MRICache` to also store preprocessed scans on disk, True for the default one
        ($SMMT_CACHE_DIR, as training uses), None for memory only.
        """
        from smmt_core.device import select_device
        from smmt_core.train.checkpoints import load_run
        from smmt_core.train.run_record import RunRecord

        if RunRecord(run_dir).is_ensemble:
            return EnsemblePredictor.load(run_dir, device, which=which, disk_cache=disk_cache)
        predictor = cls(load_run(run_dir, which=which, device=str(select_device(device))), disk_cache)
        predictor._warm_up()
        return predictor

    def _warm_up(self) -> None:
        """Load what every first prediction needs (the MNI template at the run's resolution), so
        that the first prediction costs what later ones cost."""
        if self.run.schema.mri_shape is not None:
            from smmt_core.data.template import mni_template

            mni_template(self.run.preprocess.resolution_mm)

    @property
    def classes(self) -> list[str]:
        return list(self.run.classes)

    @property
    def run_name(self) -> str:
        return self.run.name

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir

    @property
    def synthetic(self) -> bool:
        return self.run.synthetic

    @property
    def calibrated(self) -> bool:
        """Whether the run's probabilities were calibrated (a temperature fitted on its validation persons)."""
        calibration = self.run.meta.calibration
        return isinstance(calibration, dict) and not calibration.get("note") and "temperature" in calibration

    @property
    def features(self) -> list[str]:
        return list(self.run.encoder.features)

    @property
    def model_modalities(self) -> list[str]:
        """Modalities the model was trained with (a model without MRI ignores any T1)."""
        schema = self.run.schema
        out = []
        if schema.mri_shape is not None:
            out.append(Modality.MRI.value)
        if schema.numeric:
            out.append(Modality.CLINICAL.value)
        if schema.categorical:
            out.append(Modality.CATEGORICAL.value)
        return out

    def predict(self, subject_or_path: Subject | str | Path, modalities=None) -> Prediction:
        """Class probabilities and what the model saw for one subject.

        modalities: the modalities switched ON (names or `Modality`), None = all. A modality that
        is switched off or that the subject lacks is marked absent, exactly as in training.
        Raises DataError when the subject cannot be read or no usable modality is left, and
        CheckpointError naming the run when the model's output is not finite (never a class then).
        """
        import torch

        from smmt_core.batch import MODALITY_INDEX
        from smmt_core.data.dataset import encode_subject, parse_modalities

        subject = self._subject(subject_or_path)
        switched_on = parse_modalities(modalities)
        model = self.run.model
        with self._lock:
            inputs, pre = encode_subject(subject, self.run.encoder, self.run.preprocess, self._cache,
                                         modalities=switched_on)
            has = self._has_from_inputs(inputs, pre)
            inputs = inputs.to(self.run.device)
            available = model.available(inputs)[0].cpu()
            if not bool(available.any()):
                raise DataError(self._nothing_to_use_message(subject, has, switched_on))
            with torch.inference_mode():
                output = model(inputs, return_details=True)
            logits = output.logits.float()[0]
            prob = torch.softmax(logits, dim=0).cpu().numpy().astype(float)
        if not (bool(torch.isfinite(logits).all()) and np.isfinite(prob).all()):
            from smmt_core.errors import CheckpointError

            raise CheckpointError("the model's output for this subject is not a number (NaN or infinite): its "
                                  "weights are damaged or diverged; no class is given. Retrain or choose another run",
                                  self.run_dir)

        used = [m.value for m in ALL_MODALITIES if bool(available[MODALITY_INDEX[m]])]
        lacking = [m.value for m in ALL_MODALITIES if m not in has]
        contributions = {}
        if output.contributions is not None:
            values = output.contributions[0].float().cpu().numpy()
            for m in ALL_MODALITIES:
                value = float(values[MODALITY_INDEX[m]])
                if m.value in used and math.isfinite(value):
                    contributions[m.value] = value
        if pre is not None and Modality.MRI.value in used:
            from smmt_core.data.preprocess import brain_check

            problem = brain_check(pre.volume, self.run.preprocess.resolution_mm)
            if problem is not None:
                raise DataError(f"no prediction: the T1 image {problem}; the model only knows skull-stripped "
                                "T1 brains registered to MNI152", subject.t1_path)
        warnings = list(subject.notes)
        slices = volume = affine = None
        indices: list[int] = []
        plane = self.run.preprocess.plane
        if pre is not None:
            warnings.extend(pre.warnings)
            if Modality.MRI.value in used and not self.run.preprocess.is_volume:  # only what the model saw
                slices = np.ascontiguousarray(pre.slices[:, 0], dtype=np.float32)
            volume = pre.volume
            affine = np.asarray(pre.affine)
            indices = list(pre.slice_indices)
            plane = pre.plane
        unused = self._clinical_mismatch(subject)
        if unused:
            warnings.append(unused)
        if subject.t1_path is not None and Modality.MRI.value not in self.model_modalities:
            warnings.append("this model was trained without MRI; the T1 image was not used")
        cluster_ids = [ids[0].cpu().numpy().astype(np.int32) for ids in output.cluster_ids] if Modality.MRI.value in used else []
        patch_grid = None
        if self.run.preprocess.is_volume and cluster_ids:
            from smmt_core.data.volume import volume_geometry

            geometry = volume_geometry(self.run.preprocess.resolution_mm, self.run.preprocess.patch_mm)
            patch_grid = (*geometry.origin, geometry.patch)
        from smmt_core.train.calibration import is_borderline

        best = int(np.argmax(prob))
        return Prediction(
            subject_id=subject.key,
            prediction=self.classes[best],
            probabilities={c: float(p) for c, p in zip(self.classes, prob)},
            modalities_used=used,
            modalities_missing=lacking,
            contributions=contributions,
            slices=slices,
            cluster_ids=cluster_ids,
            volume=volume,
            volume_affine=affine,
            slice_indices=indices,
            plane=plane,
            patch_grid=patch_grid,
            warnings=warnings,
            model_name=self.run_name,
            synthetic_model=self.synthetic,
            reliability=reliability(self.run.meta.subset_metrics or {}, used),
            intake=pre.intake if pre is not None else None,
            borderline=is_borderline(prob),
            calibrated=self.calibrated,
        )

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _subject(subject_or_path) -> Subject:
        if isinstance(subject_or_path, Subject):
            return subject_or_path
        from smmt_core.data.loaders import load_subject

        path = Path(subject_or_path).expanduser()
        if not path.exists():
            raise DataError("subject folder or T1 file not found", path)
        return load_subject(path)

    @staticmethod
    def _has_from_inputs(inputs, pre) -> set[Modality]:
        """The modalities the subject has *as the model sees them*, whether switched on or not.

        Read from the encoded inputs with the rule `encode_subject` and `SMMT.available` apply
        (some of the model's numeric features not missing; some category known to the encoder,
        so an APOE4 value never seen in training counts as absent), so that
        `Prediction.modalities_missing` never disagrees with what the model used.
        """
        has = set()
        if pre is not None:
            has.add(Modality.MRI)
        if inputs.numeric.shape[1] and not bool(inputs.numeric_missing.bool().all()):
            has.add(Modality.CLINICAL)
        if inputs.categorical.shape[1] and bool((inputs.categorical != 0).any()):
            has.add(Modality.CATEGORICAL)
        return has

    def _clinical_mismatch(self, subject: Subject) -> str | None:
        """A warning when the subject brings clinical values but none of the model's features:
        the model then sees no clinical input at all, which must not pass without a word."""
        from smmt_core.data.layouts.common import is_missing

        wanted = self.features
        supplied = sorted(k for k, v in {**subject.numeric, **subject.categorical}.items() if not is_missing(v))
        if not wanted or not supplied or set(wanted) & set(supplied):
            return None
        return (f"subject {subject.key}: its clinical data ({', '.join(supplied)}) supply none of the model's "
                f"clinical features ({', '.join(wanted)}); the model saw no clinical input")

    def _nothing_to_use_message(self, subject: Subject, has: set[Modality], switched_on: set[Modality]) -> str:
        have = [m.value for m in ALL_MODALITIES if m in has]
        return (
            f"subject {subject.key}: nothing to predict from — the model uses "
            f"{', '.join(self.model_modalities) or 'nothing'}, the subject has {', '.join(have) or 'nothing usable'}, "
            f"switched on: {', '.join(sorted(m.value for m in switched_on)) or 'none'}"
        )


class EnsemblePredictor:
    """A seed ensemble predicting as one: the mean of its members' probabilities, and their spread.

    Same interface as `Predictor` (the GUI and the CLI do not tell them apart). What the GUI draws
    besides the probabilities (slices, clusters, reliability) comes from the first member: the
    members share preprocessing and persons, not their clusters.
    """

    def __init__(self, run_dir, members: list[Predictor]):
        from smmt_core.train.run_record import RunRecord

        self.members = members
        self.run_dir = Path(run_dir)
        self.run_name = str(RunRecord(run_dir).run_summary().run_name or self.run_dir.name)

    @classmethod
    def load(cls, run_dir, device: str = "auto", *, which: str = "best", disk_cache=None) -> "EnsemblePredictor":
        from smmt_core.errors import CheckpointError
        from smmt_core.train.ensemble import member_dirs

        members = member_dirs(run_dir)
        if not members:
            raise CheckpointError("this ensemble has no member with a best checkpoint (not trained yet?)", run_dir)
        return cls(run_dir, [Predictor.load(m, device, which=which, disk_cache=disk_cache) for m in members])

    def __getattr__(self, name):  # classes, synthetic, features, model_modalities, run, intake_settings…
        if name == "members":
            raise AttributeError(name)
        return getattr(self.members[0], name)

    @property
    def calibrated(self) -> bool:
        return all(m.calibrated for m in self.members)

    def predict(self, subject_or_path, modalities=None) -> Prediction:
        import dataclasses

        from smmt_core.train.calibration import is_borderline

        predictions = [m.predict(subject_or_path, modalities) for m in self.members]
        classes = list(predictions[0].probabilities)
        stacked = np.array([[p.probabilities[c] for c in classes] for p in predictions])
        mean = stacked.mean(0)
        contributions = {m: float(np.mean([p.contributions[m] for p in predictions if m in p.contributions]))
                         for m in predictions[0].contributions}
        return dataclasses.replace(
            predictions[0], prediction=classes[int(mean.argmax())],
            probabilities={c: float(v) for c, v in zip(classes, mean)}, contributions=contributions,
            borderline=is_borderline(mean), calibrated=self.calibrated, model_name=self.run_name,
            ensemble={"members": len(predictions), "spread": {c: float(v) for c, v in zip(classes, stacked.std(0))}})
