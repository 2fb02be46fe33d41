"""Clinical scores and atrophy of one SYNTHETIC demo subject, all driven by one severity value.

Why a severity variable: in real cohorts the scores and the atrophy agree with one another
because they measure the same disease. Here each subject gets a disease severity in [0, 1]
(CN low, MCI between, AD high); within a diagnostic group its standardised value `z` enters every
score through a Gaussian copula

    u_k = Phi(rho_k * z + sqrt(1 - rho_k^2) * e_k),   score_k = F_k^-1(u_k | diagnosis)

so each score keeps the group's marginal distribution (the calibration table of ADNI-1 baseline
figures in docs/demo-cohort.md) while scores that share `z` correlate within a group (MMSE with
ADAS-Cog about -0.5, CDR-SB with FAQ about 0.6). The same severity, with age, sets how much the
hippocampi shrink and the ventricles grow in the image (see demo_anatomy).

The MCI figures are approximate ADNI-1 baseline values; CN and AD follow the table in
/work/shared/reference/data.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy import stats

# Beta(a, b) of the severity per diagnosis.
SEVERITY_BETA: dict[str, tuple[float, float]] = {"CN": (2.0, 14.0), "MCI": (8.0, 12.0), "AD": (12.0, 6.0)}


@dataclass(frozen=True)
class GroupCalibration:
    """Marginal distributions of one diagnostic group (ADNI-1 baseline, approximate)."""

    age: tuple[float, float]  # mean, SD (years)
    education: tuple[float, float]  # mean, SD (years)
    female: float  # fraction
    apoe4: tuple[float, float, float]  # P(0, 1, 2 e4 alleles)
    mmse: tuple[float, float, int, int]  # mean, SD, min, max  (CN: 30 - Poisson(30 - mean))
    cdrsb: tuple[float, float, float, float]  # mean, SD, min, max (CN: P(0.5) = mean / 0.5)
    adas13: tuple[float, float]  # mean, SD
    faq: tuple[float, float]  # mean, SD (negative binomial; CN: mostly zeros)


CALIBRATION: dict[str, GroupCalibration] = {
    "CN": GroupCalibration(age=(76.0, 5.0), education=(16.0, 2.9), female=0.48, apoe4=(0.75, 0.22, 0.03),
                           mmse=(29.1, 1.0, 24, 30), cdrsb=(0.03, 0.0, 0.0, 0.5), adas13=(9.5, 4.0),
                           faq=(0.35, 0.8)),
    "MCI": GroupCalibration(age=(74.7, 7.4), education=(15.7, 3.0), female=0.36, apoe4=(0.47, 0.41, 0.12),
                            mmse=(27.0, 1.8, 23, 30), cdrsb=(1.6, 0.9, 0.5, 5.0), adas13=(18.6, 6.2),
                            faq=(3.9, 4.5)),
    "AD": GroupCalibration(age=(75.5, 7.5), education=(14.7, 3.1), female=0.45, apoe4=(0.36, 0.47, 0.17),
                           mmse=(23.4, 2.1, 18, 28), cdrsb=(4.3, 1.6, 1.0, 10.0), adas13=(29.0, 7.5),
                           faq=(13.0, 7.0)),
}

# How strongly each score follows the within-group severity (copula loadings, sign = direction).
LOADINGS: dict[str, float] = {"MMSE": -0.75, "ADAS13": 0.75, "CDRSB": 0.8, "FAQ": 0.8, "APOE4": 0.2}

# Image effects (fractions of the template volume). Disease atrophy is tissue lost (replaced by
# CSF in the image); natural size and ageing change the size of the structure.
HIPPOCAMPUS_ATROPHY_PER_SEVERITY = 0.40  # AD - CN ~ -22 %
HIPPOCAMPUS_PER_YEAR = -0.005  # relative to age 75
HIPPOCAMPUS_NATURAL_SD = 0.10  # person-to-person variation unrelated to disease
VENTRICLES_LOG_BASE = 0.05
VENTRICLES_LOG_PER_SEVERITY = 0.70  # AD / CN ~ 1.45
VENTRICLES_LOG_PER_YEAR = 0.02
VENTRICLES_LOG_NATURAL_SD = 0.15
HEAD_SCALE_SEX = 0.015  # males +1.5 %, females -1.5 % (linear)
HEAD_SCALE_SD = 0.02
HEAD_SCALE_LIMIT = 0.05


@dataclass
class ClinicalDraw:
    """Everything about one subject except the image and which modalities are missing."""

    diagnosis: str
    severity: float
    numeric: dict[str, float]  # AGE, PTEDUCAT, MMSE, CDGLOBAL, CDRSB, ADAS13, FAQ
    categorical: dict[str, str]  # PTGENDER, APOE4
    hippocampal_size: float  # natural size of the hippocampi, relative to the template (fraction)
    hippocampal_atrophy: float  # fraction of that tissue lost to disease
    ventricle_change: float
    head_scale: float


def _severity_stats(diagnosis: str) -> tuple[float, float]:
    a, b = SEVERITY_BETA[diagnosis]
    return a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


_STANDARD_NORMAL = NormalDist()  # the standard library's is far faster than scipy's per value


def _uniform(rng: np.random.Generator, z: float, loading: float) -> float:
    """A U(0, 1) value that correlates with z (Gaussian copula)."""
    latent = loading * z + math.sqrt(1.0 - loading * loading) * rng.standard_normal()
    return min(max(_STANDARD_NORMAL.cdf(latent), 1e-9), 1 - 1e-9)


def _normal(u: float, mean: float, sd: float) -> float:
    return mean + sd * _STANDARD_NORMAL.inv_cdf(u)


def _negative_binomial(u: float, mean: float, sd: float) -> float:
    """Over-dispersed counts (FAQ): many zeros, long right tail."""
    r = mean * mean / max(sd * sd - mean, 1e-6)
    return float(stats.nbinom.ppf(u, r, r / (r + mean)))


def _categorical(u: float, probabilities) -> int:
    return int(np.searchsorted(np.cumsum(probabilities), u * sum(probabilities), side="right"))


def draw_clinical(diagnosis: str, rng: np.random.Generator) -> ClinicalDraw:
    """One subject's severity, scores and image effects for a diagnosis ("CN", "MCI", "AD")."""
    cal = CALIBRATION[diagnosis]
    a, b = SEVERITY_BETA[diagnosis]
    severity = float(rng.beta(a, b))
    mean, sd = _severity_stats(diagnosis)
    z = (severity - mean) / sd

    age = float(np.clip(rng.normal(*cal.age), 55.0, 90.0))
    education = float(np.clip(round(rng.normal(*cal.education)), 6, 20))
    sex = "Female" if rng.random() < cal.female else "Male"
    apoe4 = _categorical(_uniform(rng, z, LOADINGS["APOE4"]), cal.apoe4)

    low, high = cal.mmse[2], cal.mmse[3]
    u = _uniform(rng, z, LOADINGS["MMSE"])
    if diagnosis == "CN":  # ceiling effect: most controls score 29 or 30
        mmse = 30.0 - float(stats.poisson.ppf(1.0 - u, 30.0 - cal.mmse[0]))
    else:
        mmse = round(_normal(u, cal.mmse[0], cal.mmse[1]))
    mmse = float(np.clip(mmse, low, high))

    u = _uniform(rng, z, LOADINGS["CDRSB"])
    if diagnosis == "CN":  # almost always 0; a few 0.5
        cdrsb = 0.5 if u > 1.0 - cal.cdrsb[0] / 0.5 else 0.0
    else:
        cdrsb = float(np.clip(round(2.0 * _normal(u, cal.cdrsb[0], cal.cdrsb[1])) / 2.0, cal.cdrsb[2], cal.cdrsb[3]))
    # Global CDR: 0 for controls, 0.5 for MCI; in AD it follows the sum of boxes (4.5 and up: CDR 1).
    cdglobal = {"CN": 0.0, "MCI": 0.5}.get(diagnosis, 1.0 if cdrsb >= 4.5 else 0.5)

    u = _uniform(rng, z, LOADINGS["ADAS13"])
    adas13 = float(np.clip(round(3.0 * _normal(u, *cal.adas13)) / 3.0, 0.0, 85.0))
    u = _uniform(rng, z, LOADINGS["FAQ"])
    faq = float(np.clip(_negative_binomial(u, *cal.faq), 0.0, 30.0))

    hippocampal_size = HIPPOCAMPUS_PER_YEAR * (age - 75.0) + rng.normal(0.0, HIPPOCAMPUS_NATURAL_SD)
    hippocampal_atrophy = HIPPOCAMPUS_ATROPHY_PER_SEVERITY * severity
    ventricle_log = (VENTRICLES_LOG_BASE + VENTRICLES_LOG_PER_SEVERITY * severity
                     + VENTRICLES_LOG_PER_YEAR * (age - 75.0) + rng.normal(0.0, VENTRICLES_LOG_NATURAL_SD))
    head = 1.0 + (HEAD_SCALE_SEX if sex == "Male" else -HEAD_SCALE_SEX) + rng.normal(0.0, HEAD_SCALE_SD)
    head = float(np.clip(head, 1.0 - HEAD_SCALE_LIMIT, 1.0 + HEAD_SCALE_LIMIT))

    return ClinicalDraw(
        diagnosis=diagnosis,
        severity=severity,
        numeric={"AGE": round(age, 1), "PTEDUCAT": education, "MMSE": mmse, "CDGLOBAL": cdglobal,
                 "CDRSB": cdrsb, "ADAS13": round(adas13, 2), "FAQ": faq},
        categorical={"PTGENDER": sex, "APOE4": str(apoe4)},
        hippocampal_size=float(hippocampal_size),
        hippocampal_atrophy=float(hippocampal_atrophy),
        ventricle_change=float(math.expm1(ventricle_log)),
        head_scale=head,
    )
