"""Packaging metadata stays valid: the desktop entry, AppStream metainfo, icons and the spec."""

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smmt_core import __version__

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
DESKTOP = PACKAGING / "smmt-studio.desktop"
METAINFO = PACKAGING / "io.github.smmt_studio.SMMTStudio.metainfo.xml"


def test_desktop_entry_has_the_keys_a_launcher_needs():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(DESKTOP)
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Exec"].split()[0] == "smmt-gui"
    assert section["Icon"] == "smmt-studio"
    assert section["StartupWMClass"] == "smmt-studio"  # matches QGuiApplication.setDesktopFileName


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_desktop_entry_passes_desktop_file_validate():
    proc = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stdout.lower()


def test_metainfo_names_the_desktop_file_and_the_current_version():
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.find("launchable").text == DESKTOP.name
    versions = [r.get("version") for r in root.find("releases")]
    assert __version__ in versions
    assert "not a medical device" in ET.tostring(root.find("description"), encoding="unicode")


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream not installed")
def test_metainfo_passes_appstreamcli_validate():
    proc = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_icon_exists_at_the_usual_sizes():
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        png = ROOT / "resources" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "smmt-studio.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_pyinstaller_spec_is_valid_python_and_points_at_existing_files():
    spec = (PACKAGING / "smmt-gui.spec").read_text(encoding="utf-8")
    compile(spec, "smmt-gui.spec", "exec")
    assert (PACKAGING / "launch_gui.py").exists()
    assert "collect_data_files(\"codecarbon\")" in spec and "nilearn" in spec
