"""Energy and CO2 accounting for a training run, with codecarbon in offline mode.

Why a wrapper: the trainer needs three things codecarbon does not give in one call — live
cumulative kWh and power between epochs, a final per-device breakdown, and an honest flag saying
whether power was *measured* (Intel/AMD RAPL, NVIDIA NVML) or *estimated* (codecarbon's CPU-load
or TDP model, and its RAM model). It must also never break a run: if codecarbon cannot start,
training goes on and the run records energy as unavailable, with the reason.

Rules that matter:
- `OfflineEmissionsTracker` only (no network; the CO2 intensity comes from codecarbon's bundled
  per-country energy mix, `country` is an ISO 3166-1 alpha-3 code such as "USA", "FRA", "DEU").
- Create and start the meter in the thread that does the work (the training thread): codecarbon
  tracks "process" energy from the CPU usage of the process it runs in.
- codecarbon's `emissions.csv` is written into the run folder and updated in place on each
  `update()` (one row per run).
- Live values are read through a codecarbon output handler (its public extension point), which
  receives the cumulative `EmissionsData` on every flush.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from smmt_core.train.run_folder import EMISSIONS_FILE

log = logging.getLogger(__name__)

# codecarbon CPU modes that read a hardware energy counter (anything else is a model/estimate).
_MEASURED_CPU_MODES = ("intel_rapl", "intel_power_gadget", "windows_emi", "powermetrics")


@dataclass
class EnergyReading:
    """Cumulative energy at one moment of the run (what an `EnergyUpdate` event carries)."""

    elapsed_s: float
    energy_kwh: float  # cumulative since start
    power_w: float  # mean power since the previous reading
    estimated: bool


@dataclass
class EnergyReport:
    """Final energy figures of a run, stored in run.json and best.json."""

    available: bool
    energy_kwh: float | None = None
    cpu_kwh: float | None = None
    gpu_kwh: float | None = None
    ram_kwh: float | None = None
    co2_kg: float | None = None
    duration_s: float | None = None
    mean_power_w: float | None = None
    country: str = ""
    estimated: bool = True
    tracking_mode: str = ""
    hardware: list[str] = field(default_factory=list)  # what codecarbon tracked, e.g. "CPU(Cpu Load)"
    cpu_model: str = ""
    gpu_model: str = ""
    codecarbon_version: str = ""
    note: str = ""  # why energy is unavailable or why it is an estimate

    def to_dict(self) -> dict:
        return asdict(self)


def known_countries() -> set[str]:
    """ISO 3166-1 alpha-3 codes for which codecarbon bundles an energy mix (offline CO2 intensity)."""
    from codecarbon.input import DataSource

    return set(DataSource().get_global_energy_mix_data())


def check_country(code: str) -> str:
    """The upper-cased code, or ConfigError when codecarbon has no energy mix for it."""
    from smmt_core.errors import ConfigError

    value = (code or "").strip().upper()
    try:
        known = known_countries()
    except Exception:  # no data to check against: let codecarbon decide
        return value
    if value not in known:
        raise ConfigError(
            f"unknown country code {code!r} for the CO2 estimate; use an ISO 3166-1 alpha-3 code "
            "such as USA, GBR, FRA, DEU, CHN")
    return value


def _make_handler():
    """A codecarbon output handler that keeps the latest cumulative EmissionsData.

    Built lazily so that importing this module does not import codecarbon (slow to import).
    """
    from codecarbon.output_methods.base_output import BaseOutput

    class LatestData(BaseOutput):
        def __init__(self):
            self.total = None

        def out(self, total, delta):
            self.total = total

        def live_out(self, total, delta):
            self.total = total

    return LatestData()


class EnergyMeter:
    """Tracks the energy of the calling process from `start()` to `stop()`.

        meter = EnergyMeter(run_dir, country="USA")
        meter.start()            # never raises; meter.available tells whether it runs
        reading = meter.update() # EnergyReading or None when unavailable
        report = meter.stop()    # EnergyReport (available=False with a note when it never ran)
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        country: str = "USA",
        enabled: bool = True,
        measure_power_secs: float = 2.0,
        tracking_mode: str = "process",
        project_name: str = "smmt-studio",
        output_file: str = EMISSIONS_FILE,
    ):
        self.out_dir = Path(out_dir)
        self.country = (country or "USA").upper()
        self.enabled = enabled
        self.measure_power_secs = measure_power_secs
        self.tracking_mode = tracking_mode
        self.project_name = project_name
        self.output_file = output_file
        self.available = False
        self.note = "" if enabled else "energy measurement switched off in the run settings"
        self._tracker = None
        self._handler = None
        self._t0: float | None = None
        self._last_time = 0.0
        self._last_kwh = 0.0
        self._estimated = True
        self._hardware: list[str] = []
        self._report: EnergyReport | None = None

    @property
    def measured(self) -> bool:
        """Energy is tracked *and* power read from hardware counters (RAPL/NVML), not estimated."""
        return bool(self.available and not self._estimated)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> bool:
        """Start codecarbon; returns whether energy is being measured. Never raises."""
        self._t0 = self._last_time = time.perf_counter()
        if not self.enabled:
            return False
        try:
            from codecarbon import OfflineEmissionsTracker

            # codecarbon sets its logger to INFO on import; its own log_level applies only after
            # the first messages, so quieten it here (our log says what matters).
            logging.getLogger("codecarbon").setLevel(logging.ERROR)

            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._handler = _make_handler()
            self._tracker = OfflineEmissionsTracker(
                country_iso_code=self.country,
                project_name=self.project_name,
                output_dir=str(self.out_dir),
                output_file=self.output_file,
                on_csv_write="update",
                measure_power_secs=self.measure_power_secs,
                tracking_mode=self.tracking_mode,
                log_level="error",
                allow_multiple_runs=True,  # a GUI and a CLI run may measure at the same time
                output_handlers=[self._handler],
            )
            self._tracker.start()  # codecarbon swallows its own errors: check that it produced data
            self._t0 = self._last_time = time.perf_counter()
            if self._tracker.flush() is None or self._handler.total is None:
                raise RuntimeError(f"codecarbon could not start (country {self.country!r}?)")
            self._hardware, self._estimated = self._detect_hardware()
            self.available = True
            self._last_kwh = float(self._handler.total.energy_consumed)
            if self._estimated:
                self.note = (
                    "power is estimated by codecarbon from CPU load/TDP and RAM size "
                    "(no RAPL or NVML energy counter available)"
                )
        except Exception as error:  # energy is optional: the run must go on
            log.warning("energy measurement unavailable: %s", error)
            self.note = f"energy measurement unavailable: {error}"
            self.available = False
            self._stop_tracker_quietly()
        return self.available

    def update(self) -> EnergyReading | None:
        """Flush codecarbon (updating emissions.csv) and return the cumulative reading."""
        if not self.available:
            return None
        try:
            self._tracker.flush()
            total = self._handler.total
            now = time.perf_counter()
            kwh = float(total.energy_consumed)
        except Exception as error:  # keep training even if codecarbon breaks mid-run
            log.warning("energy update failed: %s", error)
            return None
        dt = max(now - self._last_time, 1e-9)
        power = max(kwh - self._last_kwh, 0.0) * 3.6e6 / dt
        self._last_time, self._last_kwh = now, kwh
        return EnergyReading(elapsed_s=now - self._t0, energy_kwh=kwh, power_w=power, estimated=self._estimated)

    def stop(self) -> EnergyReport:
        """Stop codecarbon and return the final figures (idempotent)."""
        if self._report is not None:
            return self._report
        duration = time.perf_counter() - self._t0 if self._t0 is not None else None
        if not self.available:
            self._report = EnergyReport(available=False, country=self.country, duration_s=duration, note=self.note)
            return self._report
        try:
            self._tracker.stop()
            data = self._handler.total
            energy = float(data.energy_consumed)
            self._report = EnergyReport(
                available=True,
                energy_kwh=energy,
                cpu_kwh=float(data.cpu_energy),
                gpu_kwh=float(data.gpu_energy),
                ram_kwh=float(data.ram_energy),
                co2_kg=float(data.emissions),
                duration_s=float(data.duration),
                mean_power_w=energy * 3.6e6 / data.duration if data.duration else None,
                country=data.country_iso_code or self.country,
                estimated=self._estimated,
                tracking_mode=str(data.tracking_mode or self.tracking_mode),
                hardware=list(self._hardware),
                cpu_model=str(data.cpu_model or ""),
                gpu_model=str(data.gpu_model or ""),
                codecarbon_version=str(data.codecarbon_version or ""),
                note=self.note,
            )
        except Exception as error:
            log.warning("energy measurement failed at the end of the run: %s", error)
            self._report = EnergyReport(
                available=False, country=self.country, duration_s=duration,
                note=f"energy measurement failed at the end of the run: {error}",
            )
        self.available = False
        return self._report

    def __enter__(self) -> "EnergyMeter":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------
    def _detect_hardware(self) -> tuple[list[str], bool]:
        """What codecarbon tracks, and whether all of it is an estimate.

        codecarbon exposes no public flag for this; we read its hardware objects defensively and
        fall back to "estimated" when in doubt (better to under-claim than to over-claim).
        """
        hardware = getattr(self._tracker, "_hardware", None) or []
        names, measured = [], False
        for item in hardware:
            try:
                names.append(item.description())
            except Exception:
                names.append(type(item).__name__)
            kind = type(item).__name__
            if kind == "GPU":
                measured = True  # NVML energy counter
            elif kind == "CPU" and getattr(item, "_mode", "") in _MEASURED_CPU_MODES:
                measured = True
            elif kind == "AppleSiliconChip":
                measured = True  # powermetrics
        return names, not measured

    def _stop_tracker_quietly(self) -> None:
        if self._tracker is not None:
            try:
                self._tracker.stop()
            except Exception:
                pass
        self._tracker = None
