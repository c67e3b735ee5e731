"""Repository promises: CI runs README's test command verbatim; the docs' commands exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(python3 -m venv[^\n]+)\n```", text)


def test_readme_has_the_two_newcomer_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert "hashlearn evaluate --dataset digits" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci
