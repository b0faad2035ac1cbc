"""CLI user errors are one line and exit code 2, before any work (issue #20, class 7).

The sweeps are generated from the ``rlrobot`` parser itself: every numeric option of every
sub-command gets bad numbers, every output option (``--out``, ``--gallery``,
``--report-only``) gets paths that cannot be written. Config files get the malformed YAML a
user writes by mistake.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

import pytest

from rlrobot.cli import build_parser, main
from rlrobot.common.files import TEMPORARY_PATTERN
from rlrobot.run.cli import path_text

from .small_runs import ALGORITHM_ENV, REPOSITORY

TRAIN_BASE = ["--env", ALGORITHM_ENV, "--algo", "ppo", "--steps", "64", "--no-progress"]
# What each sub-command needs besides the option under test, so that the option is what fails.
# RUN stands for a trained run folder.
BASE_ARGUMENTS: dict[str, list[str]] = {
    "train": TRAIN_BASE,
    "eval": ["RUN"],
    "record": ["RUN"],
    "view": ["RUN"],
    "plot": ["RUN"],
    "demo": ["--steps", "64"],
    "export": ["RUN"],
    "bench": ["--envs", ALGORITHM_ENV],
    "sweep": ["--env", ALGORITHM_ENV, "--param", "gamma=[0.9]"],
    "perception collect": [],
    "perception train": ["--data", "data.npz"],
    "perception eval": ["RUN", "--data", "data.npz"],
    "envs": ["--gallery", "gallery"],
}
OUTPUT_OPTIONS = ("--out", "--gallery", "--report-only")
BAD_NUMBERS = ["-1", "nan", "inf", "ten"]


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, Any]:
    """Return every leaf sub-command's parser, by its full name (``perception train``)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub_parser in action.choices.items():
                full_name = f"{prefix} {name}".strip()
                found.update(_commands(sub_parser, full_name) or {full_name: sub_parser})
    return found


