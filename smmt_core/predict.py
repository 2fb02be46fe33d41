"""Prediction for one subject with a trained run: probabilities plus what the model looked at.

CONTRACT (the GUI and CLI are written against this; the implementation fills it in):

    predictor = Predictor.load(run_dir, device="auto")      # CheckpointError on mismatch
    result = predictor.predict(subject_or_path, modalities={"mri", "clinical"})  # None = all present
    result.probabilities -> {"CN": 0.2, "AD": 0.8}

`subject_or_path` is a `Subject` or a path to a subject folder / single T1 file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Prediction:
    subject_id: str
    prediction: str  # class name with the highest probability
    probabilities: dict[str, float]  # class name -> probability, in the model's class order
    modalities_used: list[str]  # modalities present *and* switched on
    modalities_missing: list[str]  # modalities the subject lacks
    contributions: dict[str, float]  # modality -> change in the predicted class's logit when left out
    slices: np.ndarray | None = None  # (S, H, W) float32 in [0, 1]: what the model saw (channel 0)
    cluster_ids: list[np.ndarray] = field(default_factory=list)  # per layer, (S, h, w) int patch grid
    volume: np.ndarray | None = None  # (X, Y, Z) float32 preprocessed MNI-space volume, RAS
    volume_affine: np.ndarray | None = None  # 4x4 voxel -> mm
    slice_indices: list[int] = field(default_factory=list)  # volume indices of the slices, along `plane`
    plane: str = "axial"
    warnings: list[str] = field(default_factory=list)
    model_name: str = ""
    synthetic_model: bool = False  # trained on the SYNTHETIC demo cohort

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
        }
