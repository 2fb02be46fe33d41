"""The optional `intake` extra: which field libraries the intake needs and a clear refusal when absent.

The desktop install reads images that are already in MNI space with the brain extracted (the demo
cohort, Clinica t1-linear output) without these packages. Everything else (DICOM, native space,
skull on) needs them, and the user is told exactly what to install instead of getting an
ImportError from deep inside a worker.
"""

from __future__ import annotations

import importlib.util

from smmt_core.errors import DataError

EXTRA = "intake"
INSTALL_HINT = f"pip install 'smmt-studio[{EXTRA}]'"
# import name -> PyPI name
PACKAGES: dict[str, str] = {"deepbet": "deepbet", "ants": "antspyx", "dcm2niix": "dcm2niix"}


def missing_packages(names=None) -> list[str]:
    """PyPI names of the intake packages (or of `names`, import names) that are not installed."""
    wanted = names or tuple(PACKAGES)
    return [PACKAGES[n] for n in wanted if importlib.util.find_spec(n) is None]


def intake_available() -> bool:
    return not missing_packages()


def require(what: str, path=None, names=None) -> None:
    """DataError naming the file, what it needs and the extra to install, when packages are missing."""
    missing = missing_packages(names)
    if missing:
        raise DataError(f"{what} needs the '{EXTRA}' extra ({', '.join(missing)} not installed): {INSTALL_HINT}",
                        path)