COMMANDS = _commands(build_parser())
NUMERIC_OPTIONS = [
    (command, action.option_strings[-1])
    for command, parser in COMMANDS.items()
    for action in parser._actions
    # path_text only refuses empty paths: it is a path, not a number.
    if action.option_strings
    and action.type not in (None, str, path_text)
    and action.choices is None
]
OUTPUT_CASES = [
    (command, option)
    for command, parser in COMMANDS.items()
    for action in parser._actions
    for option in action.option_strings
    if option in OUTPUT_OPTIONS
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A small finished run folder, for the commands that load one."""
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TRAIN_BASE, "--set", "n_steps=32", "--out", str(run)]) == 0
    return run


def _run(command: str, arguments: list[str], run: Path, capsys) -> tuple[int, str]:
    """Run ``rlrobot COMMAND BASE… ARGUMENTS`` in-process; return (exit code, stderr)."""
    base = [str(run) if item == "RUN" else item for item in BASE_ARGUMENTS[command]]
    capsys.readouterr()
    try:
        code = main([*command.split(), *base, *arguments])
    except SystemExit as exit_info:  # argparse's usage errors
        code = exit_info.code
    return code, capsys.readouterr().err


def _assert_one_error_line(command: str, error: str) -> str:
    """Check ``error`` ends in one ``rlrobot COMMAND: error:`` line, without a traceback."""
    assert "Traceback" not in error, error
    lines = [line for line in error.strip().splitlines() if "pybullet build time" not in line]
    errors = [line for line in lines if ": error:" in line]
    # argparse names the whole sub-command, the CLI's handler errors its first word.
    prefixes = (f"rlrobot {command}: error:", f"rlrobot {command.split()[0]}: error:")
    assert errors == [lines[-1]] and lines[-1].startswith(prefixes), error
    if not lines[-1].startswith(f"rlrobot {command}: error: argument "):
        assert len(lines) == 1, error  # not argparse's usage error: the message alone
    return lines[-1]


def test_every_command_has_base_arguments():
    """A new sub-command must be added to the sweeps here."""
    assert sorted(COMMANDS) == sorted(BASE_ARGUMENTS)
    assert len(NUMERIC_OPTIONS) >= 30 and len(OUTPUT_CASES) >= 10


@pytest.mark.parametrize("bad", BAD_NUMBERS)
@pytest.mark.parametrize(("command", "option"), NUMERIC_OPTIONS)
def test_every_numeric_option_refuses_bad_numbers_in_one_line(
    command, option, bad, trained_run, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, error = _run(command, [option, bad], trained_run, capsys)
    assert code == 2, error
    _assert_one_error_line(command, error)
    assert [p.name for p in tmp_path.iterdir()] == []  # refused before any output


def _unwritable_folder() -> Path:
    """A folder that even root cannot write in (sysfs), or skip."""
    folder = Path("/sys")
    try:
        (folder / "rlrobot-write-test").mkdir()
    except OSError:
        return folder
    pytest.skip("/sys is writable here")


@pytest.mark.parametrize("where", ["under a file", "unwritable"])
@pytest.mark.parametrize(("command", "option"), OUTPUT_CASES)
def test_every_output_option_refuses_a_path_it_cannot_write_before_any_work(
    command, option, where, trained_run, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    # The work each command would start: none of it may run before the output is checked.
    for module, name in [
        ("rlrobot.common.evaluation", "evaluate_policy"),
        ("rlrobot.run.recording", "record_episodes"),
        ("rlrobot.run.training", "train"),
    ]:
        monkeypatch.setattr(f"{module}.{name}", _no_work)
    if where == "under a file":
        Path("a-file").write_text("x")
        target = "a-file/out.gif"
        # ``envs`` (below ``common``) makes its folder first and reports what mkdir said.
        expected = "cannot make the folder" if command == "envs" else "lies under"
    else:
        target = str(_unwritable_folder() / "out.gif")
        expected = "cannot"
    code, error = _run(command, [option, target], trained_run, capsys)
    assert code == 2, error
    line = _assert_one_error_line(command, error)
    assert option in line and target in line and expected in line, line


def _no_work(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the command started its work before checking its output")


def test_train_out_naming_an_existing_file_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a-file").write_text("x")
    assert main(["train", *TRAIN_BASE, "--out", "a-file"]) == 2
    line = _assert_one_error_line("train", capsys.readouterr().err)
    assert line.endswith("--out a-file is a file; it must name a folder")
    assert Path("a-file").read_text() == "x"


def test_a_read_only_output_folder_is_refused_before_the_episodes(
    trained_run, tmp_path, capsys, monkeypatch
):
    if os.geteuid() == 0:
        pytest.skip("root writes in read-only folders (the sysfs case covers it)")
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    monkeypatch.setattr("rlrobot.common.evaluation.evaluate_policy", _no_work)
    code, error = _run("eval", ["--out", str(read_only / "eval.json")], trained_run, capsys)
    assert code == 2 and "cannot write in" in _assert_one_error_line("eval", error)


# -- config files -----------------------------------------------------------------------------
GOOD = f"algo: ppo\nenv: {ALGORITHM_ENV}\n"
CONFIG_FILES = [
    (b"algo: ppo\nenv: 123\n", "config key 'env': expected a name \\(a string\\), got 123"),
    (f"algo: [ppo]\nenv: {ALGORITHM_ENV}\n".encode(), "'algo': expected a name .*\\['ppo'\\]"),
    (f"{GOOD}seed: -3\n".encode(), "'seed': expected an integer >= 0, got -3"),
    (f"{GOOD}seed: '7'\n".encode(), "'seed': expected an integer >= 0, got '7'"),
    (GOOD.encode() + b"gamma: 0.9\n\xff\xfe: 1\n", "cannot be read: it is not UTF-8 text"),
    (f"{GOOD}gamma: 0.9\ngamma: 0.99\n".encode(), "the key 'gamma' twice .*line 4"),
    (
        f"{GOOD}env_kwargs: {{reward_mode: sparse, reward_mode: dense}}\n".encode(),
        "'reward_mode' twice",
    ),
    (f"{GOOD}algo: a2c\n".encode(), "the key 'algo' twice"),
    (
        f"default:\n  gamma: 0.9\n{ALGORITHM_ENV}:\n  gamma: 0.8\n  gamma: 0.7\n".encode(),
        "'gamma' twice",
    ),
    (b"- algo\n- ppo\n", "must hold a mapping, not list"),
    (b"algo: [ppo\n", "is not valid YAML: .*line 2"),
]


@pytest.mark.parametrize(("content", "message"), CONFIG_FILES)
def test_a_malformed_config_file_is_one_line(content, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_bytes(content)
    arguments = ["train", "--config", "config.yaml", "--steps", "64", "--out", "run"]
    assert main(arguments) == 2
    line = _assert_one_error_line("train", capsys.readouterr().err)
    assert re.search(message, line), line
    assert not Path("run").exists()


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("train", [*TRAIN_BASE, "--dry-run", "--set", "env_kwargs={a: 1, a: 2}"]),
        ("bench", ["--envs", ALGORITHM_ENV, "--out", "b", "--set", "policy_kwargs={a: 1, a: 2}"]),
        ("perception train", ["--data", "d.npz", "--out", "p", "--set", "epochs={a: 1, a: 2}"]),
    ],
)
def test_a_duplicate_key_in_a_set_value_is_one_line(
    command, arguments, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main([*command.split(), *arguments]) == 2
    assert "'a' twice" in _assert_one_error_line(command, capsys.readouterr().err)


def test_a_run_config_with_a_duplicate_key_is_refused_by_eval(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    text = (trained_run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text + "gamma: 0.5\n")
    assert main(["eval", str(run)]) == 2
    assert "'gamma' twice" in _assert_one_error_line("eval", capsys.readouterr().err)


def test_every_yaml_read_goes_through_the_strict_loader():
    """``yaml.safe_load``/``yaml.load`` merge duplicate keys; only ``load_yaml`` may call them."""
    offenders = [
        f"{path.relative_to(REPOSITORY)}:{number}"
        for path in sorted((REPOSITORY / "rlrobot").rglob("*.py"))
        if path.name != "yaml_loading.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"yaml\.(safe_)?(load|load_all|full_load|unsafe_load)\(", line)
    ]
    assert offenders == []


def test_the_write_check_leaves_nothing_behind(tmp_path):
    """``check_writable`` writes a probe under a temporary name and removes it."""
    from rlrobot.common.files import check_writable

    check_writable(tmp_path / "new" / "deeper", "--out", is_folder=True)
    check_writable(tmp_path / "file.json", "--out", is_folder=False)
    assert list(tmp_path.iterdir()) == []
    assert TEMPORARY_PATTERN.match(".rlrobot-write-check.abc123.tmp")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "--config", "."], "config file . is a folder, not a file"),
        (["train", "--config", "missing.yaml"], "config file missing.yaml does not exist"),
        (["perception", "collect", "--out", "d.npz", "--env", "nope/X-v0"], "unknown env id"),
        (["perception", "collect", "--out", "d.npz", "--env", "rlrobot/Reac-v0"], "Reach-v0"),
        (["perception", "train", "--data", "missing.npz", "--out", "p"], "no dataset at"),
        (["eval", "missing"], "is not a run folder"),
        (["plot", "missing"], "no run folders"),
    ],
)
def test_a_bad_input_path_or_id_is_one_line(arguments, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(arguments) == 2
    command = " ".join(arguments[:2]) if arguments[0] == "perception" else arguments[0]
    assert message in _assert_one_error_line(command, capsys.readouterr().err)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e5", 100000.0), ("1e-3", 0.001), ("-2E+4", -20000.0), (".5e1", 5.0), ("3", 3)],
)
def test_yaml_reads_exponent_numbers_as_numbers(text, value):
    """YAML 1.1 reads ``1e-3`` as text; ours reads it as YAML 1.2 and Python do."""
    from rlrobot.common.yaml_loading import load_yaml

    assert load_yaml(text) == value and type(load_yaml(text)) is type(value)


@pytest.mark.parametrize("text", ["e5", "1e", "v1e5", "1e5x", "1_e5"])
def test_yaml_keeps_text_that_only_looks_numeric(text):
    """Only whole exponent numbers change: a word with digits stays text."""
    from rlrobot.common.yaml_loading import load_yaml

    assert load_yaml(text) == text
