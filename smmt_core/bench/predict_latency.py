"""How long a prediction takes: load a run, then predict for a 1 mm T1 (target: <= 1 s on CPU).

Why it is measured this way: the latency a user feels in the GUI is "drop a scan, see the
answer": reading and preprocessing the NIfTI (nibabel + nilearn resampling to the MNI grid,
intensity scaling, slicing) plus the forward pass with contributions and cluster ids. So the
*first* prediction of a file that was never seen (no disk cache, no memory cache) is the figure
that matters; repeated predictions of the same subject (modality toggles) hit the in-memory cache
and are reported separately.

The T1 is nilearn's bundled MNI152 2009 template at 1 mm (197 x 233 x 189), written to a temporary
NIfTI, so the benchmark needs no data and no network. Without `--model` the benchmark builds an
untrained model with the chosen preset's architecture (latency does not depend on the weights)
and saves it as a run through the normal checkpoint code, so loading is measured too.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from smmt_core.data.feature_sets import resolve_features
from smmt_core.data.subject import Subject
from smmt_core.device import DEVICE_CHOICES
from smmt_core.train.config import PRESETS, TrainConfig
from smmt_core.variants import VARIANT_NAMES


def write_mni_t1(path: str | Path) -> Path:
    """nilearn's MNI152 T1 template at 1 mm written as NIfTI (a realistic 1 mm T1 volume)."""
    import nibabel as nib
    import numpy as np
    from nilearn import datasets

    tpl = datasets.load_mni152_template()  # 1 mm, bundled with nilearn
    data = np.asarray(tpl.dataobj, dtype=np.float32)
    path = Path(path)
    nib.save(nib.Nifti1Image(data, tpl.affine), str(path))
    return path


def make_untrained_run(out_dir: str | Path, preset: str = "demo", variant: str = "smmt") -> Path:
    """A run folder with randomly initialised weights for `preset`, written like a real one."""
    from smmt_core.data.features import FeatureEncoder
    from smmt_core.model.smmt import build_model
    from smmt_core.train.checkpoints import save_checkpoint, software_versions
    from smmt_core.train.run_record import RunRecord

    config = TrainConfig.build(preset, dataset="benchmark", variant=variant, measure_energy=False,
                               features=["paper"])
    classes = config.data.classes
    features = resolve_features(config.data.features)
    # Two made-up people are enough to fit the encoder (means, categories); values are plausible.
    people = [
        Subject("a", "CN", numeric={"MMSE": 29.0, "CDGLOBAL": 0.0, "FAQ": 0.0, "AGE": 74.0},
                categorical={"PTGENDER": "Female", "APOE4": "0"}),
        Subject("b", "AD", numeric={"MMSE": 22.0, "CDGLOBAL": 1.0, "FAQ": 15.0, "AGE": 77.0},
                categorical={"PTGENDER": "Male", "APOE4": "1"}),
    ]
    encoder = FeatureEncoder(features).fit(people)
    preprocess = config.preprocess
    schema = encoder.schema(classes, preprocess.mri_shape)
    model = build_model(config.model, schema)
    run_dir = RunRecord.create(out_dir, f"untrained-{preset}-{variant}").run_dir
    meta = {"run_name": run_dir.name, "config": config.to_dict(), "schema": schema.to_dict(),
            "encoder": encoder.to_dict(), "preprocess": preprocess.to_dict(), "classes": classes,
            "features": features, "seed": config.optim.seed, "synthetic": True, "epoch": 0,
            "versions": software_versions(), "note": "untrained weights, for latency benchmarks only"}
    save_checkpoint(run_dir, "best", model, meta)
    return run_dir


