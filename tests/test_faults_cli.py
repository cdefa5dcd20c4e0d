"""Fault injection, command line and environment: bad input is refused before any work, in one line
naming the argument or variable and what it accepts; a later failure never loses finished results."""

import json

import pytest
import torch

from modbal_lib import experiments, utils
from modbal_lib.cli import main

SEESAW = ["bench", "--dataset", "seesaw", "--dataset-options", "num_samples=300", "--epochs", "1", "--seeds", "1",
          "--device", "cpu"]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything is trained: every refusal below must come before any work."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(experiments, "train", refuse)
    monkeypatch.setattr("modbal_lib.bench.train", refuse)


@pytest.mark.parametrize("methods, options, expected", [
    ("joint,balgrad", ["balgrad.gamm=0.5"], "balgrad has no option 'gamm'; its options: gamma"),
    ("joint,balgrad", ["balgrad.gamma=abc"], "--option balgrad.gamma='abc': expected a finite number"),
    ("joint,balgrad", ["balgrad.gamma=nan"], "expected a finite number"),
    ("joint,balgrad", ["balgrad.projection=flase"], "--option balgrad.projection='flase': expected a boolean"),
    ("joint,balgrad", ["balgrad.schedule_unit=weeks"], "balgrad: BalGrad"),
    ("joint", ["goal.T=2"], "options for 'goal', which is not among the methods joint"),
    ("joint", ["alpha=1"], "--option expects LABEL.KEY=VALUE"),
    ("joint,jont", [], "unknown method 'jont'"),
    ("joint,a=goal,a=cggm", [], "the label 'a' appears twice"),
    ("joint,unimodal_audio", [], "the data has no modality 'audio'"),
    ("joint,ogm_ge", ["ogm_ge.seed=1.5"], "--option ogm_ge.seed='1.5': expected an integer"),
])
def test_bench_refuses_bad_methods_and_options_before_training(tmp_path, capsys, no_training, methods, options,
                                                               expected):
    argv = SEESAW + ["--methods", methods, "--out", str(tmp_path / "out")]
    for option in options:
        argv += ["--option", option]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert expected in error and error.startswith("error: ") and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("word, value", [("true", True), ("off", False), ("NO", False), ("1", True), ("yes", True)])
def test_boolean_options_accept_the_usual_words(word, value):
    assert experiments.parse_option(word, bool, "x") is value


def test_optional_numbers_accept_none():
    assert experiments.parse_option("none", float | None, "cggm.clip_norm") is None
    assert experiments.parse_option("0.8", float | None, "cggm.clip_norm") == 0.8


@pytest.mark.parametrize("flag", [["--seeds", "0"], ["--epochs", "0"], ["--seeds", "-1"], ["--epochs", "two"]])
def test_seeds_and_epochs_must_be_positive(tmp_path, capsys, no_training, flag):
    argv = ["bench", "--dataset", "seesaw", "--methods", "joint", "--out", str(tmp_path / "out")] + flag
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage line and the argument's error, status 2
        main(argv)
    assert exit_info.value.code == 2
    assert f"argument {flag[0]}: expected an integer >= 1" in capsys.readouterr().err


def test_library_refuses_zero_seeds_and_epochs(no_training):
    from modbal_lib import bench

    with pytest.raises(ValueError, match="seeds: expected at least one seed"):
        bench.run("seesaw", ["joint"], [], None)
    with pytest.raises(ValueError, match="epochs=0: expected at least 1"):
        bench.run("seesaw", ["joint"], [0], None, epochs=0)
    with pytest.raises(ValueError, match="balgrad.gamma='x': expected a finite number"):
        experiments.check_comparison(["balgrad"], {"balgrad": {"gamma": "x"}})
    with pytest.raises(ValueError, match="b.projection=1: expected a boolean"):
        experiments.check_comparison(["b=balgrad"], {"b": {"projection": 1}})


