"""Checkpoints: weights in safetensors, everything else in JSON, written atomically.

A checkpoint is a pair of files in the run folder, `<kind>.safetensors` (weights, never a pickle)
and `<kind>.json` (what is needed to rebuild and trust the model: training config, feature schema,
fitted feature encoder, MRI preprocessing settings, class names, versions, seed, epoch, metrics,
energy). `kind` is "best" or "last".

Why the care:
- Atomic writes (temporary file in the same folder, fsync, `os.replace`): a crash or a cancelled
  run never leaves a half-written file where a good one was.
- The JSON records the SHA-256 of the weights file and of its own content (`metadata_sha256`, over
  the canonical JSON of every other key); the weights are written first, the JSON last. If the two
  ever disagree, or the JSON was edited (an interrupted save, files copied from different runs, a
  hand-edited feature name), `load_run` refuses them instead of silently running the wrong model.
- A checkpoint is published as one unit: the weights file carries the same metadata in its own
  header (`smmt_metadata`, with its own checksum), so one `os.replace` of the weights file switches
  weights and metadata together. The JSON beside it is written right after, for people, for
  results added later (test metrics) and for older SMMT Studio versions. A reader that finds the
  two apart while a live process trains the run (run.json `running`, its writer alive) caught the
  trainer between its two writes, or read the JSON of one save and the weights of the next: it
  takes the metadata from the weights file it read, which always belong to those weights. Anywhere
  else a disagreement is refused as before (after reading both once more: the training may have
  ended meanwhile). A run written before the header carried the metadata loads as it always did
  (why all this: predicting from a run while it trained used to fail now and then).
- Before anything is built, the metadata are validated with bounds (the pydantic configs) and the
  model they describe is sized on the meta device: more than MAX_MODEL_PARAMETERS is refused.
  `meta_model_building` skips the random initialisers there: their meta kernels would import
  torch._dynamo, which cost a fresh `smmt predict` about 6 s.
- `load_run` rebuilds the model from the stored config and schema and checks every tensor name and
  shape before loading, so a mismatch is reported as what differs, not as a stack trace.
"""

from __future__ import annotations

import hashlib
import json
import platform
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smmt_core import fileio
from smmt_core.batch import FeatureSchema
from smmt_core.errors import CheckpointError, ConfigError
from smmt_core.fileio import atomic_write_bytes, atomic_write_text, read_regular_bytes  # noqa: F401 (re-exported)
from smmt_core.jsonsafe import json_safe
from smmt_core.train.config import TrainConfig
from smmt_core.train.run_folder import (
    CHECKPOINT_KINDS,
    LAST_METADATA,
    TRAINING_STATE_FILE,
    CheckpointMeta,
    JsonObject,
    metadata_name,
    weights_name,
)
from smmt_core.train.run_record import RunRecord

CHECKPOINT_FORMAT = 2  # bump when the JSON layout changes incompatibly (2: metadata_sha256)
# The weights file's header key holding the checkpoint's metadata (JSON text). Not a format change:
# older readers ignore it, and files without it (SMMT Studio 0.2.0 and before) still load.
EMBEDDED_METADATA_KEY = "smmt_metadata"
# Keys of the metadata that the weights file cannot hold about itself (they describe its bytes).
_SELF_DESCRIBING_KEYS = ("weights_sha256", "metadata_sha256")
# Refused before anything is built or the weights are read: ten times the paper preset would still
# fit. A tampered best.json describing a larger model is refused with this number in the message.
MAX_MODEL_PARAMETERS = 500_000_000