def measure_predict_latency(run_dir: str | Path | None = None, *, preset: str = "demo", variant: str = "smmt",
                            repeats: int = 5, device: str = "cpu", threads: int | None = None) -> dict:
    """Seconds to load a run and to predict for a 1 mm T1 (first, uncached, and repeated)."""
    import torch

    from smmt_core.predict import Predictor

    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="smmt-latency-") as tmp:
        tmp = Path(tmp)
        t1_paths = [write_mni_t1(tmp / f"t1_{i}.nii.gz") for i in range(max(1, repeats))]
        if run_dir is None:
            run_dir = make_untrained_run(tmp / "runs", preset=preset, variant=variant)
        # Warm up imports (torch, nilearn, scipy) so that "load" measures the run, not Python.
        import nilearn.image  # noqa: F401

        t = time.perf_counter()
        predictor = Predictor.load(run_dir, device=device)
        load_s = time.perf_counter() - t

        clinical = {"MMSE": 24.0, "CDGLOBAL": 0.5, "FAQ": 8.0, "AGE": 76.0}
        categorical = {"PTGENDER": "Female", "APOE4": "1"}
        first_s, model_only_s, repeat_s = [], [], []
        for i, path in enumerate(t1_paths):  # a new file each time: nothing cached
            subject = Subject(f"bench-{i}", t1_path=path, numeric=dict(clinical), categorical=dict(categorical))
            t = time.perf_counter()
            result = predictor.predict(subject)
            first_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            predictor.predict(subject)  # same file: preprocessed image comes from memory
            repeat_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            predictor.predict(subject, modalities=["clinical", "categorical"])
            model_only_s.append(time.perf_counter() - t)
        shape = None
        import nibabel as nib

        shape = tuple(int(v) for v in nib.load(str(t1_paths[0])).shape)
    return {
        "run": str(run_dir) if run_dir else None,
        "preset": preset,
        "variant": predictor.run.config.model.variant,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "t1_shape": shape,
        "load_s": load_s,
        "first_prediction_s": first_s,
        "first_prediction_median_s": statistics.median(first_s),
        "first_prediction_max_s": max(first_s),
        "cold_first_s": first_s[0],
        "repeat_same_subject_median_s": statistics.median(repeat_s),
        "without_mri_median_s": statistics.median(model_only_s),
        "prediction": result.prediction,
        "target_s": 1.0,
        "meets_target": max(first_s) <= 1.0,
    }


def format_report(r: dict) -> str:
    lines = [
        f"prediction latency, {r['variant']} ({r['preset']} preset), {r['device']}, {r['torch_threads']} torch thread(s)",
        f"T1: MNI152 template at 1 mm, shape {r['t1_shape']}",
        f"load run:                               {r['load_s']:.3f} s",
        f"first prediction of a new file (cold):  {r['cold_first_s']:.3f} s",
        f"first prediction of a new file, median: {r['first_prediction_median_s']:.3f} s "
        f"(max {r['first_prediction_max_s']:.3f} s over {len(r['first_prediction_s'])} files)",
        f"same subject again (memory cache):      {r['repeat_same_subject_median_s']:.3f} s",
        f"clinical + categorical only:            {r['without_mri_median_s']:.3f} s",
        f"target <= {r['target_s']:.1f} s for the first prediction: {'met' if r['meets_target'] else 'NOT met'}",
    ]
    return "\n".join(lines)


def add_bench_predict(bench_subparsers) -> None:
    """Register `smmt bench predict` (call from smmt_core.cli.bench_commands)."""
    parser = bench_subparsers.add_parser(
        "predict",
        help="time loading a run and predicting for a 1 mm T1 (target: <= 1 s on CPU)",
        description=(
            "Loads a run (or an untrained model of --preset) and times the first prediction of a "
            "1 mm T1 (nilearn's MNI152 template, never seen before: preprocessing included), a "
            "repeated prediction of the same subject, and one without MRI."
        ),
    )
    parser.add_argument("--model", metavar="RUN", help="run folder (default: an untrained model of --preset)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--variant", choices=VARIANT_NAMES, default="smmt")
    parser.add_argument("--repeats", type=int, default=5, help="number of distinct T1 files (default 5)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    parser.set_defaults(handler=_run_bench_predict)


def _run_bench_predict(args) -> int:
    result = measure_predict_latency(args.model, preset=args.preset, variant=args.variant, repeats=args.repeats,
                                     device=args.device, threads=args.threads)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