def test_finished_methods_survive_a_later_failure(tmp_path, monkeypatch):
    real_train = experiments.train

    def fail_on_goal(features, method, **options):
        if method == "goal":
            raise RuntimeError("injected failure in the third method")
        return real_train(features, method, **options)

    monkeypatch.setattr(experiments, "train", fail_on_goal)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="injected"):
        main(SEESAW + ["--methods", "joint,balgrad,goal", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["joint", "balgrad"] and results["complete"] is False
    assert "balgrad" in (out / "results.md").read_text()


# ---- environment variables -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, expected", [
    ("MODBAL_FAST", "maybe", "MODBAL_FAST='maybe': expected a boolean"),
    ("MODBAL_FAST", "2", "MODBAL_FAST='2': expected a boolean"),
    ("MODBAL_PROGRESS", "quiet", "MODBAL_PROGRESS='quiet': expected a boolean"),
    ("MODBAL_DEVICE", "nonsense", "MODBAL_DEVICE='nonsense': expected cpu, cuda or cuda:N"),
    ("MODBAL_PRECISION", "fp8", "MODBAL_PRECISION='fp8': expected one of fp16, bf16, fp32"),
    ("MODBAL_DATASET", "imagenet", "MODBAL_DATASET='imagenet': expected one of"),
])
def test_environment_variables_are_checked_first(tmp_path, capsys, monkeypatch, no_training, name, value, expected):
    monkeypatch.setenv(name, value)
    assert main(["bench", "--dataset", "seesaw", "--methods", "joint", "--out", str(tmp_path / "out")]) == 2
    assert expected in capsys.readouterr().err


def test_cuda_without_a_gpu_is_an_error(monkeypatch):
    monkeypatch.setattr(utils.torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("MODBAL_DEVICE", "cuda")
    with pytest.raises(ValueError, match="MODBAL_DEVICE='cuda': PyTorch sees no CUDA GPU"):
        utils.select_device()
    with pytest.raises(ValueError, match="device='cuda:1': PyTorch sees no CUDA GPU"):
        utils.select_device("cuda:1")


def test_cache_folder_that_is_a_file_is_an_error(tmp_path, monkeypatch):
    a_file = tmp_path / "cache"
    a_file.write_text("not a folder")
    monkeypatch.setenv("MODBAL_CACHE", str(a_file))
    with pytest.raises(ValueError, match="MODBAL_CACHE=.* is a file; expected a folder"):
        utils.cache_dir()
    monkeypatch.setenv("MODBAL_DATA", str(a_file))
    with pytest.raises(ValueError, match="MODBAL_DATA=.* is a file; expected a folder"):
        utils.data_dir()


@pytest.mark.parametrize("value, expected", [("1", True), ("on", True), ("False", False), ("", False)])
def test_flags_read_the_usual_words(monkeypatch, value, expected):
    monkeypatch.setenv("MODBAL_FAST", value)
    assert utils.fast_mode() is expected


def test_unknown_modbal_variable_is_warned_about(monkeypatch):
    monkeypatch.setenv("MODBAL_FAS", "1")
    assert any("MODBAL_FAS" in warning for warning in utils.check_environment())


def test_environment_report_shows_the_mode_the_chapter_runs_in(monkeypatch):
    monkeypatch.setenv("MODBAL_FAST", "0")
    assert utils.environment_report()["fast mode"] == "False"
    assert utils.environment_report(fast=True)["fast mode"] == "True"  # papermill's -p FAST True wins over the variable
    assert utils.environment_report()["torch"] == torch.__version__


def test_silent_progress_hides_the_bars_inside_it_only(monkeypatch):
    monkeypatch.setenv("MODBAL_PROGRESS", "1")
    assert not utils.progress(range(2)).disable
    with utils.silent_progress():
        assert utils.progress(range(2)).disable
    assert not utils.progress(range(2)).disable
    monkeypatch.setenv("MODBAL_PROGRESS", "0")
    assert utils.progress(range(2)).disable
