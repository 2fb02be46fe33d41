"""validate_path and `smmt validate`: reports, image checks, and one-line errors for bad input."""

import json
import shutil
from pathlib import Path

import pytest
from nibabel.testing import data_path

from smmt_core.cli import main
from smmt_core.data.validate import validate_path
from smmt_core.errors import DataError
from tests.core.fakes import make_bids, make_oasis, make_subject_folder, truncate, write_table, write_volume

ROWS = [
    {"participant_id": f"sub-{i:02d}", "diagnosis": dx, "MMSE": mmse, "PTGENDER": "Female", "APOE4": "0"}
    for i, (dx, mmse) in enumerate([("CN", "29"), ("AD", "21"), ("CN", "30"), ("MCI", "26")], start=1)
]


def _bids(tmp_path, rows=ROWS, **kwargs):
    return make_bids(tmp_path / "ds", rows, **kwargs)


def test_report_of_a_good_dataset(tmp_path):
    root = _bids(tmp_path, description={"Name": "Demo (SYNTHETIC)"})
    progress = []
    report = validate_path(root, on_progress=lambda done, total: progress.append((done, total)))
    assert (report.layout, report.n_subjects, report.n_people) == ("bids", 4, 4)
    assert report.labels == {"CN": 2, "MCI": 1, "AD": 1}
    assert report.modalities == {"mri": 4, "clinical": 4, "categorical": 4}
    assert report.usable and report.reason is None and report.problems == []
    assert report.images_checked == 4 and progress[-1] == (4, 4)
    lines = report.summary_lines()
    assert lines[0] == 'layout: bids "Demo (SYNTHETIC)"' and lines[1].startswith("SYNTHETIC data")
    assert "labels: CN 2, MCI 1, AD 1" in lines
    assert lines[-1] == "usable: yes (prediction; training with label set ad-cn or cn-mci-ad)"
    assert json.loads(json.dumps(report.to_dict()))["labels"] == {"CN": 2, "MCI": 1, "AD": 1}


def test_one_bad_image_in_a_dataset_is_a_problem_and_loses_mri(tmp_path):
    root = _bids(tmp_path)
    bad = write_volume(root / "sub-02" / "anat" / "sub-02_T1w.nii.gz", shape=(16, 16, 16))
    truncate(bad, 2000)  # header still reads; the data does not
    write_volume(root / "sub-03" / "anat" / "sub-03_T1w.nii.gz", kind="constant")
    report = validate_path(root)
    assert report.usable and report.modalities["mri"] == 2
    assert any(str(bad) in p and "truncated" in p for p in report.problems)
    assert any("sub-03_T1w" in p and "constant" in p for p in report.problems)
    # Without the full image check only the header is read: the truncation goes unnoticed.
    fast = validate_path(root, check_images=False)
    assert fast.images_checked == 0 and fast.modalities["mri"] == 4


