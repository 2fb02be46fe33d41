"""Test-wide settings: Qt renders offscreen, codecarbon never touches the network, one CPU thread.

One thread for torch, NumPy's BLAS and OpenMP, set before any of them is imported and inherited by
every child process a test starts: the tests' tensors are tiny, and on a shared 2-core machine
two OpenMP threads mostly wait for each other (5-10x slower under load). A CI machine busy with
other jobs made the whole suite several times slower than on an idle one.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
os.environ.setdefault("MPLBACKEND", "Agg")
for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray would otherwise try to report usage over the network

# A plugin has loaded NumPy (and its OpenBLAS, which read the variables above at load) before this file.
from threadpoolctl import threadpool_limits  # noqa: E402 (scikit-learn's own dependency)

threadpool_limits(limits=1)
