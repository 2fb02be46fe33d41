"""SMMT model: K-Means cluster-sparse attention, encoders, cascade fusion, masking, variants."""