# -- building a model's shapes ---------------------------------------------------------------
# In-place initialisers (random or not): on the meta device they have nothing to fill, but torch
# runs the meta kernels of the random ones in Python (torch._refs), whose first call imports
# torch._dynamo (about 6 s, and most of a fresh `smmt predict`). Skipped on meta tensors by
# `meta_model_building`. tests/core/test_startup_imports.py builds the presets this way and checks
# that torch._dynamo stays out (not yet for `volume`: its encoder computes a position encoding).
_META_NO_OPS = frozenset(
    [getattr(torch.nn.init, name) for name in ("normal_", "uniform_", "trunc_normal_", "constant_", "zeros_", "ones_",
                                               "kaiming_normal_", "kaiming_uniform_", "xavier_normal_",
                                               "xavier_uniform_", "orthogonal_", "sparse_", "eye_", "dirac_")]
    + [getattr(torch.Tensor, name) for name in ("normal_", "uniform_", "bernoulli_", "exponential_", "random_",
                                                 "cauchy_", "log_normal_", "geometric_", "erfinv_")])

# Ranges (e.g. for fixed position encodings) have Python meta kernels too: made on the CPU, then moved.
_META_FROM_CPU = frozenset([torch.arange, torch.linspace, torch.logspace])


class _SkipInitOnMeta(torch.overrides.TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _META_NO_OPS:
            tensor = args[0] if args else kwargs.get("tensor", kwargs.get("self"))  # torch.nn.init passes it by name
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor  # what an in-place initialiser returns: the tensor itself
        if func in _META_FROM_CPU and kwargs.get("device") is None:
            return func(*args, **{**kwargs, "device": "cpu"}).to("meta")  # small (token counts), exact shape and dtype
        return func(*args, **kwargs)


@contextmanager
def meta_model_building():
    """Build modules inside this to get their shapes only: on the meta device (no memory, no random
    numbers drawn, so a training on another thread is not disturbed) and without running the random
    initialisers, which would pull in torch's compiler stack (torch._dynamo) for nothing.

        with meta_model_building():
            model = build_model(config.model, schema)
    """
    with torch.device("meta"), _SkipInitOnMeta():
        yield


# -- atomic file writing (smmt_core.fileio; re-exported here for the trainer) -----------------
def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Strict JSON (NaN/inf become null), indented for people to read."""
    return atomic_write_text(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path, what: str = "file") -> dict:
    """Read a JSON object; CheckpointError naming the file when it is missing, unreadable or hostile
    (see `smmt_core.fileio.read_json` for the limits)."""
    return fileio.read_json(path, what, error=CheckpointError)


# -- metadata ------------------------------------------------------------------------------
def software_versions() -> dict[str, str]:
    """Versions that matter for reproducing a run."""
    import sklearn

    from smmt_core import __version__

    return {
        "smmt_studio": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def checkpoint_paths(run_dir: str | Path, kind: str) -> tuple[Path, Path]:
    if kind not in CHECKPOINT_KINDS:
        raise CheckpointError(f"unknown checkpoint {kind!r}; choose one of {', '.join(CHECKPOINT_KINDS)}")
    run_dir = Path(run_dir)
    return run_dir / weights_name(kind), run_dir / metadata_name(kind)


def state_dict_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the model's parameters and buffers (copies, so tied weights save cleanly)."""
    return {name: t.detach().to("cpu").clone().contiguous() for name, t in model.state_dict().items()}


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors file of `tensors`, its metadata in sorted key order. The library writes the
    metadata in hash-map order, which changes from one save to the next: two identical runs gave
    checkpoints that differed in bytes (and checksums)."""
    from safetensors.torch import save

    header_text, data = _split_safetensors(save(tensors, metadata=metadata))
    header = json.loads(header_text)
    ordered = {"__metadata__": dict(sorted(header.pop("__metadata__").items()))} if "__metadata__" in header else {}
    text = json.dumps({**ordered, **header}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data start 8-byte aligned, as the library pads them
    return len(text).to_bytes(8, "little") + text + data


def _split_safetensors(blob: bytes) -> tuple[bytes, bytes]:
    """(header JSON, tensor data) of a safetensors file: an 8-byte little-endian header length,
    the header, the data. A header that claims more bytes than the file holds comes back cut short."""
    length = int.from_bytes(blob[:8], "little")
    return blob[8:8 + length], blob[8 + length:]


def save_checkpoint(run_dir: str | Path, kind: str, model: torch.nn.Module | dict,
                    metadata: CheckpointMeta | dict) -> Path:
    """Publish a checkpoint: `<kind>.safetensors` (the weights, their metadata in its header: this
    one rename is the switch to the new checkpoint), then `<kind>.json` (the same metadata with the
    weights' SHA-256). Returns the weights path.

    `model` is a module or an already-copied state dict (see `state_dict_tensors`).
    """
    weights_path, meta_path = checkpoint_paths(run_dir, kind)
    tensors = state_dict_tensors(model) if isinstance(model, torch.nn.Module) else dict(model)
    given = metadata.to_dict() if isinstance(metadata, JsonObject) else metadata
    meta = CheckpointMeta.from_dict({k: v for k, v in given.items() if k not in _SELF_DESCRIBING_KEYS})
    meta.format_version = CHECKPOINT_FORMAT
    meta.kind = kind
    meta.weights_file = weights_path.name
    blob = safetensors_bytes(tensors, {"format": "pt", "smmt_checkpoint": str(CHECKPOINT_FORMAT),
                                       EMBEDDED_METADATA_KEY: _embedded_text(meta.to_dict())})
    atomic_write_bytes(weights_path, blob)
    meta.weights_sha256 = hashlib.sha256(blob).hexdigest()
    _write_metadata(meta_path, meta.to_dict())
    return weights_path


def _embedded_text(meta: dict) -> str:
    """The metadata as the weights file's header holds them: compact JSON with their own checksum,
    keys in their own order (as in the JSON file: the order of e.g. the categorical variables is
    the order of the model's embeddings)."""
    content = json.loads(json.dumps(json_safe(meta), allow_nan=False))
    content["metadata_sha256"] = metadata_checksum(content)
    return json.dumps(content, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def embedded_metadata(blob: bytes, weights_path: str | Path) -> dict | None:
    """The metadata a weights file carries in its header, completed as its JSON file holds them
    (`weights_sha256` of these bytes, `metadata_sha256`); None when the file has none (written by
    an older SMMT Studio) or they do not parse or fail their checksum."""
    header_text, _ = _split_safetensors(blob)
    if len(blob) < 8 or int.from_bytes(blob[:8], "little") != len(header_text) or len(header_text) > fileio.MAX_JSON_BYTES:
        return None  # too short, cut short, or a header larger than any metadata this version writes
    try:
        header = fileio.parse_json(header_text, "weights header", weights_path, error=CheckpointError)
        text = (header.get("__metadata__") or {}).get(EMBEDDED_METADATA_KEY)
        if not isinstance(text, str):
            return None
        content = fileio.parse_json(text.encode("utf-8"), "weights metadata", weights_path, error=CheckpointError)
    except (CheckpointError, AttributeError):
        return None
    stored = content.pop("metadata_sha256", None)
    if stored != metadata_checksum(content):
        return None
    meta = dict(content, weights_sha256=hashlib.sha256(blob).hexdigest())
    meta["metadata_sha256"] = metadata_checksum(meta)
    return meta


def metadata_checksum(meta: dict) -> str:
    """SHA-256 of the metadata as they read back from disk (canonical JSON, this key left out)."""
    content = {k: v for k, v in meta.items() if k != "metadata_sha256"}
    as_read = json.loads(json.dumps(json_safe(content), allow_nan=False))  # tuples -> lists, numpy -> Python
    canonical = json.dumps(as_read, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _write_metadata(meta_path: Path, meta: dict) -> None:
    meta = dict(meta)
    meta["metadata_sha256"] = metadata_checksum(meta)
    atomic_write_json(meta_path, meta)


def update_checkpoint_metadata(run_dir: str | Path, kind: str, **changes) -> None:
    """Add or replace metadata keys (e.g. final test metrics) without touching the weights."""
    _, meta_path = checkpoint_paths(run_dir, kind)
    meta = CheckpointMeta.from_dict(read_json(meta_path, "checkpoint metadata"))
    meta.update(changes)
    _write_metadata(meta_path, meta.to_dict())


# -- loading -------------------------------------------------------------------------------
@dataclass
class LoadedRun:
    """A trained model rebuilt from a run folder, with everything needed to feed it new data."""

    run_dir: Path
    config: TrainConfig
    schema: FeatureSchema
    encoder: Any  # smmt_core.data.features.FeatureEncoder
    preprocess: Any  # smmt_core.data.preprocess.PreprocessConfig
    model: torch.nn.Module  # in eval mode, on `device`
    classes: list[str]
    metadata: dict = field(default_factory=dict)
    which: str = "best"
    device: str = "cpu"

    @property
    def meta(self) -> CheckpointMeta:
        """`metadata`, typed."""
        return CheckpointMeta.from_dict(self.metadata)

    @property
    def name(self) -> str:
        return self.meta.run_name or self.run_dir.name

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.synthetic)


def schema_mismatch_message(expected: FeatureSchema, found: FeatureSchema) -> str:
    """'numeric: [...] != [...]; classes: ...' — what differs between two schemas."""
    return "; ".join(expected.differences(found))


def read_checkpoint_metadata(run_dir: str | Path, which: str = "best") -> dict:
    """The JSON half of a checkpoint, checked for format and required keys."""
    weights_path, meta_path = checkpoint_paths(run_dir, which)
    if not Path(run_dir).is_dir():
        raise CheckpointError("run folder not found", run_dir)
    return checked_metadata(read_json(meta_path, "checkpoint metadata"), meta_path)


def checked_metadata(meta: dict, meta_path: Path) -> dict:
    """`meta` when its format is one this version reads, it holds the required keys and its checksum
    is right; CheckpointError naming `meta_path` otherwise."""
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError("not an SMMT Studio checkpoint (no format_version)", meta_path)
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint format {version} was written by a newer SMMT Studio (this one reads up to "
            f"{CHECKPOINT_FORMAT}); update SMMT Studio", meta_path)
    required = list(CheckpointMeta.REQUIRED)
    if version >= 2:  # format 1 (SMMT Studio 0.1) had no checksum of its own
        required.append("metadata_sha256")
    missing = [k for k in required if k not in meta]
    if missing:
        raise CheckpointError(f"checkpoint metadata lacks {', '.join(missing)}", meta_path)
    if version >= 2 and meta["metadata_sha256"] != metadata_checksum(meta):
        raise CheckpointError("checkpoint metadata were changed after they were written (checksum differs); "
                              "use the files as training wrote them", meta_path)
    return meta


def check_data_schema(model_schema: FeatureSchema, data_schema: FeatureSchema, where: str | Path | None = None,
                      missing_columns: list[str] | None = None) -> None:
    """CheckpointError naming every difference when data would not feed the model as it was trained.

    `data_schema` is what the data provide (the run's encoder applied to the data's columns, the
    MRI shape the data give); `missing_columns` are feature columns the data lack, named first.
    """
    differences = model_schema.differences(data_schema)
    if not differences and not missing_columns:
        return
    parts = []
    if missing_columns:
        parts.append(f"the data lack feature column(s) {', '.join(missing_columns)}")
    parts.extend(differences)
    raise CheckpointError("model was trained on different inputs than these data provide: "
                          + "; ".join(parts) + " (checkpoint != data)", where)


def load_run(run_dir: str | Path, which: str = "best", device: str = "cpu", *, settled: bool = False) -> LoadedRun:
    """Rebuild the model of a run from `<which>.safetensors` + `<which>.json`.

    Raises CheckpointError (naming the file and what is wrong) when a file is missing or corrupt,
    the weights do not belong to the metadata, the variant is unknown, the stored feature schema
    is malformed or disagrees with the stored encoder or preprocessing settings, or a tensor
    name/shape differs. Whether some *data* fit the run is `check_data_schema`'s question.

    Safe while the run trains: weights and JSON that disagree because a new checkpoint is being
    published give the weights that were read, with the metadata their own header carries (see the
    module's docstring). `settled=True`: the caller knows nobody writes the folder (the trainer
    resuming it holds its lock), so any disagreement is refused.

    Loading draws no random numbers (the model is built on the meta device, then given the
    stored weights), so it never disturbs a training running on another thread.
    """
    try:
        return _load_run(Path(run_dir), which, device, settled)
    except _MismatchedPair:
        pass  # read while a training replaced the pair, and it has ended since: the files are final now
    return _load_run(Path(run_dir), which, device, settled)


class _MismatchedPair(CheckpointError):
    """The weights file read does not belong to the JSON read, and no training explains it."""


@dataclass
class _Described:
    """What a checkpoint's metadata describe, checked, with the model built on the meta device."""

    config: TrainConfig
    schema: FeatureSchema
    classes: list[str]
    encoder: Any
    preprocess: Any
    model: torch.nn.Module
    n_parameters: int

    @property
    def max_weights_bytes(self) -> int:
        return 8 * self.n_parameters + 2**20  # float64 at most, plus the header


def _load_run(run_dir: Path, which: str, device: str, settled: bool) -> LoadedRun:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    weights_path, meta_path = checkpoint_paths(run_dir, which)
    meta = read_checkpoint_metadata(run_dir, which)
    described = _describe(meta, meta_path)

    try:
        size = weights_path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError("weights file is missing", weights_path) from None
    if size > described.max_weights_bytes:
        raise CheckpointError(f"weights file is larger ({size:,} bytes) than the model described in "
                              f"{meta_path.name} can hold", weights_path)
    try:  # one read: whatever replaces the file meanwhile, these bytes are one version of it
        blob = read_regular_bytes(weights_path, "weights file", error=CheckpointError,
                                  max_bytes=described.max_weights_bytes)
    except FileNotFoundError:
        raise CheckpointError("weights file is missing", weights_path) from None
    if hashlib.sha256(blob).hexdigest() != meta["weights_sha256"]:
        meta = _metadata_of_published_weights(run_dir, which, blob, settled)
        described = _describe(meta, weights_path)
        if len(blob) > described.max_weights_bytes:
            raise CheckpointError(f"weights file is larger ({len(blob):,} bytes) than the model it describes "
                                  "can hold", weights_path)
    try:
        tensors = load_tensors(blob)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"weights file is corrupt ({error})", weights_path) from None

    model = described.model
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = [
        f"{k} {tuple(tensors[k].shape)} != {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(tensors)) if tensors[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing tensors: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected tensors: {', '.join(unexpected[:5])}{' …' if len(unexpected) > 5 else ''}")
        if wrong_shape:
            parts.append(f"shape (file != model): {', '.join(wrong_shape[:5])}")
        raise CheckpointError("weights do not fit the model described in the metadata: " + "; ".join(parts), weights_path)
    tensors = _in_model_dtypes(tensors, expected, weights_path)
    model.load_state_dict(tensors, strict=True, assign=True)
    model.to(device)
    model.eval()
    return LoadedRun(run_dir=run_dir, config=described.config, schema=described.schema, encoder=described.encoder,
                     preprocess=described.preprocess, model=model, classes=described.classes, metadata=meta,
                     which=which, device=str(device))


def _metadata_of_published_weights(run_dir: Path, which: str, blob: bytes, settled: bool) -> dict:
    """The metadata of weights that do not belong to the JSON read beside them: their own (from
    their header) when a live process is training the run, so publishing a new checkpoint now and
    then; otherwise _MismatchedPair (load_run reads both files once more, then reports it)."""
    weights_path, meta_path = checkpoint_paths(run_dir, which)
    mismatch = _MismatchedPair(f"weights do not belong to {meta_path.name} (checksum differs: interrupted save, "
                               "or files from different runs)", weights_path)
    if settled:
        raise mismatch
    embedded = embedded_metadata(blob, weights_path)
    if embedded is None or embedded.get("kind") != which or not RunRecord(run_dir).is_training:
        raise mismatch
    return checked_metadata(embedded, weights_path)


def _describe(meta: dict, meta_path: Path) -> _Described:
    """Check what `meta` describe (bounds, schema, encoder, preprocessing) and build the model on
    the meta device; CheckpointError naming `meta_path` (the file the metadata came from) at the
    first problem, before any weights are read."""
    from smmt_core.data.features import FeatureEncoder
    from smmt_core.data.preprocess import PREPROCESS_VERSION, PreprocessConfig
    from smmt_core.model.smmt import build_model

    try:
        config = TrainConfig.from_dict(meta["config"])  # bounds and choices checked before anything is built
    except ConfigError as error:
        raise CheckpointError(f"stored training config is invalid: {error.problem}", meta_path) from None

    try:
        schema = FeatureSchema.from_dict(meta["schema"])
    except ValueError as error:
        raise CheckpointError(f"stored feature schema is invalid: {error}", meta_path) from None
    classes = meta["classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"stored class names must be a list of names, got {classes!r}", meta_path)
    if classes != list(schema.classes):
        raise CheckpointError(f"class names {classes} differ from the schema's {schema.classes}", meta_path)
    try:
        encoder = FeatureEncoder.from_dict(meta["encoder"])
        preprocess = PreprocessConfig.from_dict(meta["preprocess"])
    except Exception as error:
        raise CheckpointError(f"stored feature encoder or preprocessing settings are invalid: {error}", meta_path) from None

    encoder_schema = encoder.schema(classes, schema.mri_shape, schema.mri_volume)
    if encoder_schema.differences(schema):
        raise CheckpointError(
            "stored feature encoder does not match the stored schema: "
            + schema_mismatch_message(schema, encoder_schema), meta_path)
    stored_version = meta["preprocess"].get("version", 1) if isinstance(meta["preprocess"], dict) else None
    if schema.mri_shape is not None and stored_version != PREPROCESS_VERSION:
        # Same settings, other slices: predicting would feed the model images it never saw.
        raise CheckpointError(
            f"the model was trained with MRI preprocessing version {stored_version}; this SMMT Studio "
            f"uses version {PREPROCESS_VERSION} (other slice positions): train the model again", meta_path)
    if schema.mri_shape is not None and tuple(preprocess.mri_shape) != tuple(schema.mri_shape):
        raise CheckpointError(
            f"stored preprocessing settings give MRI input {list(preprocess.mri_shape)} but the schema "
            f"says {list(schema.mri_shape)} (slices, channels, height, width)", meta_path)
    if schema.mri_shape is not None and preprocess.volume_spec != schema.mri_volume:
        raise CheckpointError(
            f"stored preprocessing settings give MRI volume tokens {preprocess.volume_spec} but the schema "
            f"says {schema.mri_volume}", meta_path)

    try:
        with meta_model_building():  # shapes only: no memory, no random initialisation, no torch._dynamo
            model = build_model(config.model, schema)
    except ConfigError as error:
        raise CheckpointError(f"stored model settings are invalid: {error.problem}", meta_path) from None
    n_parameters = sum(t.numel() for t in model.state_dict().values())
    if n_parameters > MAX_MODEL_PARAMETERS:
        raise CheckpointError(
            f"the metadata describe a model of {n_parameters:,} parameters, more than this SMMT Studio loads "
            f"({MAX_MODEL_PARAMETERS:,}); refusing to build it", meta_path)
    return _Described(config, schema, classes, encoder, preprocess, model, n_parameters)


def _in_model_dtypes(tensors: dict, expected: dict, weights_path: Path) -> dict:
    """The tensors in the model's own dtypes: floating point converted (weights re-saved as float64
    or float16 load as the model's float32; `assign=True` would otherwise keep the file's dtype and
    the first forward pass fail on mixed types), anything else of another dtype refused by name."""
    import torch

    out = {}
    for name, tensor in tensors.items():
        want = expected[name].dtype
        if tensor.dtype == want:
            out[name] = tensor
            continue
        if not (tensor.is_floating_point() and torch.empty(0, dtype=want).is_floating_point()):
            raise CheckpointError(f"tensor {name} is stored as {str(tensor.dtype).removeprefix('torch.')}, the "
                                  f"model needs {str(want).removeprefix('torch.')}", weights_path)
        converted = tensor.to(want)
        if bool((torch.isfinite(tensor) & ~torch.isfinite(converted)).any()):
            raise CheckpointError(f"tensor {name} holds values outside the range of "
                                  f"{str(want).removeprefix('torch.')}", weights_path)
        out[name] = converted
    return out


# -- training state (for `smmt train --resume`) --------------------------------------------------


def save_training_state(run_dir: str | Path, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                        averaged: dict[str, torch.Tensor] | None = None) -> dict:
    """Write what resuming needs beyond the weights: the optimiser's moments and every RNG state
    (and, with weight averaging, the running average of the weights: `averaged`).

    Tensors go to safetensors, the rest (Adam's hyper-parameters, Python's and NumPy's RNG) to the
    same file's JSON header: no pickle. Returns the keys to record in last.json (file + SHA-256),
    which is written after this file, so last.json never points at a state it does not match.
    """
    import random

    state = optimizer.state_dict()
    tensors = {"rng.torch": torch.random.get_rng_state(), "rng.batch_order": generator.get_state()}
    for name, value in (averaged or {}).items():
        tensors[f"average.{name}"] = value.detach().to("cpu").clone().contiguous()
    scalars: dict[str, dict] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{name}"] = value.detach().to("cpu").clone().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    numpy_state = np.random.get_state()
    header = {
        "param_groups": json.dumps(json_safe(state["param_groups"])),
        "optim_scalars": json.dumps(json_safe(scalars)),
        "rng_python": json.dumps(random.getstate()),
        "rng_numpy": json.dumps([numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]]),
    }
    blob = safetensors_bytes(tensors, header)
    atomic_write_bytes(Path(run_dir) / TRAINING_STATE_FILE, blob)
    return {"training_state_file": TRAINING_STATE_FILE, "training_state_sha256": hashlib.sha256(blob).hexdigest()}


def load_training_state(run_dir: str | Path, meta: dict, optimizer: torch.optim.Optimizer,
                        generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Restore what `save_training_state` wrote (checked against last.json's checksum); returns the
    averaged weights it holds (empty without weight averaging)."""
    import random

    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load as load_tensors

    path = Path(run_dir) / TRAINING_STATE_FILE
    expected = meta.get("training_state_sha256")
    if not expected:
        raise CheckpointError("last.json records no optimiser state (written by an older SMMT Studio); "
                              "the run cannot be resumed", Path(run_dir) / LAST_METADATA)
    try:
        blob = read_regular_bytes(path, "optimiser state", error=CheckpointError)
    except FileNotFoundError:
        raise CheckpointError("optimiser state is missing; the run cannot be resumed", path) from None
    if hashlib.sha256(blob).hexdigest() != expected:
        raise CheckpointError("optimiser state does not belong to last.json (checksum differs)", path)
    try:
        tensors = load_tensors(blob)
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        param_groups = json.loads(header["param_groups"])
        scalars = json.loads(header["optim_scalars"])
        python_state = json.loads(header["rng_python"])
        numpy_state = json.loads(header["rng_numpy"])
    except (SafetensorError, ValueError, KeyError, OSError) as error:
        raise CheckpointError(f"optimiser state is corrupt ({error})", path) from None
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in scalars.items():
        state.setdefault(int(index), {}).update(values)
    for group in param_groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    try:
        optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    except (ValueError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"optimiser state does not fit the model ({error})", path) from None
    torch.random.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.batch_order"])
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    np.random.set_state((numpy_state[0], np.asarray(numpy_state[1], dtype=np.uint32), *numpy_state[2:]))
    return {key[len("average."):]: value for key, value in tensors.items() if key.startswith("average.")}
