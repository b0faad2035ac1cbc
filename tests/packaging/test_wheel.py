"""The built wheel carries the tuned configs (installed from it, ``rlrobot train`` finds them)
and the LICENSE file."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
# What the wheel is built from; copied so that the build leaves nothing in the checkout.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "rlrobot")


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``command``, failing the test with its output when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_install_outside_the_repository_uses_the_tuned_entry(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPOSITORY / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = ["wheel", "--no-deps", "--no-build-isolation", "--no-index", str(source)]
    run([*pip, *build, "-w", str(wheels)])
    (wheel,) = wheels.glob("rlrobot-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        licenses = [name for name in archive.namelist() if name.endswith("licenses/LICENSE")]
        assert len(licenses) == 1, archive.namelist()
        assert archive.read(licenses[0]) == (REPOSITORY / "LICENSE").read_bytes()
        # Package data read with importlib.resources: the rollout viewer's page template.
        assert "rlrobot/run/viewer.html" in archive.namelist()

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])

    # torch, gymnasium … come from this interpreter's site-packages; a .pth file on PYTHONPATH
    # is not processed, so an editable install there cannot shadow the wheel's rlrobot.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run(
        [str(python), "-c", "import rlrobot; print(rlrobot.__file__)"], cwd=elsewhere, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)

    arguments = ["train", "--algo", "ppo", "--env", "rlrobot/CartPole-v0", "--dry-run"]
    printed = run([str(bin_dir / "rlrobot"), *arguments], cwd=elsewhere, env=env).stdout
    assert "rlrobot/configs/ppo.yaml: default + rlrobot/CartPole-v0" in printed
    config = yaml.safe_load(printed)
    # The tuned CartPole entry, not PPOConfig's defaults (gamma 0.99, n_steps 2048).
    assert (config["gamma"], config["n_steps"], config["n_envs"]) == (0.98, 32, 8)


def test_the_license_is_the_mit_license_pyproject_declares():
    pyproject = (REPOSITORY / "pyproject.toml").read_text()
    assert 'license = "MIT"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
    text = (REPOSITORY / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 rlrobot contributors\n")
    assert "Permission is hereby granted, free of charge" in text
