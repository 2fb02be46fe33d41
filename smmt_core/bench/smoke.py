"""The model size of a benchmark's `--smoke` mode (the test suite runs every benchmark that way).

A smoke run checks that a benchmark still runs end to end and measures nothing, so it trains the
tests' tiny model (an 8 mm grid, 2 slices of 16x16, d_model 32) rather than a preset's full size:
with the demo preset's own size, the smoke runs of the GUI benchmarks alone took minutes of CI.
"""

SMOKE_MODEL = dict(d_model=32, n_heads=2, n_fusion_tokens=2, image_size=16, n_slices=2, resolution_mm=8.0,
                   measure_energy=False)
