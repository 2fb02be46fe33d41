"""The core must stay usable on a headless server: importing it must never load Qt."""

import subprocess
import sys


def test_importing_every_core_module_loads_no_qt():
    code = (
        "import pkgutil, importlib, sys, smmt_core\n"
        "for m in pkgutil.walk_packages(smmt_core.__path__, 'smmt_core.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('PySide6','PyQt5','PyQt6','pyqtgraph','qtpy')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
