"""Dockable panels of the main window: prediction (with modality toggles), cohort table, log,
and the training dashboard and robustness view."""
