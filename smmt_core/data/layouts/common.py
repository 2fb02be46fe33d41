"""Shared vocabulary of the loaders: canonical clinical columns, aliases, value parsing.

Why one module: the same score arrives under many names ("MMSE", "mmse", "MMS", "mmse_total") and
in many spellings ("n/a", ">1700", "-4", "M"). Normalising all of it in one place keeps every
layout consistent and gives one list of problems per dataset instead of silent NaNs. Image files
and their checks: `smmt_core.data.image_files`.
"""

from __future__ import annotations

import math
import numbers
import re
from pathlib import Path

import numpy as np
import pandas as pd

from smmt_core import fileio
from smmt_core.errors import DataError

# --------------------------------------------------------------------------------------------
# Canonical columns (ADNIMERGE style) and the plausible range of each numeric score.
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    "MMSE": (0, 30),
    "CDGLOBAL": (0, 3),
    "CDRSB": (0, 18),
    "FAQ": (0, 30),
    "ADAS13": (0, 85),
    "AGE": (0, 120),
    "PTEDUCAT": (0, 30),
}
NUMERIC_COLUMNS: tuple[str, ...] = tuple(NUMERIC_RANGES)
CATEGORICAL_COLUMNS: tuple[str, ...] = ("PTGENDER", "APOE4")
LABEL_COLUMN = "diagnosis"  # the pseudo-column that carries the label
ID_COLUMN = "subject_id"


def _norm(name: str) -> str:
    """'CDR-SB' / 'cdr_sb' / 'Cdr Sb' -> 'cdrsb' (case, spaces and punctuation ignored)."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


_ALIASES: dict[str, tuple[str, ...]] = {
    "MMSE": ("mmse", "mms", "mmsetotal", "mmscore", "mmsescore", "minimentalstateexamination"),
    "CDGLOBAL": ("cdglobal", "cdr", "cdrglobal", "globalcdr", "cdrglob", "cdrglobalscore"),
    "CDRSB": ("cdrsb", "cdrsob", "cdrsumofboxes", "cdrsumboxes"),
    "FAQ": ("faq", "faqtotal", "faqscore"),
    "ADAS13": ("adas13", "adascog13", "adastotal13", "total13", "adas13total"),
    "AGE": ("age", "ageyears", "ageatscan", "ageatvisit", "ageatexam"),
    "PTEDUCAT": ("pteducat", "education", "educationyears", "yearsofeducation", "educyears"),
    "PTGENDER": ("ptgender", "sex", "gender"),
    "APOE4": ("apoe4", "apoee4", "apoe4count", "apoee4count", "numapoe4", "apoe", "apoegenotype",
              "genotype"),
    # DX_bl (ADNIMERGE's *baseline* diagnosis) is last: a table with both DX and DX_bl must label
    # each visit with its own DX; DX_bl is only a fallback when nothing better is there.
    LABEL_COLUMN: ("diagnosis", "dx", "group", "researchgroup", "label", "diagnosisgroup",
                   "dxgroup", "clinicaldiagnosis", "dxbl"),
    ID_COLUMN: ("subjectid", "participantid", "ptid", "id", "subject"),
}
_ALIAS_TO_CANONICAL: dict[str, str] = {a: canon for canon, aliases in _ALIASES.items() for a in aliases}

MISSING_STRINGS = {"", "n/a", "na", "nan", "none", "null", "-", ".", "?", "missing", "unknown"}


def canonical_name(column: str) -> str | None:
    """The canonical name for a column header, or None when it is not one we use."""
    return _ALIAS_TO_CANONICAL.get(_norm(column))


def _alias_rank(column: str) -> int:
    """Position of the column's spelling in its alias list: 0 = the canonical name itself."""
    canon = canonical_name(column)
    return _ALIASES[canon].index(_norm(column)) if canon else len(_ALIAS_TO_CANONICAL)


def map_columns(columns) -> dict[str, str]:
    """Original column -> canonical name, for the columns we know.

    When several columns map to one canonical name, the better-ranked alias wins (the canonical
    spelling first, "APOE4" over "APOE"; "DX" over "DX_bl"), then the leftmost column.
    """
    columns = list(columns)
    ranked = sorted(columns, key=lambda c: (_alias_rank(c), columns.index(c)))
    out: dict[str, str] = {}
    taken: set[str] = set()
    for col in ranked:
        canon = canonical_name(col)
        if canon and canon not in taken:
            out[col] = canon
            taken.add(canon)
    return out


