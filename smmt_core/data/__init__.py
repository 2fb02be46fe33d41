"""Data layer: subjects, layouts, MRI preprocessing, clinical features, splits, demo cohort."""
