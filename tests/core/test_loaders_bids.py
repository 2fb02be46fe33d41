"""BIDS: participants.tsv + optional sessions.tsv + sub-X[/ses-Y]/anat/*_T1w.nii[.gz]."""

import json
import math

import pytest

from smmt_core.data.loaders import detect_layout, load_dataset
from smmt_core.data.subject import Modality
from smmt_core.errors import DataError
from tests.core.fakes import make_bids, write_table, write_volume

PARTICIPANTS = [
    {"participant_id": "sub-01", "diagnosis": "CN", "AGE": "71.2", "PTGENDER": "Female", "APOE4": "0",
     "MMSE": "29", "CDGLOBAL": "0", "severity": "0.1"},
    {"participant_id": "sub-02", "diagnosis": "AD", "AGE": "n/a", "PTGENDER": "Male", "APOE4": "2",
     "MMSE": "21", "CDGLOBAL": "1", "severity": "0.9"},
]


def test_demo_style_bids_with_canonical_columns(tmp_path):
    root = make_bids(tmp_path / "demo", PARTICIPANTS,
                     description={"Name": "SMMT Studio demo cohort (SYNTHETIC)", "BIDSVersion": "1.8.0"})
    assert detect_layout(root) == "bids"
    cohort = load_dataset(root)
    assert cohort.layout == "bids" and cohort.synthetic and cohort.name == "SMMT Studio demo cohort (SYNTHETIC)"
    first, second = cohort.subjects
    assert (first.subject_id, first.session, first.label) == ("sub-01", None, "CN")
    assert first.t1_path == root / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    assert first.numeric == {"AGE": 71.2, "MMSE": 29.0, "CDGLOBAL": 0.0}
    assert first.categorical == {"PTGENDER": "Female", "APOE4": "0"}
    assert "severity" not in first.numeric
    assert math.isnan(second.numeric["AGE"]) and second.label == "AD"
    assert cohort.problems == []


def test_aliases_sex_mf_and_na(tmp_path):
    rows = [{"participant_id": "sub-a", "group": "Control", "age": "70", "sex": "M", "mmse": "30", "cdr": "0",
             "apoe4": "n/a", "education": "16"},
            {"participant_id": "sub-b", "group": "AD", "age": "80", "sex": "F", "mmse": "n/a", "cdr": "0.5",
             "apoe4": "1", "education": "n/a"}]
    cohort = load_dataset(make_bids(tmp_path / "ds", rows))
    a, b = cohort.subjects
    assert a.label == "CN" and a.categorical == {"PTGENDER": "Male", "APOE4": None}
    assert a.numeric["PTEDUCAT"] == 16 and a.numeric["CDGLOBAL"] == 0
    assert b.label == "AD" and b.categorical["PTGENDER"] == "Female" and math.isnan(b.numeric["MMSE"])
    assert not cohort.synthetic


def test_clinica_adni_ids_and_sessions(tmp_path):
    participants = [{"participant_id": "sub-ADNI002S0295", "sex": "M", "alternative_id_1": "002_S_0295"}]
    sessions = {"sub-ADNI002S0295": [
        {"session_id": "ses-M000", "age": "84.8", "MMS": "28", "cdr_global": "0", "diagnosis": "CN"},
        {"session_id": "ses-M006", "age": "85.3", "MMS": "27", "cdr_global": "0.5", "diagnosis": "MCI"},
        {"session_id": "ses-M012", "age": "85.8", "MMS": "26", "cdr_global": "0.5", "diagnosis": "MCI"},
    ]}
    images = {"sub-ADNI002S0295": ["ses-M000", "ses-M006"]}  # no T1 at M012
    root = make_bids(tmp_path / "adni_bids", participants, sessions=sessions, images=images)
    cohort = load_dataset(root)
    assert [s.key for s in cohort] == ["sub-ADNI002S0295/ses-M000", "sub-ADNI002S0295/ses-M006"]
    m0, m6 = cohort.subjects
    assert m0.label == "CN" and m6.label == "MCI"
    assert m0.numeric == {"AGE": 84.8, "MMSE": 28.0, "CDGLOBAL": 0.0}
    assert m6.numeric["MMSE"] == 27 and m6.categorical == {"PTGENDER": "Male"}
    assert m6.t1_path.name == "sub-ADNI002S0295_ses-M006_T1w.nii.gz"


