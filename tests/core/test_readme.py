"""CI runs exactly the README's test command (the contract with new users and with CI)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _readme_commands()[1] in ci


def _extras(command: str) -> set[str]:
    """The extras of the `pip install -e ".[a,b]"` in a README command (empty for a plain `-e .`)."""
    found = re.search(r'pip install -e "?\.(?:\[([a-z,]+)\])?"?', command)
    assert found, command
    return set(filter(None, (found.group(1) or "").split(",")))


def test_the_first_command_gives_the_whole_app_and_the_tests_install_at_least_as_much():
    """A researcher's first scan is a DICOM folder or a T1 with its skull: the app's own install
    must bring the intake, and the test install (CI's) everything the app install brings."""
    launch, tests = _readme_commands()[:2]
    assert launch.endswith("smmt-gui") and "intake" in _extras(launch)
    assert _extras(launch) <= _extras(tests)
