"""One base class for user-facing errors; the CLI prints any of them without a traceback."""

from __future__ import annotations

import inspect

import pytest

from rlrobot import cli, errors

USER_ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if cls.__module__ == errors.__name__ and cls is not errors.RLRobotError
]


def test_every_error_class_derives_from_the_base_class():
    assert {cls.__name__ for cls in USER_ERRORS} >= {
        "ConfigError",
        "EnvMakeError",
        "UnsupportedEnvError",
        "CheckpointError",
        "RunFolderError",
        "DatasetError",
        "CommandError",
    }
    assert all(issubclass(cls, errors.RLRobotError) for cls in USER_ERRORS)


@pytest.mark.parametrize("error_class", USER_ERRORS, ids=lambda cls: cls.__name__)
def test_the_cli_prints_a_user_error_as_one_line(error_class, monkeypatch, capsys):
    def handler(args):
        raise error_class("bad value 3 for key x")

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with(handler))
    assert cli.main(["probe"]) == 2
    assert capsys.readouterr().err == "rlrobot probe: error: bad value 3 for key x\n"


def test_the_cli_lets_a_bug_raise(monkeypatch):
    def handler(args):
        raise KeyError("a bug, not a user mistake")

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with(handler))
    with pytest.raises(KeyError):
        cli.main(["probe"])


def _parser_with(handler):
    import argparse

    parser = argparse.ArgumentParser(prog="rlrobot")
    subparsers = parser.add_subparsers(dest="command")
    subparsers.add_parser("probe").set_defaults(func=handler)
    return parser
