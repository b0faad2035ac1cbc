"""The study registry and ``rlrobot bench --study``: defaults, ``--only``, ``--report-only``
and ``--study all``."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rlrobot.benchmark import studies
from rlrobot.benchmark.runner import TrialStore
from rlrobot.cli import main


@dataclass(frozen=True)
class FakeStudy(studies.Study):
    """A study that records its calls instead of running, or fails when told to."""

    calls: list = field(default_factory=list)
    error: Exception | None = None
    failed_trial: bool = False
    parts: tuple = ()

    def run(self, options):
        self.calls.append(options)
        if self.error is not None:
            raise self.error
        if self.failed_trial:
            TrialStore(options.trials_dir).save({"key": "k", "status": "failed"})
        return options.out_dir / f"{self.module}.md"

    def part_names(self):
        return self.parts

    def rewrite_report(self, out_dir):
        self.calls.append(out_dir)
        return out_dir / f"{self.module}.md"


def test_every_registered_study_has_a_main_that_takes_the_options():
    import inspect
    from importlib import import_module

    for name, study in studies.STUDIES.items():
        module = import_module(f"rlrobot.benchmark.studies.{study.module}")
        parameters = inspect.signature(getattr(module, study.function)).parameters
        assert list(parameters) == ["options"], name
        if study.report is not None:
            parameters = inspect.signature(getattr(module, study.report)).parameters
            assert list(parameters) == ["out_dir"], name
        assert all(isinstance(part, str) for part in study.part_names()), name


def test_a_study_gets_its_own_seeds_and_trials_folder(tmp_path, monkeypatch):
    fake = FakeStudy("first", seeds=4, trials="{out}/{name}_cache")
    monkeypatch.setattr(studies, "STUDIES", {"first": fake})
    assert main(["bench", "--study", "first", "--out", str(tmp_path)]) == 0
    (options,) = fake.calls
    assert list(options.seeds) == [0, 1, 2, 3]
    assert options.trials_dir == tmp_path / "first_cache"
    assert options.command == "rlrobot bench --study first --seeds 4"
    # A smoke run keeps everything in its folder and runs one seed unless told otherwise.
    assert main(["bench", "--study", "first", "--quick", "--out", str(tmp_path)]) == 0
    assert list(fake.calls[1].seeds) == [0] and fake.calls[1].quick
    assert fake.calls[1].trials_dir == tmp_path / "first_trials"


def test_only_goes_to_studies_that_take_it(tmp_path, monkeypatch, capsys):
    plain, parts = FakeStudy("plain"), FakeStudy("parts", parts=("A:b", "C:d", "e"))
    monkeypatch.setattr(studies, "STUDIES", {"plain": plain, "parts": parts})
    argv = ["bench", "--out", str(tmp_path), "--only", "A:b"]
    assert main([*argv, "--study", "parts"]) == 0
    assert parts.calls[0].only == ["A:b"]
    assert parts.calls[0].command.endswith("--only A:b")
    # Several at once, or the flag repeated: the same parts.
    assert main([*argv, "e", "--only", "C:d", "--study", "parts"]) == 0
    assert parts.calls[1].only == ["A:b", "e", "C:d"]
    assert parts.calls[1].command.endswith("--only A:b e C:d")
    assert main([*argv, "A:c", "--study", "parts"]) == 2
    assert "the parts study has no part(s) ['A:c']; parts: A:b C:d e" in capsys.readouterr().err
    assert len(parts.calls) == 2
    assert main([*argv, "--study", "plain"]) == 2
    assert "the plain study has no parts to choose from" in capsys.readouterr().err
    assert main([*argv, "--study", "all"]) == 2
    assert not plain.calls


def test_report_only_rebuilds_the_page_of_a_study_that_has_a_report(tmp_path, monkeypatch, capsys):
    paged, plain = FakeStudy("paged", report="rewrite"), FakeStudy("plain")
    monkeypatch.setattr(studies, "STUDIES", {"paged": paged, "plain": plain})
    assert main(["bench", "--study", "paged", "--report-only", str(tmp_path)]) == 0
    assert (
        paged.calls == [tmp_path] and f"report: {tmp_path / 'paged.md'}" in capsys.readouterr().out
    )
    for name in ("plain", "all"):
        assert main(["bench", "--study", name, "--report-only", str(tmp_path)]) == 2
        assert f"--study {name} has none; these do: ['paged']" in capsys.readouterr().err
    assert not plain.calls


def test_all_runs_every_study_in_turn_past_failures_and_reports_them(tmp_path, monkeypatch, capsys):
    registry = {
        "broken": FakeStudy("broken", error=RuntimeError("no such env")),
        "failing": FakeStudy("failing", failed_trial=True),
        "fine": FakeStudy("fine"),
        "left_out": FakeStudy("left_out", in_all=False),
    }
    monkeypatch.setattr(studies, "STUDIES", registry)
    assert main(["bench", "--study", "all", "--out", str(tmp_path)]) == 1
    assert [len(study.calls) for study in registry.values()] == [1, 1, 1, 0]
    table = capsys.readouterr().out.split("=== studies ===")[1]
    lines = {line.split()[0]: line for line in table.strip().splitlines()}
    assert set(lines) == {"broken", "failing", "fine"}
    assert lines["broken"].endswith("FAILED: RuntimeError: no such env")
    assert lines["failing"].endswith("FAILED: some trials failed")
    assert lines["fine"].endswith(" ok")
    assert registry["fine"].calls[0].out_dir == Path(tmp_path)


@pytest.mark.parametrize("extra", [["--trials-dir", "x"], ["--envs", "CartPole-v1"]])
def test_all_refuses_options_of_a_single_run(tmp_path, extra):
    assert main(["bench", "--study", "all", "--out", str(tmp_path), *extra]) == 2


def test_report_numbers_keep_large_values_whole():
    from rlrobot.benchmark.report import format_interval, format_number

    assert format_number(-1523.4) == "-1523" and format_number(-173.46) == "-173"
    assert format_number(0.012345, 2) == "0.012" and format_number(None) == "—"
    summary = {"mean": -1523.4, "ci": (-1600.2, -1450.0)}
    assert format_interval(summary) == "-1523 [-1600, -1450]"


def test_summary_plan_is_the_on_policy_agents_on_three_envs_with_sb3():
    from rlrobot.benchmark.studies import summary

    specs = summary.build_specs(range(3))
    assert len(specs) == len(summary.ENV_IDS) * len(summary.ALGOS) * 3 * 2
    assert {(s.env_id, s.algo, s.framework) for s in specs} == {
        (env_id, algo, framework)
        for env_id in summary.ENV_IDS
        for algo in summary.ALGOS
        for framework in ("rlrobot", "sb3")
    }
    assert {(s.steps, s.eval_episodes, s.eval_interval) for s in specs} == {(15_000, 5, 1500)}
    assert {s.steps for s in summary.build_specs(range(3), budget_scale=0.5)} == {7500}
    quick = summary.build_specs([0], quick=True)
    assert [(s.env_id, s.n_envs, s.config["batch_size"]) for s in quick] == [
        ("CartPole-v1", 2, 64)
    ] * 2
