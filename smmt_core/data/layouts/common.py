"""Shared vocabulary of the loaders: canonical clinical columns, aliases, value parsing, images.

Why one module: the same score arrives under many names ("MMSE", "mmse", "MMS", "mmse_total") and
in many spellings ("n/a", ">1700", "-4", "M"). Normalising all of it in one place keeps every
layout consistent and gives one list of problems per dataset instead of silent NaNs.
"""

from __future__ import annotations

import math
import numbers
import re
from pathlib import Path

import nibabel as nib
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


# --------------------------------------------------------------------------------------------
# Images

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".mgz", ".mgh", ".hdr", ".img", ".img.gz", ".hdr.gz")


def volume_suffix(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


def volume_stem(path: Path) -> str:
    suffix = volume_suffix(path) or path.suffix
    return path.name[: len(path.name) - len(suffix)]


def is_volume(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and volume_suffix(path) is not None


def find_volumes(folder: Path) -> list[Path]:
    """Image volumes directly inside `folder`; an Analyze .hdr/.img pair counts once (as .hdr)."""
    files = sorted(p for p in folder.iterdir() if is_volume(p))
    headers = {volume_stem(p).lower() for p in files if volume_suffix(p) in (".hdr", ".hdr.gz")}
    out = []
    for p in files:
        if volume_suffix(p) in (".img", ".img.gz") and volume_stem(p).lower() in headers:
            continue  # the data half of an Analyze/NIfTI pair
        out.append(p)
    return out


def find_volumes_below(folder: Path, max_depth: int = 3) -> list[Path]:
    """Volumes in `folder` or, when it holds none, in its sub-folders (e.g. an `anat/` folder)."""
    found = find_volumes(folder)
    if found or max_depth == 0:
        return found
    out: list[Path] = []
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        out.extend(find_volumes_below(child, max_depth - 1))
    return out


# A T1 at 0.5 mm over a whole head is ~80 million voxels; a header claiming more than this is
# refused before its data are read (a 2 KB file must not make the reader allocate gigabytes).
MAX_VOXELS = 2**28
# The most image data (voxels x bytes per voxel, as the header declares them) a T1 may hold: a
# 0.5 mm whole head (320 x 384 x 384) in float64 is 360 MiB. Reading converts to float32 on top of
# the stored data, so this also bounds what one read can cost.
MAX_IMAGE_BYTES = 512 * 2**20
# deflate (gzip, .mgz) cannot expand data more than about 1032:1, so a compressed file this many
# times smaller than the data its header declares cannot hold them.
MAX_DEFLATE_RATIO = 1100
# Above this many declared bytes a compressed file's stream is measured (in bounded chunks) before
# nibabel reads it; below, nibabel's own read is cheap and its failure is reported anyway.
STREAM_CHECK_ABOVE = 64 * 2**20
_STREAM_CHUNK = 4 * 2**20
_DEFLATE_SUFFIXES = (".gz", ".mgz")
_COMPRESSED_SUFFIXES = (*_DEFLATE_SUFFIXES, ".bz2", ".zst")


def _declared(image) -> tuple[tuple[int, ...], int, "np.dtype | None"]:
    """(shape, voxel count, voxel dtype) as the header declares them (dtype None when unknown)."""
    shape = tuple(int(d) for d in image.shape)
    voxels = int(np.prod(shape, dtype=np.float64)) if shape else 0
    try:
        dtype = np.dtype(image.get_data_dtype())
    except (AttributeError, TypeError, ValueError):
        dtype = None
    return shape, voxels, dtype


def _data_file(image) -> tuple[str | None, int | None]:
    """The file that holds the voxels and where they start, when nibabel reads them from a file."""
    proxy = getattr(image, "dataobj", None)
    data_file, offset = getattr(proxy, "file_like", None), getattr(proxy, "offset", None)
    if not isinstance(data_file, str) or not isinstance(offset, int) or isinstance(offset, bool):
        return None, None
    return data_file, offset


def image_size_problem(image, path: Path) -> str | None:
    """None when the header's promised data are plausible, else why not (one line).

    Reads nothing but the header and the data file's size, so a lying header (a 70-byte .nii.gz
    declaring 640^3 float64) costs nothing: the voxel count and the declared bytes have limits
    (MAX_VOXELS, MAX_IMAGE_BYTES), the voxel type must be real numbers, an uncompressed file must
    be as long as its header says, and a gzip file cannot be smaller than its data allow.
    """
    shape, voxels, dtype = _declared(image)
    if voxels > MAX_VOXELS:
        return f"the header declares {voxels:,} voxels (shape {shape}); more than {MAX_VOXELS:,} is not a T1 image"
    if dtype is not None:
        if dtype.kind not in "biuf" or dtype.fields is not None:
            return f"the header declares voxels of type {dtype} (shape {shape}); a T1 image holds real numbers"
        declared = voxels * dtype.itemsize
        if declared > MAX_IMAGE_BYTES:
            return (f"the header declares {_mib(declared)} of image data (shape {shape}, {dtype}); "
                    f"more than the {_mib(MAX_IMAGE_BYTES)} a T1 image may hold")
    data_file, offset = _data_file(image)
    if data_file is None or dtype is None:
        return None
    try:
        available = Path(data_file).stat().st_size
    except OSError:
        return None
    needed = offset + voxels * dtype.itemsize
    name = data_file.lower()
    if not name.endswith(_COMPRESSED_SUFFIXES):
        if needed > available:
            return (f"the header promises {needed:,} bytes of image data but the file holds {available:,} "
                    "(truncated file or corrupt header)")
    elif name.endswith(_DEFLATE_SUFFIXES) and needed > available * MAX_DEFLATE_RATIO:
        return (f"the header declares {_mib(needed)} of image data but the compressed file holds "
                f"{available:,} bytes, too few to expand to that (truncated file or corrupt header)")
    return None


def image_stream_problem(image, path: Path) -> str | None:
    """None when a compressed file's stream holds as many bytes as its header declares, else why not.

    nibabel allocates the declared size before it reads a compressed stream; for large declared
    sizes (above STREAM_CHECK_ABOVE) the stream is first read in bounded chunks and counted, so a
    short stream is refused at the cost of a chunk of memory. Call after `image_size_problem`.
    """
    shape, voxels, dtype = _declared(image)
    data_file, offset = _data_file(image)
    if data_file is None or dtype is None or not data_file.lower().endswith(_COMPRESSED_SUFFIXES):
        return None
    needed = offset + voxels * dtype.itemsize
    if voxels * dtype.itemsize <= STREAM_CHECK_ABOVE:
        return None
    from nibabel.openers import ImageOpener

    got = 0
    try:
        with ImageOpener(data_file, "rb") as stream:
            while got < needed:
                chunk = stream.read(min(_STREAM_CHUNK, needed - got))
                if not chunk:
                    break
                got += len(chunk)
    except Exception as error:  # zlib.error, EOFError, OSError: a broken stream
        return (f"cannot read the compressed image data after {got:,} bytes, the file may be truncated or "
                f"corrupt ({type(error).__name__}: {_first_line(error)})")
    if got < needed:
        return (f"the header declares {needed:,} bytes of image data but the compressed stream holds only "
                f"{got:,} (truncated file or corrupt header)")
    return None


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def check_image_header(path: Path) -> str | None:
    """A cheap check (header only): None when nibabel reads a 3D image, else the problem."""
    try:
        image = nib.load(str(path))
    except FileNotFoundError:
        return "file not found"
    except Exception as error:  # nibabel raises many types for bad files
        return f"not a readable image ({type(error).__name__}: {_first_line(error)})"
    return image_size_problem(image, path) or _shape_problem(image.shape)


def check_image_data(path: Path) -> tuple[str | None, list[str]]:
    """A full check: (fatal problem or None, warnings).

    Fatal: unreadable or truncated, not 3D, no finite voxel, constant. A few NaN/inf voxels are
    only a warning: preprocessing sets them to 0 (the same rule as t1.load_t1).
    """
    problem = check_image_header(path)
    if problem:
        return problem, []
    try:
        image = nib.load(str(path))
        problem = image_stream_problem(image, path)
        if problem:
            return problem, []
        data = np.asanyarray(image.dataobj)
    except Exception as error:
        return f"cannot read the image data, the file may be truncated ({type(error).__name__}: {_first_line(error)})", []
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        return f"unsupported voxel type {data.dtype}", []
    finite = np.isfinite(data)
    if not finite.any():
        return "holds no finite values (all NaN or infinite)", []
    warnings = []
    if not finite.all():
        warnings.append(f"{int((~finite).sum())} NaN/infinite voxels (set to 0 when preprocessed)")
    values = data[finite]
    if float(values.max()) == float(values.min()):
        return f"the image is constant (every voxel is {float(values.min()):g}); not a T1 image", warnings
    return None, warnings


def _shape_problem(shape) -> str | None:
    shape = tuple(int(d) for d in shape)
    dims = list(shape)
    while len(dims) > 3 and dims[-1] == 1:
        dims.pop()
    if len(dims) != 3:
        return f"expected a 3D T1 volume, found a {len(shape)}D image of shape {shape}"
    if min(dims) < 2:
        return f"expected a 3D T1 volume, found a flat image of shape {shape}"
    return None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else "no detail"
