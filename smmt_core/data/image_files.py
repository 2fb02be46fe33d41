"""T1 image files on disk: which files are volumes, and the checks of a header's promises that
every reader applies before reading the data (a lying header must allocate nothing).

Below the dataset layouts, the DICOM intake and the T1 reader, which all look for and check image
files the same way. nibabel is imported only when a file is opened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
    import nibabel as nib

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
    import nibabel as nib

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