def test_participant_without_image_still_appears(tmp_path):
    rows = PARTICIPANTS + [{"participant_id": "sub-03", "diagnosis": "AD", "MMSE": "18"}]
    root = make_bids(tmp_path / "ds", rows, images={"sub-03": []})
    cohort = load_dataset(root)
    third = cohort.subjects[2]
    assert third.subject_id == "sub-03" and third.t1_path is None and third.modalities == {Modality.CLINICAL}
    # Missing modalities are normal (counted by validate), not problems.
    assert third.notes == ["no image folder for this participant"] and cohort.problems == []
    # An image folder without a *_T1w image hints at a naming mistake: that is a problem.
    (root / "sub-03" / "anat").mkdir(parents=True)
    assert load_dataset(root).problems == []
    write_volume(root / "sub-03" / "anat" / "sub-03_T1.nii.gz")
    assert any("sub-03" in p and "no *_T1w" in p and "sub-03_T1.nii.gz" in p for p in load_dataset(root).problems)


def test_folder_not_in_participants_and_several_runs(tmp_path):
    root = make_bids(tmp_path / "ds", PARTICIPANTS)
    write_volume(root / "sub-99" / "anat" / "sub-99_T1w.nii.gz")
    write_volume(root / "sub-01" / "anat" / "sub-01_run-2_T1w.nii.gz")
    (root / "sub-01" / "anat" / "sub-01_T1w.nii.gz").rename(root / "sub-01" / "anat" / "sub-01_run-1_T1w.nii.gz")
    cohort = load_dataset(root)
    by_id = {s.subject_id: s for s in cohort}
    assert by_id["sub-99"].label is None and by_id["sub-99"].t1_path is not None
    assert any("sub-99" in p and "not listed" in p for p in cohort.problems)
    assert by_id["sub-01"].t1_path.name == "sub-01_run-1_T1w.nii.gz"
    assert "picked sub-01_run-1_T1w.nii.gz among 2" in by_id["sub-01"].notes[0]


def test_bad_image_in_bids_is_a_problem_not_fatal(tmp_path):
    root = make_bids(tmp_path / "ds", PARTICIPANTS)
    bad = root / "sub-02" / "anat" / "sub-02_T1w.nii.gz"
    bad.write_bytes(b"\x1f\x8b broken gzip")
    cohort = load_dataset(root)
    assert cohort.subjects[1].t1_path is None and cohort.subjects[1].label == "AD"
    assert any(str(bad) in p for p in cohort.problems)


def test_participants_tsv_errors_name_the_file(tmp_path):
    root = make_bids(tmp_path / "ds", PARTICIPANTS)
    tsv = root / "participants.tsv"
    write_table(tsv, [{"subject": "sub-01", "diagnosis": "CN"}], sep="\t")
    with pytest.raises(DataError, match="missing column participant_id") as info:
        load_dataset(root)
    assert info.value.path == tsv
    write_table(tsv, [{"participant_id": "sub-01", "diagnosis": "CN"}], sep=",")
    with pytest.raises(DataError, match="not tab-separated"):
        load_dataset(root)
    tsv.write_text("participant_id\tdiagnosis\nsub-01\tCN\textra\nsub-02\tAD\n")
    with pytest.raises(DataError, match="line 2 has more fields than the header"):
        load_dataset(root)
    tsv.write_text("participant_id\tdiagnosis\nsub-01\tCN\nsub-02\tAD\textra\n")
    with pytest.raises(DataError, match="Expected 2 fields in line 3, saw 3"):
        load_dataset(root)
    tsv.write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match="cannot read the table"):
        load_dataset(root)
    tsv.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_dataset(root)


def test_sessions_tsv_without_session_id_is_an_error(tmp_path):
    root = make_bids(tmp_path / "ds", PARTICIPANTS[:1])
    write_table(root / "sub-01" / "sub-01_sessions.tsv", [{"visit": "M000", "MMSE": "29"}], sep="\t")
    with pytest.raises(DataError, match="missing column session_id"):
        load_dataset(root)


def test_unparseable_cells_are_listed_and_missing(tmp_path):
    rows = [{"participant_id": "sub-01", "diagnosis": "CN", "MMSE": "abc", "APOE4": "7", "AGE": "200"}]
    cohort = load_dataset(make_bids(tmp_path / "ds", rows))
    subject = cohort.subjects[0]
    assert math.isnan(subject.numeric["MMSE"]) and math.isnan(subject.numeric["AGE"])
    assert subject.categorical["APOE4"] is None
    assert len(cohort.problems) == 3 and all("participants.tsv: sub-01" in p for p in cohort.problems)


