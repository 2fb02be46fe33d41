"""The README's two set-up commands are the contract with new users and with CI."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_opens_with_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) >= 2
    install_and_launch, install_and_test = commands[:2]
    assert install_and_launch.endswith("smmt-gui")
    assert "pytest" in install_and_test
    for command in commands[:2]:
        assert "pip install torch==2.13.0" in command  # CPU build first, never a CUDA download


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci
