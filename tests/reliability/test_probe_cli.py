"""Findings of the hostile-input probe (issue #20 re-run) on YAML, configs, ``train`` and run
folders: each is now one line on stderr and exit code 2, before any work.

C1/H4 (no caps on torch_threads and n_epochs), H1 (a YAML alias bomb hangs), S1 (``--dry-run``
skips a real run's checks), S2 (numeric strings taken as floats), S3 (resume ignores an edited
``config.yaml``), U7 (odd keys and values in config files), U8 (a device as --config), U9 (an
over-long --out name) and U10 (damaged logs and checkpoint folder on resume).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from rlrobot.cli import main
from rlrobot.common.yaml_loading import MAX_EXPANDED_NODES, load_yaml

from .small_runs import ALGORITHM_ENV

TRAIN = ["train", "--env", ALGORITHM_ENV, "--algo", "ppo", "--steps", "64", "--no-progress"]
SMALL = ["--set", "n_steps=32", "--set", "batch_size=32", "--set", "eval_freq=0"]


def _alias_bomb(levels: int) -> str:
    """Return a YAML mapping whose last key expands to 9**levels strings ("billion laughs")."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _error_of(arguments: list[str], capsys) -> str:
    """Run ``rlrobot ARGUMENTS`` in-process; assert exit 2 and one line; return that line."""
    capsys.readouterr()
    assert main(arguments) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# -- load_yaml (H1, U7) ------------------------------------------------------------------------
def test_an_alias_bomb_is_refused_at_once_before_it_is_built():
    start = time.monotonic()
    with pytest.raises(yaml.YAMLError, match=f"more than {MAX_EXPANDED_NODES:,} values"):
        load_yaml(_alias_bomb(9))
    assert time.monotonic() - start < 1.0


def test_aliases_within_the_bound_still_expand():
    data = load_yaml(_alias_bomb(3))
    assert len(data["l3"]) == 9 and data["l3"][0][0][0] == ["lol"] * 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 5000 + "]" * 5000, "nests deeper than 100 levels"),
        ("x: " + "[" * 101 + "]" * 101, "nests deeper than 100 levels"),
        ("x: " + "1" * 100_000, "Exceeds the limit (4300 digits)"),
        ("a: &a [*a]", "contains itself"),
    ],
)
def test_documents_that_crash_pyyaml_are_yaml_errors(text, message):
    with pytest.raises(yaml.YAMLError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_yaml(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_alias_bomb(9), "is not valid YAML: the document expands to more than 1,000,000"),
        ("[" * 5000 + "]" * 5000, "is not valid YAML: the document nests deeper than 100"),
        ("x: " + "1" * 100_000, "is not valid YAML: a value cannot be read: Exceeds the limit"),
        ("null: 1\n", "config keys are names (strings), got the key None (NoneType)"),
        ("1: 2\n", "config keys are names (strings), got the key 1 (int)"),
        ("env_kwargs: {1: 2}\n", "config keys are names (strings), got the key 1 (int)"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, text, message):
    config = tmp_path / "config.yaml"
    config.write_text(text)
    line = _error_of([*TRAIN, "--config", str(config), "--dry-run"], capsys)
    assert message in line and len(line) < 400


def test_a_device_file_as_config_is_not_called_missing(capsys):
    line = _error_of([*TRAIN, "--config", "/dev/zero", "--dry-run"], capsys)
    assert line.endswith(
        "config file /dev/zero is not a regular file (a device, a pipe or a socket)"
    )


def test_a_long_value_is_quoted_shortened(capsys):
    line = _error_of([*TRAIN, "--set", f"gamma={'x' * 100_000}", "--dry-run"], capsys)
    assert "config key 'gamma'" in line and len(line) < 300


# -- caps and types (C1, H4, S2) ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("torch_threads=100000", "'torch_threads': must be an integer in [1, 1024]"),
        ("n_epochs=1000000000", "'n_epochs': must be an integer in [1, 10000]"),
        ("learning_rate='3e-4'", "'learning_rate': expected float, got str '3e-4'"),
        ("vf_coef='0.5'", "'vf_coef': expected float, got str '0.5'"),
    ],
)
def test_values_beyond_the_caps_or_of_the_wrong_type_are_refused(capsys, override, message):
    assert message in _error_of([*TRAIN, "--set", override, "--dry-run"], capsys)


