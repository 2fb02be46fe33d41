"""Energy accounting with a real (offline) codecarbon tracker, and the paths where it is unavailable."""

import time

import pandas as pd
import pytest

from smmt_core.errors import ConfigError
from smmt_core.train.energy import EnergyMeter, check_country


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def test_real_tracker_accumulates_energy_and_writes_emissions_csv(tmp_path):
    meter = EnergyMeter(tmp_path, country="FRA", measure_power_secs=1)
    assert meter.start(), meter.note
    _busy(0.3)
    first = meter.update()
    _busy(0.3)
    second = meter.update()
    report = meter.stop()
    assert first is not None and second is not None
    assert 0 < first.energy_kwh <= second.energy_kwh  # cumulative
    assert second.power_w > 0 and second.elapsed_s > first.elapsed_s
    assert report.available and report.energy_kwh >= second.energy_kwh
    # the total is the sum of its parts, and CO2 follows from the French energy mix
    assert report.energy_kwh == pytest.approx(report.cpu_kwh + report.gpu_kwh + report.ram_kwh, rel=1e-6)
    assert report.co2_kg > 0 and report.country == "FRA"
    assert report.hardware and report.tracking_mode == "process"
    # on this machine (no RAPL/NVML) codecarbon estimates, and the report says so
    if report.estimated:
        assert "estimated" in report.note
    frame = pd.read_csv(tmp_path / "emissions.csv")
    assert len(frame) == 1  # one row per run, updated in place
    assert frame["energy_consumed"].iloc[0] == pytest.approx(report.energy_kwh, rel=1e-6)
    assert meter.stop() is report  # idempotent


def test_switched_off_meter_reports_unavailable_without_codecarbon(tmp_path):
    meter = EnergyMeter(tmp_path, enabled=False)
    assert meter.start() is False
    assert meter.update() is None
    report = meter.stop()
    assert not report.available and report.energy_kwh is None and "switched off" in report.note
    assert not (tmp_path / "emissions.csv").exists()


def test_a_tracker_that_cannot_start_never_breaks_the_caller(tmp_path, monkeypatch):
    import codecarbon

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("no sensors here")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Broken)
    meter = EnergyMeter(tmp_path)
    assert meter.start() is False
    assert "no sensors here" in meter.note
    assert meter.update() is None
    assert meter.stop().available is False


def test_country_codes_are_checked_against_codecarbons_data():
    assert check_country("usa") == "USA"
    with pytest.raises(ConfigError, match="XYZ"):
        check_country("XYZ")
