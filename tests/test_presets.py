"""Paper presets: their values, how explicit options win, and that ``bench --preset`` delivers them to ``train``."""

import json

import pytest

from modbal_lib import experiments, presets
from modbal_lib.cli import main
from modbal_lib.presets import PRESETS


def test_presets_hold_the_papers_settings():
    assert PRESETS["balgrad"].train_options == {"optimizer": "adam", "epochs": 20, "batch_size": 128}
    assert "learning rate" in PRESETS["balgrad"].unspecified  # the paper gives none; not made up here
    assert PRESETS["cggm_food101"].train_options == {
        "optimizer": "adamw", "lr": 1e-3, "weight_decay": 6e-3, "epochs": 60, "batch_size": 128}
    assert PRESETS["cggm_food101"].method_options == {"cggm": {"rho": 1.3, "lam": 0.05, "classifier_lr": 5e-4}}
    assert PRESETS["goal"].train_options == {"optimizer": "sgd", "lr": 4e-4, "momentum": 0.9, "weight_decay": 1e-4}
    with pytest.raises(ValueError, match="unknown preset 'ogm'; known: balgrad, cggm_food101, goal"):
        presets.get("ogm")


def test_explicit_options_win_and_labels_get_their_methods_options():
    train_options, method_options = presets.apply(
        "cggm_food101", ["joint", "cggm", "official=cggm"], {"epochs": 5, "device": "cpu"},
        {"official": {"variant": "official", "rho": 1.2}})
    assert train_options == {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 6e-3, "epochs": 5, "batch_size": 128,
                             "device": "cpu"}
    assert method_options == {"cggm": {"rho": 1.3, "lam": 0.05, "classifier_lr": 5e-4},
                              "official": {"rho": 1.2, "lam": 0.05, "classifier_lr": 5e-4, "variant": "official"}}
    assert PRESETS["cggm_food101"].method_options["cggm"]["rho"] == 1.3  # the preset itself is untouched


def test_bench_preset_reaches_train(tmp_path, monkeypatch):
    configs = []
    real_train = experiments.train

    def recording_train(*args, **kwargs):
        result = real_train(*args, **kwargs)
        configs.append(result.config)
        return result

    monkeypatch.setattr(experiments, "train", recording_train)
    out = tmp_path / "bench"
    assert main(["bench", "--dataset", "seesaw", "--methods", "joint,cggm", "--seeds", "1", "--epochs", "1",
                 "--preset", "cggm_food101", "--option", "cggm.rho=1.2", "--dataset-options", "num_samples=300",
                 "--out", str(out), "--device", "cpu"]) == 0
    joint, cggm = configs
    for config in (joint, cggm):
        assert (config["optimizer"], config["lr"], config["weight_decay"], config["batch_size"]) == (
            "adamw", 1e-3, 6e-3, 128)
        assert config["epochs"] == 1  # --epochs beats the preset's 60
    assert (cggm["rho"], cggm["lam"], cggm["classifier_lr"]) == (1.2, 0.05, 5e-4)  # --option beats the preset
    assert "rho" not in joint
    results = json.loads((out / "results.json").read_text())
    assert results["preset"] == "cggm_food101" and results["epochs"] == 1
