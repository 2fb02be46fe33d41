"""`smmt` sub-commands of the data area. Each command sets `handler` (args -> exit code)."""

from __future__ import annotations

import json
import sys

from smmt_core.cli.exit_codes import EXIT_BAD_INPUT, EXIT_OK


def add_commands(subparsers) -> None:
    """Register this area's sub-commands on the `smmt` parser."""
    validate = subparsers.add_parser(
        "validate",
        help="check a dataset or subject: layout, subjects, labels, modalities, problems",
        description=(
            "Check a T1 file, a subject folder, a folder of subject folders, a BIDS dataset, an ADNI "
            "download (with ADNIMERGE) or OASIS-1 before training. Exit 0 when usable, 2 when not."
        ),
    )
    validate.add_argument("path", help="file or folder to check")
    validate.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    validate.add_argument("--no-images", action="store_true",
                          help="skip reading every image in full (faster; headers are still checked)")
    validate.add_argument("--adnimerge", metavar="CSV", help="ADNIMERGE table for an ADNI download")
    validate.add_argument("--date-window", metavar="DAYS", type=int, default=180,
                          help="ADNI: max days between scan date and EXAMDATE (default 180)")
    validate.set_defaults(handler=_validate)


def _validate(args) -> int:
    from smmt_core.data.validate import validate_path

    report = validate_path(args.path, check_images=not args.no_images, adnimerge=args.adnimerge,
                           date_window_days=args.date_window)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.usable:
        print("\n".join(report.summary_lines()))
    if not report.usable:
        print(f"smmt validate: error: {report.path}: {report.reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK
