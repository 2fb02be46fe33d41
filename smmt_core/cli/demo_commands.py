"""`smmt` sub-commands of the demo area. Each command sets `handler` (args -> exit code).

`smmt demo-data OUT --subjects N --seed S [--missing-rate R] [--with-mci]` writes the SYNTHETIC
demo cohort (a BIDS dataset) that the app uses on first launch; see docs/demo-cohort.md. The flags
come from `smmt_core.data.demo_defaults`; the generator is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from smmt_core.data import demo_defaults as defaults


def add_commands(subparsers) -> None:
    """Register this area's sub-commands on the `smmt` parser."""
    parser = subparsers.add_parser(
        "demo-data",
        help="build the SYNTHETIC demo cohort (BIDS) from the bundled MNI152 template",
        description=(
            "Build the SYNTHETIC demo cohort: a BIDS dataset of T1 images made from the MNI152 2009 "
            "template (hippocampal shrinkage and ventricle enlargement that grow with disease "
            "severity) and clinical scores calibrated to ADNI-1 baseline figures. Not patient data. "
            "Same seed, same files. Without OUT it builds the app's default demo folder."
        ),
    )
    parser.add_argument("out", nargs="?", default=None, metavar="OUT",
                        help=f"output folder (new or empty); default: the app's demo folder "
                             f"(${defaults.DEMO_DIR_ENV} or ~/.local/share/smmt-studio/demo-cohort)")
    parser.add_argument("--subjects", type=int, default=defaults.DEFAULT_SUBJECTS, metavar="N",
                        help=f"number of subjects (default {defaults.DEFAULT_SUBJECTS})")
    parser.add_argument("--seed", type=int, default=defaults.DEFAULT_SEED, metavar="S",
                        help=f"random seed (default {defaults.DEFAULT_SEED})")
    parser.add_argument("--missing-rate", type=float, default=defaults.DEFAULT_MISSING_RATE, metavar="R",
                        help="fraction of subjects missing each modality: R without MRI, R without "
                             "clinical scores, R without sex/APOE4; at most one per subject, R <= 1/3 "
                             f"(default {defaults.DEFAULT_MISSING_RATE})")
    parser.add_argument("--with-mci", action="store_true", help="three groups CN/MCI/AD instead of CN/AD")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a demo cohort built with other settings in OUT (never other data)")
    parser.set_defaults(handler=_demo_data)


def _demo_data(args: argparse.Namespace) -> int:
    from smmt_core.data import demo  # the generator (numpy, nibabel, scipy): only when the command runs

    out = args.out if args.out is not None else defaults.default_demo_dir()
    show = sys.stderr.isatty()
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if show:
            end = "\n" if done == total else ""
            print(f"\rsmmt demo-data: {done}/{total} subjects", end=end, file=sys.stderr, flush=True)

    path = demo.make_demo_cohort(out, args.subjects, args.seed, args.missing_rate, args.with_mci, progress,
                                 overwrite=args.overwrite)
    subjects = demo.plan_cohort(args.subjects, args.seed, args.missing_rate, args.with_mci)
    groups = Counter(s.diagnosis for s in subjects)
    missing = Counter(s.missing for s in subjects if s.missing)
    print(f"SYNTHETIC demo cohort (not patient data): {path}")
    print("  subjects: " + ", ".join(f"{groups[d]} {d}" for d in ("CN", "MCI", "AD") if groups[d]))
    print(f"  missing: {missing['mri']} MRI, {missing['clinical']} clinical, {missing['categorical']} categorical")
    print(f"  seed {args.seed}; {time.perf_counter() - started:.1f} s")
    return 0
