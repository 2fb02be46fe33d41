"""Intake for real scans: DICOM conversion, brain extraction, N4, affine registration to MNI152, QC.

Qt-free; the field libraries (dcm2niix, deepbet, ANTsPy) come with the optional `intake` extra and
are imported only when a step needs them (see `deps`). Entry point: `run_intake` (pipeline.py).
"""

from smmt_core.data.intake.deps import INSTALL_HINT, intake_available
from smmt_core.data.intake.pipeline import (
    STEP_TITLES,
    STEPS,
    IntakeCache,
    IntakeCancelled,
    IntakeResult,
    IntakeSettings,
    run_intake,
)

__all__ = ["INSTALL_HINT", "STEPS", "STEP_TITLES", "IntakeCache", "IntakeCancelled", "IntakeResult",
           "IntakeSettings", "intake_available", "run_intake"]