def test_missing_description_and_participants_are_problems(tmp_path):
    write_volume(tmp_path / "ds" / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    cohort = load_dataset(tmp_path / "ds")
    assert cohort.layout == "bids" and cohort.name == "ds" and len(cohort) == 1
    assert any("dataset_description.json" in p for p in cohort.problems)
    assert any("participants.tsv" in p for p in cohort.problems)
    (tmp_path / "ds" / "dataset_description.json").write_text(json.dumps({"Name": "x", "Description": "Synthetic data"}))
    assert load_dataset(tmp_path / "ds").synthetic


# -- a single sub-X (or sub-X/ses-Y) folder opened on its own keeps its participants.tsv data ---------

def test_a_sub_folder_opened_alone_brings_its_participants_row(tmp_path):
    from smmt_core.data.loaders import load_subject

    root = make_bids(tmp_path / "ds", PARTICIPANTS)
    subject = load_subject(root / "sub-02")
    assert (subject.subject_id, subject.label, subject.source) == ("sub-02", "AD", "bids")
    assert subject.numeric["MMSE"] == 21 and subject.categorical == {"PTGENDER": "Male", "APOE4": "2"}
    assert subject.t1_path == root / "sub-02" / "anat" / "sub-02_T1w.nii.gz"
    assert subject.modalities == {Modality.MRI, Modality.CLINICAL, Modality.CATEGORICAL}
    cohort = load_dataset(root / "sub-02")  # as a one-subject dataset too (what `smmt validate` reads)
    assert len(cohort) == 1 and cohort.subjects[0].label == "AD"


def test_a_sub_folder_with_sessions_takes_the_latest_or_the_session_opened(tmp_path):
    from smmt_core.data.loaders import load_subject

    participants = [{"participant_id": "sub-01", "sex": "F"}]
    sessions = {"sub-01": [{"session_id": f"ses-M{m:03d}", "MMS": str(30 - i), "diagnosis": "CN"}
                           for i, m in enumerate((0, 6, 12, 24))]}
    images = {"sub-01": ["ses-M000", "ses-M006", "ses-M012"]}  # no T1 at M024: never the pick
    root = make_bids(tmp_path / "ds", participants, sessions=sessions, images=images)
    latest = load_subject(root / "sub-01")
    assert latest.session == "ses-M012" and latest.numeric["MMSE"] == 28
    assert latest.categorical == {"PTGENDER": "Female"}
    assert any("using the latest, ses-M012" in note and "ses-M000" in note for note in latest.notes)
    assert detect_layout(root / "sub-01" / "ses-M000") == detect_layout(root / "sub-01") == "folder"
    first = load_subject(root / "sub-01" / "ses-M000")
    assert first.session == "ses-M000" and first.numeric["MMSE"] == 30
    assert first.t1_path.name == "sub-01_ses-M000_T1w.nii.gz"


def test_session_order_is_natural():
    from smmt_core.data.loaders import _session_order

    names = ["ses-10", "ses-2", "ses-M012", "ses-M006", None]
    assert sorted(names, key=_session_order) == [None, "ses-2", "ses-10", "ses-M006", "ses-M012"]


def test_only_one_participant_is_loaded_and_an_unknown_one_is_refused(tmp_path):
    from smmt_core.data.layouts.bids import load_bids

    root = make_bids(tmp_path / "ds", PARTICIPANTS)
    assert [s.subject_id for s in load_bids(root, only="sub-01")] == ["sub-01"]
    with pytest.raises(DataError, match="no participant sub-09"):
        load_bids(root, only="sub-09")


# -- one diagnosis column when several are there ----------------------------------------------------

def test_dx_wins_over_the_baseline_dx_bl_whatever_the_column_order(tmp_path):
    from smmt_core.data.layouts.common import map_columns

    assert map_columns(["RID", "DX_bl", "AGE", "DX"]) == {"DX": "diagnosis", "AGE": "AGE"}
    assert map_columns(["DX_bl", "group"]) == {"group": "diagnosis"}
    assert map_columns(["RID", "DX_bl"]) == {"DX_bl": "diagnosis"}  # the fallback
    assert map_columns(["Diagnosis", "DX"]) == {"Diagnosis": "diagnosis"}
    rows = [{"participant_id": "sub-01", "DX_bl": "CN", "AGE": "70", "DX": "Dementia"},
            {"participant_id": "sub-02", "DX_bl": "AD", "AGE": "75", "DX": "n/a"}]
    cohort = load_dataset(make_bids(tmp_path / "ds", rows))
    assert [s.label for s in cohort] == ["AD", None]