@pytest.mark.parametrize("key", ["n_steps", "gamma"])
def test_an_int_beyond_a_float_is_refused_in_one_short_line(capsys, key):
    line = _error_of([*TRAIN, "--set", f"{key}={'9' * 4000}", "--dry-run"], capsys)
    assert f"config key {key!r}: 999" in line and "beyond any allowed value" in line
    assert len(line) < 300


def test_exponent_numbers_are_still_floats(capsys):
    assert main([*TRAIN, "--set", "learning_rate=3e-4", "--dry-run"]) == 0
    assert "learning_rate: 0.0003" in capsys.readouterr().out


# -- --dry-run makes a real run's checks (S1) -------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--set", "env_kwargs.force_magnitude=.nan"], "force_magnitude must be a finite number"),
        (["--set", "env_kwargs.force_magnitude=[5]"], "force_magnitude must be a finite number"),
        (["--set", "env_kwargs.bogus=1"], "takes no keyword 'bogus'"),
        (["--set", "env_kwargs.randomization={mass_scale: [2, 1]}"], "low <= high"),
        (["--seed", "99999999999999999999999"], "config key 'seed': must be an integer in [0,"),
        (["--set", f"n_steps={10**30}"], "EiB for the rollout buffer; this machine has"),
        (["--n-envs", "1000000"], "config key 'n_envs': must be an integer in [1, 1024]"),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_dry_and_real_runs_refuse_what_a_run_refuses(tmp_path, capsys, arguments, message, dry_run):
    out = tmp_path / "run"
    flags = ["--dry-run"] if dry_run else ["--out", str(out)]
    assert message in _error_of([*TRAIN, *SMALL, *arguments, *flags], capsys)
    assert not out.exists()


def test_an_unknown_env_id_is_refused_by_a_dry_run(capsys):
    arguments = ["train", "--env", "rlrobot/CartPöle-v0", "--algo", "ppo", "--dry-run"]
    assert "unknown env id 'rlrobot/CartPöle-v0'" in _error_of(arguments, capsys)


def test_a_cuda_device_without_cuda_is_refused_by_a_dry_run(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = _error_of([*TRAIN, "--set", "device=cuda", "--dry-run"], capsys)
    assert "device 'cuda': this machine has 0 CUDA device(s)" in line


# -- outputs and run folders (U9, U10, S3) -----------------------------------------------------
def test_an_out_name_too_long_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "missing" / ("a" * 300)
    line = _error_of([*TRAIN, *SMALL, "--out", str(out)], capsys)
    assert line.startswith("rlrobot train: error: --out ") and "long" in line
    assert not (tmp_path / "missing").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A small run folder checkpointed at step 256 (8 envs); tests damage copies of it."""
    run = tmp_path_factory.mktemp("probe") / "run"
    assert main([*TRAIN, *SMALL, "--out", str(run)]) == 0
    return run


def _damaged(finished_run: Path, tmp_path: Path, damage) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    return run


def _replace_by_file(path: Path) -> None:
    shutil.rmtree(path)
    path.write_text("x")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda run: (run / "progress.csv").write_bytes(b"\x00\xff" * 100),
            "progress.csv is damaged: not UTF-8 text (invalid start byte at byte 1)",
        ),
        (
            lambda run: (run / "evaluations.csv").write_bytes(b"step\n\xff\xfe"),
            "evaluations.csv is damaged: not UTF-8 text",
        ),
        (
            lambda run: _replace_by_file(run / "checkpoints"),
            "checkpoints is not a folder (it holds the run's checkpoints)",
        ),
        (
            lambda run: (run / "config.yaml").write_text(
                (run / "config.yaml").read_text().replace("net_arch: [64, 64]", "net_arch: [32]")
            ),
            "differs from its checkpoint step_0000000256 in net_arch: [32] here, [64, 64] in "
            "the checkpoint",
        ),
    ],
    ids=["progress_binary", "evaluations_binary", "checkpoints_file", "net_arch_edited"],
)
def test_resume_refuses_a_damaged_or_edited_run_folder(
    finished_run, tmp_path, capsys, damage, message
):
    run = _damaged(finished_run, tmp_path, damage)
    before = sorted(p.name for p in run.iterdir())
    line = _error_of(["train", "--out", str(run), "--resume", "--steps", "1000"], capsys)
    assert message in line
    assert sorted(p.name for p in run.iterdir()) == before


def test_resume_of_an_unedited_run_goes_on(finished_run, tmp_path):
    run = _damaged(finished_run, tmp_path, lambda run: None)
    assert main(["train", "--out", str(run), "--resume", "--steps", "1000", "--no-progress"]) == 0
