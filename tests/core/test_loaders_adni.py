"""ADNI download tree + ADNIMERGE: IMAGEUID / nearest-EXAMDATE matching, scan choice, cell parsing."""

import math

import pytest

from smmt_core.data.loaders import detect_layout, load_dataset
from smmt_core.errors import DataError
from tests.core.fakes import make_adni, write_table

MERGE = [
    # RID 295: baseline CN (two scans that visit, IMAGEUID says which), m06 matched by date only.
    {"RID": "295", "PTID": "002_S_0295", "VISCODE": "bl", "EXAMDATE": "2006-04-18", "EXAMDATE_bl": "2006-04-18",
     "DX_bl": "CN", "DX": "CN", "AGE": "84.8", "PTGENDER": "Male", "PTEDUCAT": "18", "APOE4": "1.0",
     "MMSE": "28", "CDRSB": "0", "ADAS13": "", "FAQ": "-4", "IMAGEUID": "45108"},
    {"RID": "295", "PTID": "002_S_0295", "VISCODE": "m06", "EXAMDATE": "2006-11-02", "EXAMDATE_bl": "2006-04-18",
     "DX_bl": "CN", "DX": "MCI", "AGE": "84.8", "PTGENDER": "Male", "PTEDUCAT": "18", "APOE4": "1",
     "MMSE": "27", "CDRSB": "0.5", "ADAS13": ">85", "FAQ": "1", "IMAGEUID": ""},
    # RID 1097: EMCI at baseline with DX blank -> label from DX_bl; no IMAGEUID; two scans -> lowest series.
    {"RID": "1097", "PTID": "011_S_1097", "VISCODE": "bl", "EXAMDATE": "1/10/2007", "EXAMDATE_bl": "1/10/2007",
     "DX_bl": "EMCI", "DX": "", "AGE": "70", "PTGENDER": "Female", "PTEDUCAT": "-1", "APOE4": "2",
     "MMSE": "abc", "CDRSB": "1.5", "ADAS13": "20", "FAQ": "5", "IMAGEUID": ""},
    {"RID": "1200", "PTID": "027_S_1200", "VISCODE": "bl", "EXAMDATE": "2007-02-01", "EXAMDATE_bl": "2007-02-01",
     "DX_bl": "AD", "DX": "Dementia", "AGE": "77", "PTGENDER": "Female", "PTEDUCAT": "12", "APOE4": "",
     "MMSE": "22", "CDRSB": "4.5", "ADAS13": "31", "FAQ": "12", "IMAGEUID": "40000"},
]
SCANS = [
    {"ptid": "002_S_0295", "date": "2006-04-18", "series": 13408, "image": 45107},
    {"ptid": "002_S_0295", "date": "2006-04-18", "series": 13409, "image": 45108, "description": "MPR-R__GradWarp"},
    {"ptid": "002_S_0295", "date": "2006-11-10", "series": 22000, "image": 60000, "leaf": "S"},
    {"ptid": "011_S_1097", "date": "2007-01-12", "series": 25002, "image": 70002},
    {"ptid": "011_S_1097", "date": "2007-01-12", "series": 25001, "image": 70001},
    {"ptid": "027_S_1200", "date": "2007-02-03", "series": 30000, "image": 40000},
    {"ptid": "033_S_0001", "date": "2008-01-01", "series": 1, "image": 1},  # not in ADNIMERGE
]


@pytest.fixture()
def adni_root(tmp_path):
    return make_adni(tmp_path / "download", SCANS, MERGE)


def test_detects_adni_at_root_and_at_the_adni_folder(adni_root):
    assert detect_layout(adni_root) == "adni"
    assert detect_layout(adni_root / "ADNI") == "adni"
    # ADNIMERGE is found in the parent of the ADNI folder too.
    assert load_dataset(adni_root / "ADNI").subjects[0].label == "CN"


def test_matching_labels_and_scan_choice(adni_root):
    cohort = load_dataset(adni_root)
    assert cohort.layout == "adni"
    by_key = {s.key: s for s in cohort}
    assert sorted(by_key) == ["002_S_0295/bl", "002_S_0295/m06", "011_S_1097/bl", "027_S_1200/bl", "033_S_0001/2008-01-01"]

    bl = by_key["002_S_0295/bl"]
    assert bl.label == "CN" and bl.t1_path.name.endswith("_S13409_I45108.nii")
    assert "matched to ADNIMERGE by IMAGEUID" in bl.notes
    assert any("picked I45108" in n and "IMAGEUID" in n and "I45107" in n for n in bl.notes)
    assert bl.categorical == {"PTGENDER": "Male", "APOE4": "1"}
    assert bl.numeric["MMSE"] == 28 and math.isnan(bl.numeric["FAQ"]) and math.isnan(bl.numeric["ADAS13"])
    assert math.isnan(bl.numeric["CDGLOBAL"])  # not in ADNIMERGE

    m06 = by_key["002_S_0295/m06"]
    assert m06.label == "MCI" and m06.t1_path.parent.name == "S22000"
    assert any("nearest EXAMDATE (8 days" in n for n in m06.notes)
    assert m06.numeric["AGE"] == pytest.approx(84.8 + 198 / 365.25)
    assert m06.numeric["ADAS13"] == 85  # ">85" read as 85

    emci = by_key["011_S_1097/bl"]
    assert emci.label == "MCI" and emci.t1_path.name.endswith("_S25001_I70001.nii")
    assert any("lowest series id" in n for n in emci.notes)
    assert any("DX_bl" in n for n in emci.notes)
    assert math.isnan(emci.numeric["PTEDUCAT"]) and math.isnan(emci.numeric["MMSE"])

    assert by_key["027_S_1200/bl"].label == "AD"
    orphan = by_key["033_S_0001/2008-01-01"]
    assert orphan.label is None and orphan.numeric == {} and orphan.t1_path is not None