def is_missing(value) -> bool:
    """The one rule for a missing clinical value, used by the loaders and the feature encoder:
    None, a NaN/infinite number (any numeric type) or a missing-value word ("", "n/a", "NA", ...)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in MISSING_STRINGS
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return not math.isfinite(float(value))
    return False


# --------------------------------------------------------------------------------------------
# Value parsing. Each parser returns (value, problem-or-None); the caller adds context to problems.

_NUMBER = re.compile(r"^\s*[<>]=?\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$")


def parse_number(value) -> tuple[float, str | None]:
    """A float from a cell; '>1700' -> 1700.0; blank/'n/a' -> NaN; garbage -> NaN plus a problem."""
    if is_missing(value):
        return math.nan, None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            match = _NUMBER.match(text)
            if not match:
                return math.nan, f"cannot read {text!r} as a number"
            number = float(match.group(1))
    if not math.isfinite(number):
        return math.nan, None
    return number, None


def parse_score(name: str, value, *, sentinels: tuple[float, ...] = ()) -> tuple[float, str | None]:
    """A canonical numeric score, NaN when missing, out of range or a missing-code sentinel."""
    number, problem = parse_number(value)
    if problem or math.isnan(number):
        return number, problem
    if number in sentinels:
        return math.nan, None
    low, high = NUMERIC_RANGES.get(name, (-math.inf, math.inf))
    if not low <= number <= high:
        return math.nan, f"{name} = {number:g} is outside {low:g}-{high:g}"
    return number, None


_MALE = {"m", "male", "man", "masculine"}
_FEMALE = {"f", "female", "woman", "feminine"}


def parse_sex(value) -> tuple[str | None, str | None]:
    """'M'/'male'/'Male' -> 'Male', 'F'/'female' -> 'Female'."""
    if is_missing(value):
        return None, None
    text = str(value).strip().lower()
    if text in _MALE:
        return "Male", None
    if text in _FEMALE:
        return "Female", None
    return None, f"cannot read {str(value).strip()!r} as sex (expected Male/Female or M/F)"


def parse_apoe4(value) -> tuple[str | None, str | None]:
    """Number of APOE e4 alleles as '0'/'1'/'2'. Accepts counts (1, '1.0') and genotypes (34, 'e3/e4')."""
    if is_missing(value):
        return None, None
    text = str(value).strip().lower().replace("ε", "e")
    number, _ = parse_number(text)
    if not math.isnan(number) and number in (0, 1, 2):
        return str(int(number)), None
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) == 2 and set(digits) <= set("234"):
        return str(digits.count("4")), None
    return None, f"cannot read {str(value).strip()!r} as an APOE4 allele count (0/1/2) or genotype"


_LABELS = {
    "CN": {"cn", "nc", "hc", "normal", "control", "controls", "healthy", "smc", "cognitivelynormal",
           "healthycontrol", "normalcontrol", "nl", "nondemented"},
    "MCI": {"mci", "emci", "lmci", "mildcognitiveimpairment", "nltomci", "mcitomci", "dementiatomci"},
    "AD": {"ad", "dementia", "alzheimers", "alzheimer", "alzheimersdisease", "demented", "mcitodementia",
           "nltodementia", "dementiatodementia", "mcitoad"},
}
_LABEL_LOOKUP = {alias: label for label, aliases in _LABELS.items() for alias in aliases}


def parse_label(value) -> tuple[str | None, str | None]:
    """A diagnosis cell -> 'CN'/'MCI'/'AD' (SMC->CN, EMCI/LMCI->MCI, Dementia->AD)."""
    if is_missing(value):
        return None, None
    label = _LABEL_LOOKUP.get(_norm(value))
    if label is None:
        return None, f"unknown diagnosis {str(value).strip()!r} (expected CN, MCI or AD)"
    return label, None


def _non_finite_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(float(value))


def clinical_from_record(record: dict, *, where: str, problems: list[str],
                         sentinels: tuple[float, ...] = ()) -> tuple[dict, dict, str | None, str | None]:
    """Map one row/JSON object to (numeric, categorical, label, subject_id).

    Column names may be canonical or aliases. Unreadable cells become missing and are reported in
    `problems` as '<where>: <column>: <problem>'. Unknown columns are ignored.
    """
    numeric: dict[str, float] = {}
    categorical: dict[str, str | None] = {}
    label = subject_id = None
    for column, canon in map_columns(record.keys()).items():
        value = record[column]
        problem = None
        if _non_finite_number(value):  # JSON's NaN / Infinity: say so, as for an out-of-range value
            problems.append(f"{where}: {column}: {value} is not a usable value (NaN/Infinity); treated as missing")
            value = None
        if canon in NUMERIC_RANGES:
            numeric[canon], problem = parse_score(canon, value, sentinels=sentinels)
        elif canon == "PTGENDER":
            categorical[canon], problem = parse_sex(value)
        elif canon == "APOE4":
            categorical[canon], problem = parse_apoe4(value)
        elif canon == LABEL_COLUMN:
            label, problem = parse_label(value)
        elif canon == ID_COLUMN and not is_missing(value):
            subject_id = str(value).strip()
        if problem:
            problems.append(f"{where}: {column}: {problem}")
    return numeric, categorical, label, subject_id


# --------------------------------------------------------------------------------------------
# Tables

def read_table(path: Path, *, sep: str | None = None) -> pd.DataFrame:
    """Read a CSV/TSV as strings (no type guessing), or raise DataError naming the file."""
    return fileio.read_table(path, "table", error=DataError, sep=sep, as_strings=True)


def require_columns(frame: pd.DataFrame, required, path: Path, *, what: str = "") -> None:
    """DataError naming the missing columns (and the ones present) when any is absent."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        present = ", ".join(frame.columns[:12]) + (" ..." if len(frame.columns) > 12 else "")
        raise DataError(f"{what}missing column(s) {', '.join(missing)} (found: {present})", path)


def read_json_object(path: Path) -> dict:
    """A clinical record or dataset description: a JSON object, or DataError naming the file."""
    data = fileio.read_json(path, "file", error=DataError)
    return data
