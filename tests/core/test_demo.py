"""The SYNTHETIC demo cohort: reproducible, calibrated, labelled, complete or absent, loadable."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from smmt_core.cli import main as smmt_main
from smmt_core.data import demo
from smmt_core.data.demo_clinical import CALIBRATION
from smmt_core.errors import ConfigError, DataError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _frame(subjects) -> pd.DataFrame:
    rows = []
    for s in subjects:
        rows.append({"diagnosis": s.diagnosis, "missing": s.missing, "severity": s.clinical.severity,
                     **s.clinical.numeric, **s.clinical.categorical})
    return pd.DataFrame(rows)


# --- the plan: labels, scores and missingness (no images, fast) ------------------------------------

def test_plan_is_reproducible_and_a_prefix_is_stable():
    big = demo.plan_cohort(40, seed=3, missing_rate=0.2)
    small = demo.plan_cohort(15, seed=3, missing_rate=0.2)
    assert [s.row() for s in big[:15]] == [s.row() for s in small]
    assert [s.row() for s in demo.plan_cohort(40, seed=3, missing_rate=0.2)] == [s.row() for s in big]
    other = demo.plan_cohort(40, seed=4, missing_rate=0.2)
    assert [s.row() for s in other] != [s.row() for s in big]


def test_missing_rate_changes_only_which_modality_is_missing():
    complete = demo.plan_cohort(60, seed=1, missing_rate=0.0)
    holes = demo.plan_cohort(60, seed=1, missing_rate=0.3)
    assert all(s.missing is None for s in complete)
    for a, b in zip(complete, holes):
        assert a.clinical == b.clinical


def test_labels_follow_adni_proportions_and_scores_the_calibration_table():
    subjects = demo.plan_cohort(1100, seed=11)
    frame = _frame(subjects)
    assert set(frame.diagnosis) == {"CN", "AD"}
    assert (frame.diagnosis == "CN").sum() == 600  # permuted blocks of 6 CN + 5 AD
    for block in range(0, 1100, 11):  # every block has the same mix
        assert sorted(frame.diagnosis[block:block + 11]) == ["AD"] * 5 + ["CN"] * 6
    cn, ad = frame[frame.diagnosis == "CN"], frame[frame.diagnosis == "AD"]
    # Ranges from the table (ADNI-1 baseline).
    assert cn.MMSE.between(24, 30).all() and ad.MMSE.between(18, 28).all()
    assert (cn.CDGLOBAL == 0).all() and set(ad.CDGLOBAL) == {0.5, 1.0}
    assert frame.CDRSB.between(0, 18).all() and frame.FAQ.between(0, 30).all()
    assert frame.ADAS13.between(0, 85).all() and frame.AGE.between(55, 90).all()
    assert set(frame.PTGENDER) == {"Male", "Female"} and set(frame.APOE4) == {"0", "1", "2"}
    # Means near the table.
    assert cn.MMSE.mean() == pytest.approx(29.1, abs=0.2)
    assert ad.MMSE.mean() == pytest.approx(23.4, abs=0.4)
    assert ad.CDRSB.mean() == pytest.approx(4.3, abs=0.4)
    assert ad.ADAS13.mean() == pytest.approx(29.0, abs=1.5) and cn.ADAS13.mean() == pytest.approx(9.5, abs=1.0)
    assert ad.FAQ.mean() == pytest.approx(13.0, abs=1.5) and (cn.FAQ == 0).mean() > 0.6
    assert (cn.APOE4 != "0").mean() == pytest.approx(0.25, abs=0.06)
    assert (ad.APOE4 != "0").mean() == pytest.approx(0.64, abs=0.08)
    assert ad.PTEDUCAT.mean() < cn.PTEDUCAT.mean()
    # Severity orders the groups; within a group it ties the scores together.
    assert cn.severity.max() < 0.6 < ad.severity.mean()
    assert -0.75 < ad.MMSE.corr(ad.ADAS13) < -0.35
    assert 0.4 < ad.CDRSB.corr(ad.FAQ) < 0.8
    assert ad.severity.corr(ad.MMSE) < -0.4


def test_mci_is_a_third_group_between_cn_and_ad():
    frame = _frame(demo.plan_cohort(300, seed=2, with_mci=True))
    assert set(frame.diagnosis) == {"CN", "MCI", "AD"}
    means = frame.groupby("diagnosis").MMSE.mean()
    assert means["AD"] < means["MCI"] < means["CN"]
    assert (frame[frame.diagnosis == "MCI"].CDGLOBAL == 0.5).all()
    assert frame[frame.diagnosis == "MCI"].MMSE.mean() == pytest.approx(CALIBRATION["MCI"].mmse[0], abs=0.5)


def test_missing_rate_is_honoured_one_modality_at_most():
    subjects = demo.plan_cohort(3000, seed=5, missing_rate=0.2)
    counts = pd.Series([s.missing for s in subjects]).value_counts()
    for modality in ("mri", "clinical", "categorical"):
        assert counts[modality] / 3000 == pytest.approx(0.2, abs=0.03)
    row = next(s for s in subjects if s.missing == "clinical").row()
    assert all(row[c] == "n/a" for c in demo.NUMERIC_COLUMNS)
    assert row["PTGENDER"] != "n/a" and row["diagnosis"] != "n/a"
    row = next(s for s in subjects if s.missing == "categorical").row()
    assert row["PTGENDER"] == row["APOE4"] == "n/a" and row["MMSE"] != "n/a"


@pytest.mark.parametrize("kwargs", [dict(n_subjects=0), dict(n_subjects=2.5), dict(seed=-1),
                                    dict(missing_rate=0.4), dict(missing_rate=-0.1)])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ConfigError):
        demo.plan_cohort(**{"n_subjects": 4, **kwargs})


def test_default_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SMMT_DEMO_DIR", str(tmp_path / "here"))
    assert demo.default_demo_dir() == tmp_path / "here"
    monkeypatch.delenv("SMMT_DEMO_DIR")
    assert demo.default_demo_dir() == Path.home() / ".local/share/smmt-studio/demo-cohort"


# --- the written dataset ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "cohort"
    calls = []
    path = demo.make_demo_cohort(out, 6, seed=0, missing_rate=1 / 3, progress=lambda d, t: calls.append((d, t)))
    assert path == out
    assert calls[0] == (0, 6) and calls[-1] == (6, 6) and len(calls) == 7
    return out


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(cohort, tmp_path):
    again = demo.make_demo_cohort(tmp_path / "again", 6, seed=0, missing_rate=1 / 3)
    assert _files(again) == _files(cohort)
    other = demo.make_demo_cohort(tmp_path / "other", 3, seed=1, missing_rate=0.0)
    assert (other / "participants.tsv").read_bytes() != (cohort / "participants.tsv").read_bytes()
    shared = [f for f in _files(other) if f.endswith("_T1w.nii.gz") and (cohort / f).exists()]
    assert shared, "no subject with an image in both cohorts"
    for name in shared:
        assert (other / name).read_bytes() != (cohort / name).read_bytes()


def test_dataset_is_bids_labelled_synthetic_and_matches_the_plan(cohort):
    description = json.loads((cohort / "dataset_description.json").read_text())
    assert "SYNTHETIC" in description["Name"]
    assert "synthetic" in description["Description"].lower() and "not patient data" in description["Description"].lower()
    assert "McConnell Brain Imaging Centre" in description["HowToAcknowledge"]
    readme = (cohort / "README").read_text()
    assert "SYNTHETIC" in readme and "Copyright (C) 1993-2009 Louis Collins" in readme
    table = pd.read_csv(cohort / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert tuple(table.columns) == demo.PARTICIPANT_COLUMNS
    plan = demo.plan_cohort(6, seed=0, missing_rate=1 / 3)
    assert list(table.participant_id) == [f"sub-00{i}" for i in range(1, 7)]
    for subject, (_, row) in zip(plan, table.iterrows()):
        assert row.to_dict() == subject.row()
        t1 = cohort / subject.participant_id / "anat" / f"{subject.participant_id}_T1w.nii.gz"
        assert t1.exists() == (subject.missing != "mri")
        if t1.exists():
            img = nib.load(t1)
            assert img.shape == (99, 117, 95) and img.get_data_dtype() == np.int16
            assert b"SYNTHETIC" in img.header["descrip"].tobytes()
            assert np.allclose(img.affine, np.diag([2.0, 2.0, 2.0, 1.0]) + np.array(
                [[0, 0, 0, -98], [0, 0, 0, -134], [0, 0, 0, -72], [0, 0, 0, 0]]))
            assert int(img.header["sform_code"]) == 4
            data = np.asarray(img.dataobj)
            assert data.min() == 0 and data.max() > 200 and (data > 0).mean() > 0.1
    assert {s.missing for s in plan} - {None}, "seed 0 with rate 1/3 should drop some modality"
    truth = pd.read_csv(cohort / "derivatives" / "synthetic-truth" / "image_truth.tsv", sep="\t")
    assert list(truth.participant_id) == [s.participant_id for s in plan if s.missing != "mri"]
    assert truth.head_scale.between(0.95, 1.05).all()
    assert demo.read_demo_parameters(cohort)["seed"] == 0


def test_loads_with_the_bids_loader(cohort):
    loaders = pytest.importorskip("smmt_core.data.loaders")
    loaded = loaders.load_dataset(cohort)
    assert loaded.synthetic and len(loaded) == 6
    plan = {s.participant_id: s for s in demo.plan_cohort(6, seed=0, missing_rate=1 / 3)}
    for subject in loaded:
        planned = plan[subject.subject_id]
        assert subject.label == planned.diagnosis
        assert (subject.t1_path is None) == (planned.missing == "mri")
        if planned.missing == "clinical":
            assert all(math.isnan(v) for v in subject.numeric.values())
        elif planned.missing == "categorical":
            assert all(v is None for v in subject.categorical.values())
        else:
            assert subject.numeric["MMSE"] == planned.clinical.numeric["MMSE"]
            assert subject.categorical["APOE4"] == planned.clinical.categorical["APOE4"]


def test_existing_folders_are_reused_protected_or_replaced(cohort, tmp_path):
    calls = []
    assert demo.make_demo_cohort(cohort, 6, seed=0, missing_rate=1 / 3, progress=lambda d, t: calls.append(d)) == cohort
    assert calls == [6]  # already built: nothing to do
    with pytest.raises(DataError, match="other settings"):
        demo.make_demo_cohort(cohort, 6, seed=1, missing_rate=1 / 3)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a demo cohort"):
        demo.make_demo_cohort(user, 2, overwrite=True)
    assert (user / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        demo.make_demo_cohort(tmp_path / "file", 2)
    replaced = demo.make_demo_cohort(tmp_path / "swap", 1, seed=0)
    demo.make_demo_cohort(replaced, 1, seed=2, overwrite=True)
    assert demo.read_demo_parameters(replaced)["seed"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_interrupted_build_leaves_nothing_behind(tmp_path):
    def stop(done, total):
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demo.make_demo_cohort(tmp_path / "cohort", 3, seed=0, progress=stop)
    assert list(tmp_path.iterdir()) == []


def test_ensure_builds_the_default_cohort_once(monkeypatch, tmp_path):
    monkeypatch.setenv("SMMT_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.setattr(demo, "DEFAULT_SUBJECTS", 2)
    first = demo.ensure_demo_cohort()
    assert first == tmp_path / "demo" and demo.read_demo_parameters(first)["missing_rate"] == 0.15
    stamp = (first / demo.MARKER).stat().st_mtime_ns
    assert demo.ensure_demo_cohort() == first
    assert (first / demo.MARKER).stat().st_mtime_ns == stamp


def test_atrophy_shows_in_the_image(tmp_path):
    """Same nuisance, more atrophy: the measured hippocampus is smaller, the ventricles larger."""
    from smmt_core.data.demo_anatomy import ImageParameters, measure_hippocampus, template_anatomy

    anatomy = template_anatomy()
    healthy = anatomy.synthesize(ImageParameters(), np.random.default_rng(7))
    sick = anatomy.synthesize(ImageParameters(hippocampal_atrophy=0.3, ventricle_change=0.5), np.random.default_rng(7))
    assert sick.hippocampus_mm3 / healthy.hippocampus_mm3 == pytest.approx(0.7, abs=0.03)
    assert sick.ventricles_mm3 / healthy.ventricles_mm3 == pytest.approx(1.5, abs=0.06)
    measured = []
    for name, image in (("healthy", healthy), ("sick", sick)):
        path = tmp_path / f"{name}.nii.gz"
        demo._write_nifti(path, image.data, image.affine)
        measured.append(measure_hippocampus(path)["hippocampus_mm3"])
    assert measured[1] < 0.9 * measured[0]


def test_cli_builds_and_reports(tmp_path, capsys):
    assert smmt_main(["demo-data", str(tmp_path / "cli"), "--subjects", "2", "--seed", "4", "--missing-rate", "0"]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and str(tmp_path / "cli") in out
    assert demo.read_demo_parameters(tmp_path / "cli")["n_subjects"] == 2
    assert smmt_main(["demo-data", str(tmp_path / "bad"), "--missing-rate", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "missing rate" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_a_stopped_build_writes_nothing_and_keeps_the_old_cohort(tmp_path):
    import threading

    from smmt_core.data.demo import DemoBuildStopped

    out = tmp_path / "cohort"
    demo.make_demo_cohort(out, 1, seed=3)  # an older demo cohort with other settings
    before = _files(out)
    stop = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 1:
            stop.set()  # e.g. the user closed the window while subject 2 was being made

    with pytest.raises(DemoBuildStopped, match="stopped; nothing was written") as raised:
        demo.make_demo_cohort(out, 3, seed=0, progress=progress, overwrite=True, stop=stop)
    assert raised.value.path == out
    assert seen == [0, 1]  # it stopped before the second subject
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]  # no staging folder left
    assert demo.make_demo_cohort(out, 1, seed=3, stop=stop) == out  # a complete cohort is returned regardless


def test_stopping_training_while_the_demo_cohort_builds(tmp_path, monkeypatch):
    """The trainer abandons a demo build when its stop flag is set: no cohort, no run folder."""
    import threading

    from smmt_core.data.demo import DemoBuildStopped
    from smmt_core.train import events as ev
    from smmt_core.train.config import TrainConfig
    from smmt_core.train.trainer import train

    monkeypatch.setenv("SMMT_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.setattr(demo, "DEFAULT_SUBJECTS", 3)
    stop = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, ev.DataProgress) and event.done == 1:
            stop.set()

    config = TrainConfig.build("demo", dataset="demo", out=str(tmp_path / "runs"), measure_energy=False)
    with pytest.raises(DemoBuildStopped):
        train(config, on_event=on_event, stop=stop)
    assert [e.done for e in events if isinstance(e, ev.DataProgress)] == [0, 1]
    assert isinstance(events[-1], ev.RunFailed) and events[-1].run_dir is None
    assert "stopped while the demo cohort was being built" in events[-1].message
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no demo folder, no staging, no runs