def test_problems_list_unmatched_scans_and_bad_cells(adni_root):
    problems = load_dataset(adni_root).problems
    assert any("033_S_0001" in p and "no ADNIMERGE row" in p for p in problems)
    assert any("RID 1097 bl: MMSE: cannot read 'abc'" in p for p in problems)
    assert any("no CDGLOBAL column" in p for p in problems)


def test_date_window_controls_date_matching(adni_root):
    cohort = load_dataset(adni_root, date_window_days=5)
    keys = {s.key for s in cohort}
    assert "002_S_0295/m06" not in keys and "002_S_0295/2006-11-10" in keys  # 8 days apart
    assert "002_S_0295/bl" in keys  # IMAGEUID match ignores the window


def test_adnimerge_given_explicitly_and_missing(tmp_path):
    root = make_adni(tmp_path / "dl", SCANS[:1], None)
    cohort = load_dataset(root)
    assert cohort.subjects[0].label is None
    assert any("no ADNIMERGE" in p for p in cohort.problems)
    merge = write_table(tmp_path / "elsewhere" / "my_merge.csv", MERGE)
    assert load_dataset(root, adnimerge=merge).subjects[0].label == "CN"
    with pytest.raises(DataError, match="ADNIMERGE table not found"):
        load_dataset(root, adnimerge=tmp_path / "nope.csv")


def test_adnimerge_with_missing_columns_names_them(tmp_path):
    rows = [{"RID": "295", "PTID": "002_S_0295", "DX": "CN"}]
    root = make_adni(tmp_path / "dl", SCANS[:1], rows)
    with pytest.raises(DataError, match=r"missing column\(s\) VISCODE, EXAMDATE") as info:
        load_dataset(root)
    assert info.value.path.name == "ADNIMERGE_15Jan2024.csv"


def test_bad_scan_loses_mri_keeps_clinical(tmp_path):
    scans = [dict(SCANS[5], kind="4d")]
    cohort = load_dataset(make_adni(tmp_path / "dl", scans, MERGE))
    subject = cohort.subjects[0]
    assert subject.t1_path is None and subject.label == "AD" and subject.numeric["MMSE"] == 22
    assert any("4D image" in p for p in cohort.problems)


def test_dicom_only_series_are_reported(tmp_path):
    root = make_adni(tmp_path / "dl", SCANS[:1], MERGE)
    dicom = root / "ADNI" / "002_S_0295" / "MPRAGE" / "2006-04-18_10_22_35.0" / "I999"
    dicom.mkdir(parents=True)
    (dicom / "ADNI_002_S_0295_MR_MPRAGE_br_raw_1_1_S1_I999.dcm").write_bytes(b"DICM")
    problems = load_dataset(root).problems
    assert any("1 DICOM series skipped" in p for p in problems)


def test_no_dx_column_uses_dx_bl_everywhere(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "DX"} for row in MERGE]
    cohort = load_dataset(make_adni(tmp_path / "dl", SCANS[:3], rows))
    assert {s.key: s.label for s in cohort} == {"002_S_0295/bl": "CN", "002_S_0295/m06": "CN"}
    assert any("no DX column" in p for p in cohort.problems)


def test_training_config_passes_a_separate_adnimerge_to_the_loader(tmp_path):
    from smmt_core.data.loaders import load_cohort

    root = make_adni(tmp_path / "dl", SCANS[:1], None)
    merge = write_table(tmp_path / "tables" / "ADNIMERGE_01Feb2025.csv", MERGE)
    assert load_cohort(str(root)).subjects[0].label is None
    cohort = load_cohort(str(root), adnimerge=str(merge), date_window_days=30)
    assert cohort.subjects[0].label == "CN"


def test_an_image_folder_opened_alone_says_where_its_clinical_data_are(adni_root):
    from smmt_core.data.loaders import load_subject
    from tests.core.fakes import adni_scan_path

    scan = adni_scan_path(adni_root, "027_S_1200", "MPR__GradWarp__B1_Correction__N3__Scaled", "2007-02-03",
                          30000, 40000)
    subject = load_subject(scan.parent)
    assert subject.t1_path == scan and subject.label is None
    assert any("part of an ADNI download" in n and f"--cohort {adni_root.resolve()}" in n for n in subject.notes)
