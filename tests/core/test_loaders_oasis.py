"""OASIS-1: Analyze images under PROCESSED/MPRAGE/T88_111 plus the cross-sectional CSV."""

import math

import pytest

from smmt_core.data.loaders import detect_layout, load_dataset, load_subject
from smmt_core.errors import DataError
from tests.core.fakes import make_oasis, write_table

ROWS = [
    {"ID": "OAS1_0001_MR1", "M/F": "F", "Hand": "R", "Age": "74", "Educ": "2", "SES": "3", "MMSE": "29",
     "CDR": "0", "eTIV": "1344", "nWBV": "0.743", "ASF": "1.306"},
    {"ID": "OAS1_0003_MR1", "M/F": "F", "Hand": "R", "Age": "73", "Educ": "4", "SES": "3", "MMSE": "27",
     "CDR": "0.5", "eTIV": "1454", "nWBV": "0.708", "ASF": "1.207"},
    {"ID": "OAS1_0005_MR1", "M/F": "M", "Hand": "R", "Age": "18", "Educ": "", "SES": "", "MMSE": "",
     "CDR": "", "eTIV": "1737", "nWBV": "0.848", "ASF": "1.010"},
    {"ID": "OAS1_0003_MR2", "M/F": "F", "Hand": "R", "Age": "73", "Educ": "", "SES": "", "MMSE": "",
     "CDR": "", "eTIV": "1460", "nWBV": "0.705", "ASF": "1.200", "Delay": "23"},
    {"ID": "OAS1_0009_MR1", "M/F": "M", "Hand": "R", "Age": "80", "Educ": "9", "SES": "2", "MMSE": "x",
     "CDR": "1", "eTIV": "1500", "nWBV": "0.7", "ASF": "1.1"},
]


def test_oasis_labels_and_values(tmp_path):
    root = make_oasis(tmp_path / "oasis", ROWS)
    assert detect_layout(root) == "oasis"
    cohort = load_dataset(root)
    assert cohort.layout == "oasis"
    by_key = {s.key: s for s in cohort}
    cn, ad, young, repeat, severe = (by_key[k] for k in (
        "OAS1_0001/MR1", "OAS1_0003/MR1", "OAS1_0005/MR1", "OAS1_0003/MR2", "OAS1_0009/MR1"))
    assert cn.label == "CN" and ad.label == "AD" and young.label is None and severe.label == "AD"
    assert cn.numeric == {"AGE": 74.0, "MMSE": 29.0, "CDGLOBAL": 0.0, "EDUC_CODE": 2.0}
    assert cn.categorical == {"PTGENDER": "Female"} and young.categorical == {"PTGENDER": "Male"}
    assert cn.t1_path.name == "OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc.hdr"
    assert any("picked" in n and "masked_gfc" in n for n in cn.notes)
    # The repeat scan takes the missing scores from MR1 and says so.
    assert repeat.label == "AD" and repeat.numeric["MMSE"] == 27 and repeat.numeric["EDUC_CODE"] == 4
    assert any("taken from OAS1_0003_MR1" in n for n in repeat.notes)
    # Educ 9 is not a 1-5 code; MMSE "x" is unreadable: both missing and listed.
    assert math.isnan(severe.numeric["EDUC_CODE"]) and math.isnan(severe.numeric["MMSE"])
    assert any("OAS1_0009_MR1: Educ" in p for p in cohort.problems)
    assert any("OAS1_0009_MR1: MMSE" in p for p in cohort.problems)


def test_rows_without_images_and_images_without_rows(tmp_path):
    root = make_oasis(tmp_path / "oasis", ROWS[:2], with_images=["OAS1_0001_MR1", "OAS1_0042_MR1"], disc=None)
    cohort = load_dataset(root)
    by_key = {s.key: s for s in cohort}
    assert set(by_key) == {"OAS1_0001/MR1", "OAS1_0042/MR1"}
    assert by_key["OAS1_0042/MR1"].label is None and by_key["OAS1_0042/MR1"].t1_path is not None
    assert any("no row for OAS1_0042_MR1" in p for p in cohort.problems)
    assert any("1 row(s) without an image folder" in p for p in cohort.problems)


def test_csv_with_wrong_columns_names_the_missing_ones(tmp_path):
    root = make_oasis(tmp_path / "oasis", ROWS[:1])
    write_table(root / "oasis_cross-sectional.csv", [{"ID": "OAS1_0001_MR1", "Age": "74"}])
    with pytest.raises(DataError, match=r"missing column\(s\) M/F, Educ, MMSE, CDR"):
        load_dataset(root)


def test_missing_csv_is_a_problem(tmp_path):
    root = make_oasis(tmp_path / "oasis", ROWS[:1])
    (root / "oasis_cross-sectional.csv").unlink()
    cohort = load_dataset(root)
    assert cohort.subjects[0].label is None and any("no OASIS CSV" in p for p in cohort.problems)


def test_single_oasis_session_folder_is_a_subject(tmp_path):
    root = make_oasis(tmp_path / "oasis", ROWS[:1])
    subject = load_subject(root / "disc1" / "OAS1_0001_MR1")
    assert (subject.subject_id, subject.session) == ("OAS1_0001", "MR1")
    assert subject.t1_path.name.endswith("masked_gfc.hdr")
    assert any("no clinical data" in n and "smmt predict OAS1_0001/MR1 --cohort" in n for n in subject.notes)