def test_a_few_nan_voxels_are_listed_but_the_mri_is_kept(tmp_path):
    root = _bids(tmp_path)
    write_volume(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz", kind="nan")
    report = validate_path(root)
    assert report.modalities["mri"] == 4
    assert any("sub-01_T1w" in p and "NaN/infinite voxels" in p for p in report.problems)


@pytest.mark.parametrize("kind", ["constant", "truncated", "allnan"])
def test_bad_image_in_a_single_subject_is_fatal(tmp_path, kind):
    folder = make_subject_folder(tmp_path, "s", clinical={"diagnosis": "AD"}, images=())
    image = folder / "T1.nii.gz"
    if kind == "truncated":
        truncate(write_volume(image, shape=(16, 16, 16)), 2000)
    else:
        write_volume(image, kind="constant")
        if kind == "allnan":
            import nibabel as nib
            import numpy as np
            nib.save(nib.Nifti1Image(np.full((8, 8, 8), np.nan, np.float32), np.eye(4)), str(image))
    with pytest.raises(DataError) as info:
        validate_path(folder)
    assert info.value.path == image


def test_labels_missing_makes_the_dataset_unusable(tmp_path):
    rows = [{"participant_id": "sub-01", "MMSE": "29"}, {"participant_id": "sub-02", "MMSE": "20"}]
    report = validate_path(_bids(tmp_path, rows))
    assert not report.usable and "no subject has a diagnosis label" in report.reason
    assert report.labels == {"CN": 0, "AD": 0, "unknown": 2}


def test_only_one_class_is_flagged(tmp_path):
    report = validate_path(_bids(tmp_path, ROWS[:1] + ROWS[2:3]))
    assert report.usable and any("only CN labels" in p for p in report.problems)
    assert not report.usable_for_training and report.to_dict()["usable_for_training"] is False
    assert report.summary_lines()[-1].startswith("usable: for prediction yes; for training no (training needs")


def test_nibabel_analyze_header_without_its_img_is_fatal_for_a_single_file(tmp_path):
    shutil.copy(Path(data_path) / "analyze.hdr", tmp_path / "lonely.hdr")
    with pytest.raises(DataError, match="truncated or corrupt|cannot read"):
        validate_path(tmp_path / "lonely.hdr")


# ---------------------------------------------------------------------------------------------
# The command line: exit 0 with a summary, or exit 2 with exactly one line and no traceback.

def _run(capsys, *argv):
    code = main(["validate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_summary_and_json(tmp_path, capsys):
    root = _bids(tmp_path)
    code, out, err = _run(capsys, root)
    assert code == 0 and err == ""
    assert "layout: bids" in out and "subjects: 4" in out and "usable: yes" in out
    code, out, err = _run(capsys, root, "--json", "--no-images")
    report = json.loads(out)
    assert code == 0 and report["usable"] and report["n_subjects"] == 4 and report["images_checked"] == 0


def _bad_inputs(tmp_path):
    """(path, expected text in the error line) for every kind of bad input the brief lists."""
    cases = []
    (tmp_path / "empty").mkdir()
    cases.append((tmp_path / "empty", "the folder is empty"))
    (tmp_path / "unknown").mkdir()
    (tmp_path / "unknown" / "notes.txt").write_text("x")
    cases.append((tmp_path / "unknown", "no known dataset layout"))
    cases.append((tmp_path / "missing", "no such file or folder"))
    cases.append((Path(data_path) / "example4d.nii.gz", "4D image"))
    cases.append((write_volume(tmp_path / "flat.nii", kind="2d"), "2D image"))
    cases.append((write_volume(tmp_path / "const.nii", kind="constant"), "constant"))
    cases.append((truncate(write_volume(tmp_path / "cut.nii.gz", shape=(16, 16, 16)), 2000), "truncated"))
    garbage = tmp_path / "garbage.nii"
    garbage.write_bytes(b"\x00" * 10)
    cases.append((garbage, "not a readable image"))
    oasis = make_oasis(tmp_path / "oasis", [{"ID": "OAS1_0001_MR1", "CDR": "0"}])
    write_table(oasis / "oasis_cross-sectional.csv", [{"ID": "OAS1_0001_MR1", "CDR": "0"}])
    cases.append((oasis, "missing column(s) M/F, Age, Educ, MMSE"))
    unlabelled = make_bids(tmp_path / "nolabels", [{"participant_id": "sub-01", "MMSE": "29"}])
    cases.append((unlabelled, "no subject has a diagnosis label"))
    return cases


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    for path, expected in _bad_inputs(tmp_path):
        code, out, err = _run(capsys, path)
        assert code == 2, (path, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"smmt validate: error: {path}"), (path, err)
        assert expected in lines[0], (path, err)
        assert "Traceback" not in err and out == ""


def test_stop_event_ends_image_checks_early(tmp_path):
    import threading

    stop = threading.Event()
    stop.set()
    report = validate_path(_bids(tmp_path), stop=stop)
    assert report.images_checked == 0 and any("stopped after 0 of 4" in p for p in report.problems)


def test_oasis_analyze_images_are_read_in_full(tmp_path):
    rows = [{"ID": "OAS1_0001_MR1", "M/F": "F", "Age": "74", "Educ": "2", "MMSE": "29", "CDR": "0"},
            {"ID": "OAS1_0002_MR1", "M/F": "M", "Age": "76", "Educ": "3", "MMSE": "24", "CDR": "1"}]
    root = make_oasis(tmp_path / "oasis", rows)
    (root / "disc1" / "OAS1_0002_MR1" / "PROCESSED" / "MPRAGE" / "T88_111" /
     "OAS1_0002_MR1_mpr_n4_anon_111_t88_masked_gfc.img").unlink()  # the data half is gone
    report = validate_path(root)
    assert report.usable and report.images_checked == 2 and report.modalities["mri"] == 1
    assert report.labels == {"CN": 1, "AD": 1}
    assert any("OAS1_0002_MR1" in p and "has no MRI" in p for p in report.problems)


def test_cli_adnimerge_option(tmp_path, capsys):
    from tests.core.fakes import make_adni

    root = make_adni(tmp_path / "dl", [{"ptid": "002_S_0295", "date": "2006-04-18", "series": 1, "image": 5}], None)
    merge = write_table(tmp_path / "merge.csv", [
        {"RID": "295", "PTID": "002_S_0295", "VISCODE": "bl", "EXAMDATE": "2006-04-20", "DX": "AD", "MMSE": "20"}])
    code, out, err = _run(capsys, root, "--no-images")
    assert code == 2 and "no subject has a diagnosis label" in err
    code, out, err = _run(capsys, root, "--adnimerge", merge, "--date-window", "30")
    assert code == 0 and "layout: adni" in out and "AD 1" in out


def test_a_folder_of_datasets_says_which_to_open(tmp_path):
    _bids(tmp_path / "inner")
    with pytest.raises(DataError, match=r"holds dataset folder\(s\) \(ds\); open one of them"):
        validate_path(tmp_path / "inner")


def test_single_subject_without_label_is_usable_for_prediction(tmp_path, capsys):
    image = write_volume(tmp_path / "scan.nii.gz")
    report = validate_path(image)
    assert report.usable and report.layout == "file" and report.labels == {"CN": 0, "AD": 0, "unknown": 1}
    assert not report.usable_for_training and "for training no" in report.summary_lines()[-1]
    folder = make_subject_folder(tmp_path, "s", images=(), clinical={"shoe_size": 40})
    code, out, err = _run(capsys, folder)
    assert code == 2 and "no MRI and no clinical values" in err


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_problems_in_a_single_subject_folder_are_reported(tmp_path, fmt):
    folder = make_subject_folder(tmp_path, "s", clinical={"diagnosis": "AD", "AGE": "abc", "PTGENDER": "X"},
                                 clinical_format=fmt)
    report = validate_path(folder)
    assert any("AGE" in p and "'abc'" in p for p in report.problems), report.problems
    assert any("PTGENDER" in p and "'X'" in p for p in report.problems), report.problems
    assert "problems: none" not in report.summary_lines()
