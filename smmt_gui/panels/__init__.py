"""Dockable panels of the main window: prediction (with modality toggles), cohort table, log,
and D2's training dashboard and robustness view."""
