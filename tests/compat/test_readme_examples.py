"""README's Python snippets run as written, each on its own (a reader copies one at a time),
with their training budgets cut to a few steps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
# ``learn(20_000)``, ``learn(total_timesteps=50_000, …)``: the budget a test cannot afford.
BUDGET = re.compile(r"learn\((total_timesteps=)?[\d_]+")


def python_snippets() -> list[str]:
    """Return README's ```python blocks, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_its_python_snippets():
    assert len(python_snippets()) >= 3


@pytest.mark.parametrize("index", range(len(python_snippets())))
def test_readme_snippet_runs_on_its_own(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the snippets save under runs/ and the current folder
    code = BUDGET.sub(lambda match: f"learn({match.group(1) or ''}64", python_snippets()[index])
    assert code != python_snippets()[index] or "learn(" not in code
    exec(compile(code, f"README.md python snippet {index + 1}", "exec"), {})


def test_readme_commands_write_under_runs_not_over_tracked_files():
    commands = "\n".join(re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL))
    outputs = re.findall(r"--out\s+(\S+)", commands)
    assert len(outputs) >= 5
    assert all(path.startswith("runs/") for path in outputs), outputs
