"""Single T1 files, subject folders and folders of subject folders."""

import json
import math
import shutil
from pathlib import Path

import pytest
from nibabel.testing import data_path

from smmt_core.data.loaders import detect_layout, load_dataset, load_subject
from smmt_core.data.subject import Modality
from smmt_core.errors import DataError
from tests.core.fakes import make_subject_folder, write_table, write_volume

NIBABEL_DATA = Path(data_path)


@pytest.mark.parametrize("name", ["T1.nii", "T1.nii.gz", "brain.mgz", "t1.hdr"])
def test_single_file_in_every_format_is_a_subject(tmp_path, name):
    path = write_volume(tmp_path / name)
    assert detect_layout(path) == "file"
    subject = load_subject(path)
    assert subject.t1_path == path
    assert subject.modalities == {Modality.MRI}
    assert subject.label is None
    assert subject.source == "file"


def test_analyze_img_half_resolves_to_the_header(tmp_path):
    header = write_volume(tmp_path / "scan.hdr")
    subject = load_subject(tmp_path / "scan.img")
    assert subject.t1_path == header


def test_nibabel_real_files_nifti2_pair_analyze_and_nifti1_load():
    # analyze.hdr is (91, 109, 91, 1): a trailing singleton dimension is still a 3D volume.
    for name in ("nifti2.hdr", "analyze.hdr", "anatomical.nii"):
        subject = load_subject(NIBABEL_DATA / name)
        assert subject.t1_path == NIBABEL_DATA / name


@pytest.mark.parametrize("name, shape", [
    ("example4d.nii.gz", "(128, 96, 24, 2)"), ("test.mgz", "(3, 4, 5, 2)"), ("example_nifti2.nii.gz", "(32, 20, 12, 2)"),
])
def test_nibabel_4d_files_are_refused_with_their_shape(name, shape):
    with pytest.raises(DataError, match=r"4D image of shape " + shape.replace("(", r"\(").replace(")", r"\)")) as info:
        load_subject(NIBABEL_DATA / name)
    assert info.value.path == NIBABEL_DATA / name


def test_2d_and_corrupt_files_are_refused(tmp_path):
    flat = write_volume(tmp_path / "flat.nii", kind="2d")
    with pytest.raises(DataError, match="2D image"):
        load_subject(flat)
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"this is not an image at all")
    with pytest.raises(DataError, match="not a readable image") as info:
        load_subject(garbage)
    assert str(garbage) in str(info.value)


def test_subject_folder_with_clinical_json_aliases(tmp_path):
    folder = make_subject_folder(tmp_path, "ann", clinical={
        "subject_id": "P-007", "DX": "Dementia", "mmse": 21, "CDR": 1, "age": "74.5",
        "sex": "F", "apoe4": 1, "education": 12, "shoe_size": 40,
    })
    subject = load_subject(folder)
    assert subject.subject_id == "P-007"
    assert subject.label == "AD"
    assert subject.numeric == {"MMSE": 21.0, "CDGLOBAL": 1.0, "AGE": 74.5, "PTEDUCAT": 12.0}
    assert subject.categorical == {"PTGENDER": "Female", "APOE4": "1"}
    assert subject.modalities == {Modality.MRI, Modality.CLINICAL, Modality.CATEGORICAL}
    assert subject.notes == []


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_subject_folder_with_one_row_table(tmp_path, fmt):
    folder = make_subject_folder(tmp_path, "bob", clinical={
        "diagnosis": "CN", "MMSE": "29", "CDRSB": "n/a", "PTGENDER": "Male", "APOE4": "e3/e4", "FAQ": ">2",
    }, clinical_format=fmt)
    subject = load_subject(folder)
    assert subject.subject_id == "bob" and subject.label == "CN"
    assert subject.numeric["MMSE"] == 29 and math.isnan(subject.numeric["CDRSB"]) and subject.numeric["FAQ"] == 2
    assert subject.categorical == {"PTGENDER": "Male", "APOE4": "1"}


def test_unreadable_cells_become_missing_and_are_noted(tmp_path):
    folder = make_subject_folder(tmp_path, "c", clinical={"MMSE": "twenty", "AGE": -4, "sex": "X", "dx": "weird"})
    subject = load_subject(folder)
    assert math.isnan(subject.numeric["MMSE"]) and math.isnan(subject.numeric["AGE"])
    assert subject.categorical["PTGENDER"] is None and subject.label is None
    text = "\n".join(subject.notes)
    for expected in ("'twenty' as a number", "AGE = -4 is outside", "'X' as sex", "unknown diagnosis 'weird'"):
        assert expected in text


def test_clinical_only_folder_has_no_mri(tmp_path):
    folder = tmp_path / "clin"
    folder.mkdir()
    (folder / "clinical.json").write_text(json.dumps({"MMSE": 30, "diagnosis": "CN"}))
    subject = load_subject(folder)
    assert subject.t1_path is None and subject.modalities == {Modality.CLINICAL}


def test_several_volumes_pick_the_t1_by_name_and_note_it(tmp_path):
    folder = make_subject_folder(tmp_path, "s", images=("brainmask.nii.gz", "sub-01_T1w.nii.gz", "sub-01_FLAIR.nii.gz"))
    subject = load_subject(folder)
    assert subject.t1_path.name == "sub-01_T1w.nii.gz"
    assert "picked sub-01_T1w.nii.gz" in subject.notes[0]


def test_several_ambiguous_volumes_are_refused_listing_them(tmp_path):
    folder = make_subject_folder(tmp_path, "s", images=("scan_a.nii", "scan_b.nii"))
    with pytest.raises(DataError, match=r"2 image volumes.*scan_a\.nii, scan_b\.nii"):
        load_subject(folder)


def test_t1_in_anat_subfolder_is_found(tmp_path):
    write_volume(tmp_path / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    assert detect_layout(tmp_path / "sub-01") == "folder"
    assert load_subject(tmp_path / "sub-01").t1_path.name == "sub-01_T1w.nii.gz"


def test_bad_clinical_files_raise_naming_the_file(tmp_path):
    folder = make_subject_folder(tmp_path, "j")
    (folder / "clinical.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON") as info:
        load_subject(folder)
    assert info.value.path == folder / "clinical.json"
    (folder / "clinical.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object"):
        load_subject(folder)
    (folder / "clinical.json").unlink()
    write_table(folder / "clinical.csv", [{"MMSE": 20}, {"MMSE": 25}])
    with pytest.raises(DataError, match="one row .* found 2"):
        load_subject(folder)
    write_table(folder / "more.csv", [{"MMSE": 20}])
    with pytest.raises(DataError, match="several clinical tables"):
        load_subject(folder)


def test_empty_missing_and_unknown_inputs(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        detect_layout(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="the folder is empty"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match="no T1 image and no known dataset layout"):
        detect_layout(tmp_path / "notes")
    with pytest.raises(DataError, match="not a T1 image"):
        load_subject(tmp_path / "notes" / "readme.txt")


def test_folder_of_subject_folders(tmp_path):
    root = tmp_path / "study"
    make_subject_folder(root, "s1", clinical={"diagnosis": "AD", "MMSE": 20})
    make_subject_folder(root, "s2", clinical={"diagnosis": "CN", "MMSE": 30}, clinical_format="csv")
    make_subject_folder(root, "s3", images=("a.nii", "b.nii"))  # ambiguous: skipped, reported
    (root / "docs").mkdir()
    (root / "docs" / "notes.txt").write_text("x")
    assert detect_layout(root) == "folders"
    cohort = load_dataset(root)
    assert cohort.layout == "folders"
    assert [s.subject_id for s in cohort] == ["s1", "s2"]
    assert cohort.labels() == ["AD", "CN"]
    assert any("s3" in p and "skipped" in p for p in cohort.problems)
    assert any("docs" in p for p in cohort.problems)
    with pytest.raises(DataError, match="folders dataset, not a single subject"):
        load_subject(root)


def test_folder_of_folders_keeps_subject_whose_image_is_broken(tmp_path):
    root = tmp_path / "study"
    make_subject_folder(root, "good", clinical={"diagnosis": "CN"})
    bad = make_subject_folder(root, "bad", clinical={"diagnosis": "AD", "MMSE": 19}, images=("T1.nii",), kind="4d")
    cohort = load_dataset(root)
    by_id = {s.subject_id: s for s in cohort}
    assert by_id["bad"].t1_path is None and by_id["bad"].numeric["MMSE"] == 19
    assert any(str(bad / "T1.nii") in p and "4D" in p for p in cohort.problems)


def test_single_file_uses_clinical_file_only_when_alone(tmp_path):
    folder = make_subject_folder(tmp_path, "x", clinical={"diagnosis": "AD"})
    assert load_subject(folder / "T1.nii.gz").label == "AD"
    shutil.copy(folder / "T1.nii.gz", folder / "other.nii.gz")
    assert load_subject(folder / "T1.nii.gz").label is None


def test_load_dataset_on_a_subject_folder_gives_a_one_subject_cohort(tmp_path):
    folder = make_subject_folder(tmp_path, "one", clinical={"diagnosis": "MCI"})
    cohort = load_dataset(folder)
    assert cohort.layout == "folder" and len(cohort) == 1 and cohort.labels() == ["MCI"]


# -- one rule for "missing" in the loaders and the feature encoder -----------------------------------

@pytest.mark.parametrize("value", [None, "", " n/a ", "NA", "?", "unknown", math.nan, math.inf,
                                   __import__("numpy").float32("nan")])
def test_loaders_and_feature_encoder_agree_on_missing(value):
    from smmt_core.data.features import FeatureEncoder
    from smmt_core.data.layouts.common import is_missing, parse_number
    from smmt_core.data.subject import Subject

    assert is_missing(value) and math.isnan(parse_number(value)[0])
    train = [Subject("a", "CN", numeric={"AGE": 70.0}, categorical={"APOE4": "0"}),
             Subject("b", "AD", numeric={"AGE": 80.0}, categorical={"APOE4": "1"})]
    encoder = FeatureEncoder(["AGE", "APOE4"]).fit(train)
    numeric, missing, categorical = encoder.transform([Subject("c", numeric={"AGE": value},
                                                               categorical={"APOE4": value})])
    assert missing.tolist() == [[True]] and numeric.tolist() == [[0.0]] and categorical.tolist() == [[0]]


@pytest.mark.parametrize("value", [0, 0.0, "0", 29, "29.5"])
def test_real_values_are_not_missing(value):
    from smmt_core.data.layouts.common import is_missing

    assert not is_missing(value)


def test_training_on_a_single_file_names_the_file(tmp_path):
    from smmt_core.data.loaders import load_cohort

    image = write_volume(tmp_path / "small.nii")
    with pytest.raises(DataError) as info:
        load_cohort(str(image))
    assert info.value.path == image and "small.nii" in str(info.value) and "not a dataset" in str(info.value)
